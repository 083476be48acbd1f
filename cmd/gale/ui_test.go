package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/engine"
	bt "github.com/galeproject/gale/internal/browsertest"
	"github.com/galeproject/gale/internal/textgen"
)

var dashboardURL = regexp.MustCompile(`dashboard at (http://\S+)`)

// startGale starts the gale binary and returns it with its stdout, and
// the first URL its stderr prints (a dashboard's); stderr goes on being
// collected into the returned buffer.
func startGale(t *testing.T, bin string, args ...string) (*exec.Cmd, *lockedBuffer, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout := &lockedBuffer{}
	cmd.Stdout = stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		pw.Close()
	})
	stderr := &syncBuffer{}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			stderr.WriteLine(sc.Text())
			if m := dashboardURL.FindStringSubmatch(sc.Text()); m != nil && !sent {
				urls <- m[1]
				sent = true
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatalf("gale %s printed no dashboard URL:\n%s", strings.Join(args, " "), stderr)
		}
		return cmd, stdout, u, stderr
	case <-time.After(2 * time.Minute):
		t.Fatalf("gale %s printed no dashboard URL in 2 minutes:\n%s", strings.Join(args, " "), stderr)
	}
	return nil, nil, "", nil
}

// syncBuffer collects lines written by one goroutine and read by another.
type syncBuffer struct {
	mu    sync.Mutex
	lines []string
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WriteLine appends a line.
func (b *syncBuffer) WriteLine(s string) {
	b.mu.Lock()
	b.lines = append(b.lines, s)
	b.mu.Unlock()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// waitFor waits until stderr holds a line containing s.
func (b *syncBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(b.String(), s) {
			return
		}
	}
	t.Fatalf("stderr never said %q:\n%s", s, b)
}

func smallCorpus(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 1 << 20
	if err := textgen.GenerateFile(context.Background(), p, cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunUIStaysUpUntilInterrupted runs gale run wordcount --ui: it prints
// the dashboard's URL, serves the job while it runs, prints the report,
// keeps the dashboard up after the job, and exits with the job's status
// (0) when interrupted.
func TestRunUIStaysUpUntilInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	bin := buildGale(t)
	dir := t.TempDir()
	cmd, stdout, url, stderr := startGale(t, bin, "run", "wordcount", "--input", smallCorpus(t, dir), "--output",
		filepath.Join(dir, "out"), "--ui", "-q", "--top", "0")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("dashboard URL %s, want loopback", url)
	}
	stderr.waitFor(t, "stays up at")
	resp, err := http.Get(url + "api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	var jobs []struct{ ID, Status string }
	err = json.NewDecoder(resp.Body).Decode(&jobs)
	resp.Body.Close()
	if err != nil || len(jobs) != 1 || jobs[0].Status != "succeeded" {
		t.Fatalf("jobs %+v (%v)", jobs, err)
	}
	if !strings.Contains(stdout.String(), "job "+jobs[0].ID+" on local") {
		t.Errorf("the report was not printed before the wait:\n%s", stdout)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("gale exited with %v after the interrupt; want 0, the job's status\n%s", err, stderr)
	}
}

// TestUIFlagErrors checks the dashboard flags' usage errors.
func TestUIFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	bin := buildGale(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "wordcount", "--ui=0.0.0.0:0"}, "not loopback"},
		{[]string{"run", "wordcount", "--ui", "127.0.0.1:8080"}, "--ui=127.0.0.1:8080"},
		{[]string{"ui", filepath.Join(t.TempDir(), "missing.jsonl")}, "missing.jsonl"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("gale %s: %v\n%s\nwant an error saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

// TestUIOfARecordedJob records a job on the process backend (--events,
// --report-json), serves it with gale ui, and checks the page in a
// browser against the report.
func TestUIOfARecordedJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	b := bt.Start(t)
	bin := buildGale(t)
	dir := t.TempDir()
	events, report := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "report.json")
	run := exec.Command(bin, "run", "wordcount", "--input", smallCorpus(t, dir), "--output", filepath.Join(dir, "out"),
		"--backend", "process", "--workers", "2", "--chunk-size", "256KiB", "--events", events, "--report-json", report, "-q", "--top", "0")
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("gale run: %v\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep engine.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	cmd, _, url, stderr := startGale(t, bin, "ui", events, report)
	page := b.Page(t, url)
	bt.WaitFor(t, page, `document.getElementById('status') && document.getElementById('status').textContent === 'succeeded'`,
		`galeUI.stats()`, time.Minute)
	attempts, cold := 0, 0
	for i, s := range rep.Stages {
		for k, want := range map[string]string{"done": fmt.Sprint(s.Done), "name": s.Name, "status": "done"} {
			expr := fmt.Sprintf(`document.querySelector('#stages tr[data-stage="%d"] td[data-k="%s"]').textContent`, i, k)
			if got := bt.Eval[string](t, page, expr); got != want {
				t.Errorf("stage %d %s: the page shows %q, the report %q", i, k, got, want)
			}
		}
		for _, r := range s.TaskRows {
			attempts += r.Attempts
			if r.Cold {
				cold++
			}
		}
	}
	st := bt.Eval[map[string]any](t, page, `galeUI.stats()`)
	if int(st["bars"].(float64)) != attempts || int(st["cold"].(float64)) != cold || st["job"] != rep.JobID {
		t.Errorf("timeline %v; the report has job %s, %d attempts, %d cold starts", st, rep.JobID, attempts, cold)
	}
	if got := bt.Eval[string](t, page, `document.getElementById('tot-invocations').textContent`); got != fmt.Sprint(rep.Invocations) {
		t.Errorf("invocations: the page shows %s, the report %d", got, rep.Invocations)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("gale ui exited with %v after the interrupt\n%s", err, stderr)
	}
}
