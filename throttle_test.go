package gale_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
)

// throttling wraps a backend and claims every invocation met one throttled
// answer before it went through, as a cloud backend that retried would.
type throttling struct {
	backends.Backend
	n atomic.Int64
}

func (t *throttling) Invoke(ctx context.Context, task backends.Task) (backends.Result, error) {
	t.n.Add(1)
	return t.Backend.Invoke(ctx, task)
}

func (t *throttling) ThrottledRetries() int64 { return t.n.Load() }

func TestReportCountsThrottledInvocations(t *testing.T) {
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	b := &throttling{Backend: lb}
	b.n.Store(100) // counts from before the job are not the job's
	p := gale.NewPipeline()
	gale.Collect(gale.CountPerElement(gale.Generate(p, 1000, square)))
	report, err := gale.Run(context.Background(), p, gale.WithBackend("throttling", b), gale.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	if report.Throttled != report.Invocations || report.Throttled == 0 {
		t.Errorf("report counts %d throttled invocations, want %d", report.Throttled, report.Invocations)
	}
}
