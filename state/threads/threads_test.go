package threads

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/state"
)

func setup(t *testing.T, reg *Registry, retry RetryPolicy) (*Executor, *state.Client) {
	t.Helper()
	srv, err := state.NewServer(state.ServerConfig{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(context.Background()) }()
	w := NewWorker(reg)
	b, err := local.New(local.Config{Handler: w.Handle, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	dso := &DSO{Servers: []string{srv.Addr()}, Token: "tok"}
	ex, err := NewExecutor(Config{Backend: b, DSO: dso, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	c, err := state.Dial(context.Background(), state.ClientConfig{Servers: dso.Servers, Token: dso.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ex.Close()
		_ = b.Close()
		_ = w.Close()
		_ = c.Close()
		_ = srv.Close()
	})
	return ex, c
}

func TestGoWaitSharesDSO(t *testing.T) {
	reg := NewRegistry()
	Register(reg, "add", func(ctx context.Context, env *Env, n int64) (int64, error) {
		return env.DSO.AtomicLong("sum").AddAndGet(ctx, n)
	})
	ex, c := setup(t, reg, RetryPolicy{})
	ctx := context.Background()
	var ts []*Thread
	for i := 1; i <= 20; i++ {
		ts = append(ts, ex.Go(ctx, "add", int64(i)))
	}
	for _, th := range ts {
		if _, err := WaitAs[int64](ctx, th); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := c.AtomicLong("sum").Get(ctx); v != 210 {
		t.Fatalf("sum = %d, want 210", v)
	}
}

func TestInvokeAllAndErrors(t *testing.T) {
	reg := NewRegistry()
	Register(reg, "echo", func(ctx context.Context, env *Env, s string) (string, error) {
		if s == "bad" {
			return "", errors.New("refusing bad input")
		}
		return strings.ToUpper(s), nil
	})
	ex, _ := setup(t, reg, RetryPolicy{})
	res, err := ex.InvokeAll(context.Background(), []Call{{"echo", "a"}, {"echo", "bad"}, {"echo", "c"}, {"nope", 1}})
	if string(res[0]) != `"A"` || string(res[2]) != `"C"` {
		t.Fatalf("results = %s", res)
	}
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "refusing bad input") || !strings.Contains(err.Error(), `unknown function "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParallelForCoversEveryIterationOnce(t *testing.T) {
	reg := NewRegistry()
	RegisterFor(reg, "mark", func(ctx context.Context, env *Env, i int, key string) error {
		_, err := env.DSO.AtomicByteArray(key, 1000).AddAndGet(ctx, i, 1)
		return err
	})
	ex, c := setup(t, reg, RetryPolicy{})
	ctx := context.Background()
	if err := ex.ParallelFor(ctx, "mark", 1000, 7, "marks"); err != nil {
		t.Fatal(err)
	}
	all, _ := c.AtomicByteArray("marks", 1000).GetAll(ctx)
	for i, v := range all {
		if v != 1 {
			t.Fatalf("iteration %d ran %d times", i, v)
		}
	}
}

// flaky fails the first invocations in the way the policy distinguishes.
type flaky struct {
	backends.Backend
	notStarted, ran atomic.Int32
}

func (f *flaky) Invoke(ctx context.Context, task backends.Task) (backends.Result, error) {
	if f.notStarted.Add(-1) >= 0 {
		return backends.Result{}, backends.ErrNotStarted
	}
	if f.ran.Add(-1) >= 0 {
		return backends.Result{}, &backends.FunctionError{Backend: "flaky", Type: "timeout", Message: "ran out of time"}
	}
	return f.Backend.Invoke(ctx, task)
}

func TestRetryPolicy(t *testing.T) {
	reg := NewRegistry()
	Register(reg, "one", func(ctx context.Context, env *Env, _ int) (int, error) { return 1, nil })
	b, _ := local.New(local.Config{Handler: Handler(reg)})
	defer b.Close()
	ctx := context.Background()

	fl := &flaky{Backend: b}
	fl.notStarted.Store(2)
	ex, _ := NewExecutor(Config{Backend: fl, Retry: RetryPolicy{MaxAttempts: 3}})
	th := ex.Go(ctx, "one", 0)
	if _, err := th.Wait(ctx); err != nil || th.Attempts() != 3 {
		t.Fatalf("not-started retried: err=%v attempts=%d", err, th.Attempts())
	}
	// A function error is not retried by default...
	fl.ran.Store(1)
	th = ex.Go(ctx, "one", 0)
	if _, err := th.Wait(ctx); err == nil || th.Attempts() != 1 {
		t.Fatalf("function error: err=%v attempts=%d", err, th.Attempts())
	}
	_ = ex.Close()
	// ...but is when the policy says so.
	fl.ran.Store(1)
	ex, _ = NewExecutor(Config{Backend: fl, Retry: RetryPolicy{MaxAttempts: 2, RetryFunctionErrors: true}})
	defer ex.Close()
	th = ex.Go(ctx, "one", 0)
	if _, err := th.Wait(ctx); err != nil || th.Attempts() != 2 {
		t.Fatalf("function error with policy: err=%v attempts=%d", err, th.Attempts())
	}
}

func TestBadPayload(t *testing.T) {
	w := NewWorker(NewRegistry())
	if _, err := w.Handle(context.Background(), []byte(`{"kind":"other"}`)); !errors.Is(err, ErrBadPayload) {
		t.Fatalf("err = %v", err)
	}
}
