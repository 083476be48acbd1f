package gale_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
)

// TestMain makes the test binary its own worker when the process backend
// starts it: it builds the pipelines of the tests that run on workers
// (registering their kernels, as a user's program does by running main up
// to gale.Run), then serves tasks.
func TestMain(m *testing.M) {
	if gale.WorkerMode() != "" {
		for _, build := range workerPipelines {
			build(gale.NewPipeline())
		}
		gale.ServeWorkerIfRequested()
	}
	code := m.Run()
	closeProcessBackend()
	os.Exit(code)
}

// workerPipelines build, in a worker process, the pipelines whose tasks
// the tests send to the process backend. A builder gets the configuration
// a worker knows by itself, which need not be the driver's.
var workerPipelines = map[string]func(p *gale.Pipeline){}

var shared struct {
	once sync.Once
	b    *process.Backend
	err  error
}

// processBackend returns the package's process backend (worker processes
// of this test binary), started on first use and closed by TestMain.
func processBackend(t *testing.T) *process.Backend {
	t.Helper()
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	shared.once.Do(func() {
		cfg := process.DefaultConfig()
		cfg.Args = nil
		cfg.Concurrency = 2
		cfg.Output = io.Discard
		shared.b, shared.err = process.New(cfg)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

func closeProcessBackend() {
	if shared.b != nil {
		if err := shared.b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the process backend:", err)
		}
	}
}

// onBackends runs fn once on the local backend and once on the process
// backend, as subtests, with the run options that select each.
func onBackends(t *testing.T, fn func(t *testing.T, opts ...gale.RunOption)) {
	t.Helper()
	t.Run("local", func(t *testing.T) { fn(t, gale.Workers(2)) })
	t.Run("process", func(t *testing.T) {
		b := processBackend(t)
		fn(t, gale.WithBackend("process", b), gale.Workers(2))
	})
}

// run runs p and fails the test on an error.
func run(t *testing.T, p *gale.Pipeline, opts ...gale.RunOption) *gale.Report {
	t.Helper()
	r, err := gale.Run(context.Background(), p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
