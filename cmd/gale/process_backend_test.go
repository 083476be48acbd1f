package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// galeBuilds are the gale binaries built once, by build tags, for every
// test of this package that runs them (building takes far longer than any
// of them); TestMain removes them.
var galeBuilds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*galeBuild
}

// galeBuild is one build of the gale command.
type galeBuild struct {
	once sync.Once
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if galeBuilds.dir != "" {
		os.RemoveAll(galeBuilds.dir)
	}
	os.Exit(code)
}

// galeBuildsDir returns the directory of the test binaries' builds,
// creating it on first use ("" if that failed).
func galeBuildsDir() string {
	galeBuilds.mu.Lock()
	defer galeBuilds.mu.Unlock()
	if galeBuilds.bins == nil {
		galeBuilds.bins = map[string]*galeBuild{}
		galeBuilds.dir, _ = os.MkdirTemp("", "gale-cmd-test-")
	}
	return galeBuilds.dir
}

// buildGale returns the gale command built into a temporary directory: the
// process backend re-executes its own binary, which a test binary is not.
// Tests must not modify the file; copy it to change it.
func buildGale(t *testing.T) string { return buildGaleTags(t, "") }

// buildGaleTags is buildGale with the build tags tags (comma-separated).
func buildGaleTags(t *testing.T, tags string) string {
	t.Helper()
	dir := galeBuildsDir()
	galeBuilds.mu.Lock()
	b := galeBuilds.bins[tags]
	if b == nil {
		b = &galeBuild{}
		galeBuilds.bins[tags] = b
	}
	galeBuilds.mu.Unlock()
	b.once.Do(func() {
		if dir == "" {
			b.err = errors.New("no temporary directory for the gale binaries")
			return
		}
		goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goCmd); err != nil {
			goCmd = "go"
		}
		b.bin = filepath.Join(dir, "gale")
		if tags != "" {
			b.bin += "-" + strings.ReplaceAll(tags, ",", "-")
		}
		// Stripped: smaller (a deployed action has a size limit) and faster
		// to link.
		args := []string{"build", "-ldflags=-s -w", "-o", b.bin}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		out, err := exec.Command(goCmd, append(args, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build -tags %q: %v\n%s", tags, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// partFiles reads an output directory's part files by name.
func partFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no part files in %s (%v)", dir, err)
	}
	parts := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		parts[filepath.Base(n)] = b
	}
	return parts
}

func TestWordCountOnTheProcessBackendMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	t.Parallel() // runs gale processes; sets no environment
	bin := buildGale(t)
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 3 << 20
	if err := textgen.GenerateFile(context.Background(), corpus, cfg); err != nil {
		t.Fatal(err)
	}
	run := func(backend string) (string, map[string][]byte) {
		out := filepath.Join(dir, "out-"+backend)
		// Small chunks and three workers: many tasks, several worker
		// processes, warm reuse.
		cmd := exec.Command(bin, "run", "wordcount", "--input", corpus, "--output", out, "--backend", backend,
			"--workers", "3", "--partitions", "4", "--chunk-size", "256KiB", "-q", "--top", "0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --backend %s: %v\nstdout:\n%s\nstderr:\n%s", backend, err, &stdout, &stderr)
		}
		return stdout.String(), partFiles(t, out)
	}
	localReport, local := run("local")
	procReport, proc := run("process")
	if !strings.Contains(procReport, "on process") || !strings.Contains(localReport, "on local") {
		t.Errorf("reports do not name their backends:\n%s\n%s", localReport, procReport)
	}
	if len(proc) != len(local) {
		t.Fatalf("process wrote %d part files, local %d", len(proc), len(local))
	}
	for name, want := range local {
		if !bytes.Equal(proc[name], want) {
			t.Errorf("%s differs between the process and local backends", name)
		}
	}
	// And both are right.
	want, err := wordref.CountFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if err := wordref.Diff(sumCounts(t, proc), want); err != nil {
		t.Error(err)
	}
}

// sumCounts parses a word count's part files and sums them.
func sumCounts(t *testing.T, parts map[string][]byte) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for name, b := range parts {
		m, err := wordref.ParseCounts(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for w, c := range m {
			got[w] += c
		}
	}
	return got
}

func TestUnknownBackendIsAUsageError(t *testing.T) {
	var jf jobFlags
	jf.backend = "lambda"
	_, _, err := jf.options(os.Stderr)
	if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "local, process") {
		t.Errorf("err = %v, want a usage error listing local, process", err)
	}
}
