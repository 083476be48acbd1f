//go:build linux && (!gale_slim || gale_aws)

package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/awsstandin"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// copyPause is a loopback S3 server's handler that, once armed, holds the
// n-th server-side copy (a commit moving a part) until released, and says
// when it holds it.
type copyPause struct {
	next    http.Handler
	mu      sync.Mutex
	armed   bool
	n       int
	held    chan struct{} // closed when the n-th copy arrives
	release chan struct{}
}

func (p *copyPause) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" {
		p.mu.Lock()
		hold := false
		if p.armed {
			if p.n--; p.n == 0 {
				hold = true
				close(p.held)
			}
		}
		p.mu.Unlock()
		if hold {
			<-p.release
			http.Error(w, "the driver is gone", http.StatusServiceUnavailable)
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

// TestSIGKILLDuringCommitToS3 kills `gale run wordcount --overwrite` with
// SIGKILL while it moves its parts into place on a loopback S3 (the
// server holds the driver's third copy): the previous output must stay
// committed and whole, Gale's reader must read it, and the next run must
// remove the dead job's files and commit, without being refused.
func TestSIGKILLDuringCommitToS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	bin := buildGale(t)
	dir := t.TempDir()
	awsstandin.IsolateTest(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("data"); err != nil {
		t.Fatal(err)
	}
	pause := &copyPause{next: gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()}
	srv := httptest.NewUnstartedServer(pause)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	opts := map[string]string{"s3.endpoint": srv.URL, "s3.path_style": "true", "s3.region": "us-east-1"}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("storage:\n  s3.endpoint: "+srv.URL+"\n  s3.path_style: \"true\"\n  s3.region: us-east-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GALE_CONFIG", config)

	ctx := context.Background()
	corpus := func(name string, seed uint64) (string, map[string]int64) {
		p := filepath.Join(dir, name)
		cfg := textgen.DefaultConfig()
		cfg.Size, cfg.Seed = 400<<10, seed
		if err := textgen.GenerateFile(ctx, p, cfg); err != nil {
			t.Fatal(err)
		}
		want, err := wordref.CountFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, want
	}
	inA, wantA := corpus("a.txt", 1)
	inB, wantB := corpus("b.txt", 2)
	const out = "s3://data/counts"
	command := func(in string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "wordcount", "--input", in, "--output", out, "--overwrite",
			"--partitions", "6", "--chunk-size", "64KiB", "--workers", "2", "-q", "--top", "0")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		return cmd
	}
	run := func(in string) {
		t.Helper()
		cmd := command(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --input %s: %v\n%s", in, err, &stderr)
		}
	}
	store, err := gale.OpenStore(ctx, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	// committed reads the output through its manifest and returns its
	// counts and its part keys.
	committed := func() (map[string]int64, []string) {
		t.Helper()
		m, err := objstore.ReadManifest(ctx, store, "")
		if err != nil || m == nil {
			t.Fatalf("output manifest: %v", err)
		}
		got := map[string]int64{}
		var keys []string
		for _, p := range m.Parts {
			rc, err := store.Get(ctx, p.Key, 0, -1)
			if err != nil {
				t.Fatalf("manifest of job %s lists %s: %v", m.Job, p.Key, err)
			}
			c, err := wordref.ParseCounts(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			for w, n := range c {
				got[w] += n
			}
			keys = append(keys, p.Key)
		}
		return got, keys
	}
	keys := func() []string {
		objs, err := objstore.ListAll(ctx, store, "")
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, o := range objs {
			ks = append(ks, o.Key)
		}
		return ks
	}

	run(inA)
	if got, _ := committed(); wordref.Diff(got, wantA) != nil {
		t.Fatalf("first run: %v", wordref.Diff(got, wantA))
	}

	// The run to kill: held at its third part's copy.
	pause.mu.Lock()
	pause.armed, pause.n = true, 3
	pause.held, pause.release = make(chan struct{}), make(chan struct{})
	pause.mu.Unlock()
	victim := command(inB)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pause.held:
	case <-time.After(2 * time.Minute):
		victim.Process.Kill()
		victim.Wait()
		t.Fatal("the run never reached its commit")
	}
	if err := victim.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	victim.Wait()
	pause.mu.Lock()
	pause.armed = false
	close(pause.release)
	pause.mu.Unlock()

	got, parts := committed()
	if err := wordref.Diff(got, wantA); err != nil {
		t.Fatalf("after SIGKILL during the commit the previous output is not intact: %v", err)
	}
	left := keys()
	if len(left) <= len(parts)+1 {
		t.Fatalf("the killed run left nothing to clean (%v): it was not killed during its commit", left)
	}
	t.Logf("the killed run left %d objects beside the output's %d parts", len(left)-len(parts)-1, len(parts))

	// Gale's own reader reads exactly the committed output: a word count
	// of it equals one of its manifest's parts.
	var text bytes.Buffer
	for _, k := range parts {
		rc, err := store.Get(ctx, k, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		text.ReadFrom(rc)
		rc.Close()
	}
	flat := filepath.Join(dir, "committed.txt")
	if err := os.WriteFile(flat, text.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	wantRecount, err := wordref.CountFile(flat)
	if err != nil {
		t.Fatal(err)
	}
	recount := filepath.Join(dir, "recount")
	rc := exec.Command(bin, "run", "wordcount", "--input", out, "--output", recount, "-q", "--top", "0")
	if b, err := rc.CombinedOutput(); err != nil {
		t.Fatalf("reading the output after the kill: %v\n%s", err, b)
	}
	if err := wordref.Diff(sumCounts(t, partFiles(t, recount)), wantRecount); err != nil {
		t.Fatalf("Gale's reader did not read the committed output: %v", err)
	}

	// The next run cleans up and commits.
	run(inB)
	got, parts = committed()
	if err := wordref.Diff(got, wantB); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if left := keys(); len(left) != len(parts)+1 {
		t.Fatalf("after the rerun the output holds %v, want its %d parts and _SUCCESS", left, len(parts))
	}
	for _, k := range keys() {
		if strings.HasPrefix(k, objstore.TemporaryDir) {
			t.Errorf("left over: %s", k)
		}
	}
}
