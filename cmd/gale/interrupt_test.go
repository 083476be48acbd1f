package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/internal/textgen"
)

// Ctrl-C during gale run stops the job: gale says it was interrupted and
// exits 130, no task is retried or reported failed, and no output appears.
func TestCtrlCInterruptsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gale")
	}
	t.Parallel()
	bin := buildGaleTags(t, "gale_slim")
	in := filepath.Join(t.TempDir(), "in.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 32 << 20
	if err := textgen.GenerateFile(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"local", "process"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, events := filepath.Join(dir, "out"), filepath.Join(dir, "events.jsonl")
			cmd := exec.Command(bin, "run", "wordcount", "--input", in, "--output", out, "--backend", backend,
				"--workers", "1", "--chunk-size", "512KiB", "--events", events, "--top", "0")
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Interrupt once a task has finished: the job is running, with
			// most of its tasks to go.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				b, _ := os.ReadFile(events)
				if bytes.Contains(b, []byte(`"event":"task_end"`)) {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("no task finished within 2 minutes:\n%s", stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("gale exited with %v, want exit status 130\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "gale: job ") || !strings.Contains(stderr.String(), " interrupted") ||
				strings.Contains(stderr.String(), "failed") {
				t.Errorf("stderr does not say the job was interrupted, or says it failed:\n%s", stderr.String())
			}
			b, err := os.ReadFile(events)
			if err != nil {
				t.Fatal(err)
			}
			log := string(b)
			at := strings.Index(log, `"event":"job_interrupted"`)
			if at < 0 {
				t.Fatalf("no job_interrupted event:\n%s", log)
			}
			for _, ev := range []string{"task_start", "task_failed"} {
				if strings.Contains(log[at:], `"event":"`+ev+`"`) {
					t.Errorf("%s after the interruption:\n%s", ev, log[at:])
				}
			}
			if strings.Contains(log, `"event":"task_failed"`) {
				t.Errorf("a task failed:\n%s", log)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the interrupted run's output exists (stat: %v)", err)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != "events.jsonl" {
					t.Errorf("left beside the output: %s", e.Name())
				}
			}
		})
	}
}
