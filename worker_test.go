package gale_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

func TestWorkerMode(t *testing.T) {
	t.Setenv(gale.WorkerEnv, "")
	if m := gale.WorkerMode(); m != "" {
		t.Errorf("WorkerMode = %q in a normal process", m)
	}
	if err := gale.ServeWorker(context.Background()); err == nil || !strings.Contains(err.Error(), "not started as a worker") {
		t.Errorf("ServeWorker outside a worker: %v", err)
	}
	gale.ServeWorkerIfRequested() // returns at once

	t.Setenv(gale.WorkerEnv, "lambda-someday")
	if m := gale.WorkerMode(); m != "lambda-someday" {
		t.Errorf("WorkerMode = %q", m)
	}
	err := gale.ServeWorker(context.Background())
	if err == nil || !strings.Contains(err.Error(), `unknown worker mode "lambda-someday"`) || !strings.Contains(err.Error(), "known: ") || !strings.Contains(err.Error(), "process") {
		t.Errorf("ServeWorker with an unknown mode: %v", err)
	}
}

func TestNewWorkerMuxServesStagesAndAddedKinds(t *testing.T) {
	m, err := gale.NewWorkerMux(gale.WorkerHandler("gale.test/v1", func(context.Context, []byte) ([]byte, error) {
		return []byte("ok"), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Kinds(), ","); got != "gale.stage/v1,gale.test/v1" {
		t.Errorf("Kinds = %s", got)
	}
	out, err := m.Handle(context.Background(), []byte(`{"kind":"gale.test/v1"}`))
	if err != nil || string(out) != "ok" {
		t.Errorf("Handle = %q, %v", out, err)
	}
}

// TestRunServesTasksInWorkers runs a program on the process backend with
// the default configuration: its workers re-run it with the same
// arguments, and gale.Run serves tasks in them.
func TestRunServesTasksInWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	bin := filepath.Join(t.TempDir(), "workerprog")
	if out, err := exec.Command(goCmd, "build", "-o", bin, "./testdata/workerprog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const n = 5000
	cmd := exec.Command(bin, "-n", fmt.Sprint(n), "-workers", "2")
	cmd.Env = append(os.Environ(), gale.WorkerEnv+"=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("workerprog: %v\n%s", err, &stderr)
	}
	var sums [7]int64
	for i := int64(0); i < n; i++ {
		sums[i*i%7] += i * i
	}
	var want strings.Builder
	for k, s := range sums {
		if s != 0 {
			fmt.Fprintf(&want, "%d %d\n", k, s)
		}
	}
	if stdout.String() != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", &stdout, &want)
	}
	if !strings.Contains(stderr.String(), "workers started: ") || strings.Contains(stderr.String(), "workers started: 0") {
		t.Errorf("the job did not run in worker processes:\n%s", &stderr)
	}
}
