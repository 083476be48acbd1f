//go:build !gale_slim

package main

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestBeamWordCountCommand runs `gale run beam-wordcount` from this
// source checkout (gale builds beam-wordcount with go install into its
// cache directory, a no-op once built) on the process backend, and checks
// the Beam pipeline's output against an independent count.
func TestBeamWordCountCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale and beam-wordcount binaries")
	}
	t.Parallel() // runs gale processes; sets no environment
	bin := buildGale(t)
	dir := t.TempDir()
	// Every token is a word by Beam's definition ([a-zA-Z]+('[a-z])?), so
	// splitting on spaces counts the same words.
	words := []string{"the", "quick", "Brown", "fox", "jumps", "over", "lazy", "dog's", "King", "Lear", "a", "an", "Gale", "beam"}
	var corpus strings.Builder
	want := map[string]int{}
	for i := range 2500 {
		for j := range 1 + i%7 {
			w := words[(i*5+j*3+i/11)%len(words)]
			corpus.WriteString(w + " ")
			want[w]++
		}
		corpus.WriteString("\n")
		if i%13 == 0 {
			corpus.WriteString("\n")
		}
	}
	in := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(in, []byte(corpus.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// run runs gale run beam-wordcount on a backend and checks its output
	// against the independent count.
	run := func(backend string, env []string, extra ...string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "counts.txt")
		args := append([]string{"run", "beam-wordcount", "--input", in, "--output", out, "--backend", backend, "--workers=2", "--top", "3"}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run beam-wordcount --backend %s: %v\nstdout:\n%s\nstderr:\n%s", backend, err, &stdout, &stderr)
		}
		t.Logf("--backend %s\nstdout:\n%s\nstderr:\n%s", backend, &stdout, &stderr)
		if !strings.Contains(stdout.String(), "runner gale") || !strings.Contains(stderr.String(), "on "+backend) {
			t.Errorf("the run does not report the gale runner on the %s backend:\nstdout:\n%s\nstderr:\n%s", backend, &stdout, &stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for line := range strings.Lines(string(b)) {
			w, c, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
			n, err := strconv.Atoi(c)
			if !ok || err != nil {
				t.Fatalf("malformed output line %q", line)
			}
			if _, dup := got[w]; dup {
				t.Fatalf("word %q appears twice in the output", w)
			}
			got[w] = n
		}
		if !maps.Equal(got, want) {
			t.Fatalf("--backend %s: counts differ from the independent count:\ngot  %v\nwant %v", backend, got, want)
		}
	}
	run("process", nil)
	// The beam-wordcount binary as a cloud function: Functions Framework
	// instances of it (the gcp backend's local stand-in), and actions of
	// the loopback OpenWhisk controller (whose temporary store must be
	// named: the ibm backend's workers are not assumed to share this
	// machine's disk).
	gcpConf := filepath.Join(dir, "gcp.yaml")
	if err := os.WriteFile(gcpConf, []byte("backends:\n  gcp:\n    local:\n      instances: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("gcp", []string{"GALE_CONFIG=" + gcpConf})
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	_, whiskConf, wskprops := startWhisk(t, filepath.Join(cache, "gale", "bin", beamWordCount))
	run("ibm", []string{"GALE_CONFIG=" + whiskConf, "WSK_CONFIG_FILE=" + wskprops}, "--gale_temp", t.TempDir())

	// A flag beam-wordcount rejects: its status (2, from package flag)
	// is gale's.
	cmd := exec.Command(bin, "run", "beam-wordcount", "--no-such-flag")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Errorf("gale run beam-wordcount --no-such-flag: %v, want exit status 2 naming the flag\n%s", err, &stderr)
	}
}

// With no binary next to gale, none on PATH and no checkout, the error
// says what to install.
func TestBeamWordCountNotFound(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PATH", t.TempDir())
	root := newRootCmd()
	root.SetArgs([]string{"run", "beam-wordcount", "--input", "x.txt"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err := root.Execute()
	if !errors.Is(err, errNoBeamWordCount) || !strings.Contains(err.Error(), "go install "+beamWordCountPkg) {
		t.Fatalf("err = %v, want errNoBeamWordCount naming `go install %s`", err, beamWordCountPkg)
	}
	root = newRootCmd()
	root.SetArgs([]string{"run", "beam-wordcount", "--binary", filepath.Join(t.TempDir(), "missing")})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--binary") {
		t.Fatalf("a missing --binary: %v", err)
	}
}

func TestBeamArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		binary string
		pass   []string
		help   bool
	}{
		{args: []string{"--input", "a.txt", "--backend", "aws", "--workers=4", "--partitions", "8", "--gale_temp", "s3://b/t", "--worker-memory", "64MiB"},
			pass: []string{"--input", "a.txt", "--gale_backend=aws", "--gale_workers=4", "--gale_partitions=8", "--gale_temp", "s3://b/t", "--gale_worker_memory=64MiB"}},
		{args: []string{"--binary", "/x/bw", "--runner=prism", "--", "--backend", "--help"}, binary: "/x/bw",
			pass: []string{"--runner=prism", "--backend", "--help"}},
		{args: []string{"--output", "o", "-h"}, pass: []string{"--output", "o"}, help: true},
		{args: []string{"--ui", "--events", "ev.jsonl", "--input", "a.txt"},
			pass: []string{"--gale_ui", "--gale_events=ev.jsonl", "--input", "a.txt", "--gale_ui_wait"}},
		{args: []string{"--ui=127.0.0.1:8080", "--ui-wait=false"}, pass: []string{"--gale_ui=127.0.0.1:8080", "--gale_ui_wait=false"}},
		{args: []string{"--speculation", "off", "--task-timeout=2m"}, pass: []string{"--gale_speculation=off", "--gale_task_timeout=2m"}},
	} {
		binary, pass, help := beamArgs(tc.args)
		if binary != tc.binary || !slices.Equal(pass, tc.pass) || help != tc.help {
			t.Errorf("beamArgs(%q) = %q, %q, %v; want %q, %q, %v", tc.args, binary, pass, help, tc.binary, tc.pass, tc.help)
		}
	}
}
