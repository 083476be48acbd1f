package probe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
)

func TestHandlerSleepAndCompute(t *testing.T) {
	h := Handler()
	ctx := context.Background()
	out, err := h(ctx, NewRequest(Sleep, 20*time.Millisecond, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != ResultKind || r.Seq != 3 || !r.Cold || r.Instance == "" || r.InstanceSource == "" {
		t.Errorf("first response = %+v; want kind %s, seq 3, cold, an instance and its source", r, ResultKind)
	}
	if d := r.End().Sub(r.Start()); d < 20*time.Millisecond {
		t.Errorf("sleep task ran %v, want at least 20ms", d)
	}
	out, err = h(ctx, NewRequest(Compute, 0, 1_000_000, 4))
	if err != nil {
		t.Fatal(err)
	}
	var c Response
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if c.Cold || c.Instance != r.Instance {
		t.Errorf("second response cold=%v instance=%q; want warm on instance %q", c.Cold, c.Instance, r.Instance)
	}
	if c.Iterations != 1_000_000 || c.Pi < 3.1 || c.Pi > 3.2 {
		t.Errorf("compute ran %d iterations estimating π = %v; want 1e6 iterations and about 3.14", c.Iterations, c.Pi)
	}
	if _, err := h(ctx, []byte(`{"kind":"gale.probe/v1","task":"dance"}`)); err == nil || !strings.Contains(err.Error(), "dance") {
		t.Errorf("unknown task: err = %v, want one naming the task", err)
	}
}

func TestHandlerHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Handler()(ctx, NewRequest(Compute, 0, 1<<40, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("compute on a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestCgroupIdentity(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := dir + "/" + name
		if err := writeFile(p, s); err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := strings.Repeat("ab12", 16)
	for _, c := range []struct{ file, want string }{
		{write("aws", "11:pids:/sandbox-root-Xy7Qp2/sandbox-0\n"), "sandbox-root-Xy7Qp2"},
		{write("docker", "0::/docker/"+id+"\n"), id},
		{write("host", "0::/\n"), ""},
	} {
		if got := cgroupIdentity(c.file); got != c.want {
			t.Errorf("cgroupIdentity(%s) = %q, want %q", c.file, got, c.want)
		}
	}
}

func TestRunOnLocalBackend(t *testing.T) {
	const n = 6
	b, err := local.New(local.Config{Handler: Handler(), Concurrency: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tr, err := Run(context.Background(), b, Config{Invocations: n, Task: Sleep, Duration: 100 * time.Millisecond, Warm: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Records) != n || len(tr.Warmup) != 2 {
		t.Fatalf("trace has %d records and %d warm-up records, want %d and 2", len(tr.Records), len(tr.Warmup), n)
	}
	m := Analyze(tr)
	// Every slot runs one sleeping invocation, all at once: the sleeps
	// overlap whatever the scheduling noise, since each lasts 100 ms and
	// all are in flight together.
	if m.OK != n || m.Instances != n || m.ParallelDegree != n {
		t.Errorf("metrics %+v; want %d ok on %d instances, parallel degree %d", m, n, n, n)
	}
	// The warm-up round made two slots warm, so the measured round has
	// n-2 cold starts.
	if m.ColdStarts != n-2 {
		t.Errorf("cold starts = %d, want %d", m.ColdStarts, n-2)
	}
	for _, r := range tr.Records {
		if r.End.Sub(r.Start) < 100*time.Millisecond || r.Start.Before(r.Sent) || r.Returned.Before(r.End) {
			t.Errorf("record %+v: want a ≥100ms task inside its send/return span", r)
		}
	}
}

// scripted is a backend whose invocations end as the test says.
type scripted struct {
	h     backends.Handler
	calls atomic.Int64
	done  atomic.Int64        // invocations that ran the handler
	fail  func(seq int) error // nil error: run the handler
	block chan struct{}
}

func (s *scripted) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	s.calls.Add(1)
	req, err := ParseRequest(t.Payload)
	if err != nil {
		return backends.Result{}, err
	}
	if err := s.fail(req.Seq); err != nil {
		return backends.Result{}, err
	}
	if s.block != nil && req.Seq%2 == 1 {
		select {
		case <-s.block:
		case <-ctx.Done():
			return backends.Result{}, ctx.Err()
		}
	}
	out, err := s.h(ctx, t.Payload)
	s.done.Add(1)
	return backends.Result{Payload: out}, err
}
func (s *scripted) Close() error { return nil }
func (s *scripted) Traits() backends.Traits {
	return backends.Traits{Name: "scripted", MaxConcurrency: 10, MemoryMiB: 2048}
}

func TestRunRecordsEveryOutcome(t *testing.T) {
	b := &scripted{h: Handler(), fail: func(seq int) error {
		switch seq {
		case 1:
			return errors.New("connection reset")
		case 2:
			return &backends.FunctionError{Backend: "scripted", Type: "timeout", Message: "killed after 900 s"}
		case 3:
			return backends.ErrNotStarted
		case 4:
			return context.DeadlineExceeded
		}
		return nil
	}}
	tr, err := Run(context.Background(), b, Config{Invocations: 6, Task: Sleep, Duration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{OK, OutcomeError, OutcomeTimeout, OutcomeRejected, OutcomeTimeout, OK}
	for i, r := range tr.Records {
		if r.Outcome != want[i] {
			t.Errorf("record %d outcome %s (%s), want %s", i, r.Outcome, r.Error, want[i])
		}
		if r.Outcome != OK && r.Error == "" {
			t.Errorf("record %d: failure without its error text", i)
		}
	}
	if m := Analyze(tr); m.Failures != 4 || m.Rejected != 1 || m.Timeouts != 2 || m.Errors != 1 {
		t.Errorf("metrics %+v: want 4 failures: 1 rejected, 2 timeouts, 1 error", m)
	}
}

func TestRunRejectsBadInputBeforeSending(t *testing.T) {
	b := &scripted{h: Handler(), fail: func(int) error { return nil }}
	_, err := Run(context.Background(), b, Config{Invocations: 11, MemoryMiB: 256, Task: "dance"})
	if err == nil {
		t.Fatal("Run accepted 11 invocations over a limit of 10")
	}
	for _, want := range []string{"concurrency limit of 10", "256 MiB", "2048 MiB", "dance"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := b.calls.Load(); n != 0 {
		t.Errorf("%d invocations were sent despite the bad configuration", n)
	}
}

func TestRunInterruptedKeepsMeasurements(t *testing.T) {
	block := make(chan struct{})
	b := &scripted{h: Handler(), fail: func(int) error { return nil }, block: block}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var tr *Trace
	var err error
	go func() {
		defer close(done)
		tr, err = Run(ctx, b, Config{Invocations: 4, Task: Sleep, Duration: time.Millisecond})
	}()
	// Wait until the even invocations have answered and the odd ones are
	// blocked, then interrupt.
	for b.calls.Load() < 4 || b.done.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) || tr == nil || !tr.Interrupted {
		t.Fatalf("Run after cancel: trace %v, err %v; want the partial trace and context.Canceled", tr, err)
	}
	m := Analyze(tr)
	if m.OK != 2 || m.Cancelled != 2 || !m.Interrupted {
		t.Errorf("metrics %+v: want 2 ok and 2 cancelled, interrupted", m)
	}
}

func TestAsyncRunCollectsResultsFromTheStore(t *testing.T) {
	const n, slots = 40, 8
	b, err := local.New(local.Config{Handler: Handler(), Concurrency: slots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dir := t.TempDir()
	// More invocations than slots: asynchronous invocations queue.
	tr, err := Run(context.Background(), b, Config{Invocations: n, Task: Sleep, Duration: 50 * time.Millisecond,
		Async: true, ResultStore: dir, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Async || len(tr.Records) != n {
		t.Fatalf("trace async=%v with %d records, want async with %d", tr.Async, len(tr.Records), n)
	}
	m := Analyze(tr)
	if m.OK != n || m.ParallelDegree > slots || m.Instances > slots {
		t.Errorf("metrics %+v: want %d ok on at most %d instances", m, n, slots)
	}
	for _, r := range tr.Records {
		if r.Returned.Before(r.End) || r.End.Sub(r.Start) < 50*time.Millisecond {
			t.Errorf("record %+v: want a ≥50ms task whose result was found after it ended", r)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the run left %d entries in its result store, want none", len(left))
	}
}

func TestAsyncRunRecordsMissingResults(t *testing.T) {
	// A backend whose functions acknowledge without writing results (the
	// probe handler is not what runs there).
	b := &scripted{h: func(context.Context, []byte) ([]byte, error) { return []byte(`{}`), nil }, fail: func(seq int) error {
		if seq == 1 {
			return backends.ErrNotStarted
		}
		return nil
	}}
	tr, err := Run(context.Background(), b, Config{Invocations: 3, Task: Sleep, Duration: time.Millisecond, Async: true, ResultStore: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{OutcomeError, OutcomeRejected, OutcomeError}
	for i, r := range tr.Records {
		if r.Outcome != want[i] {
			t.Errorf("record %d: %s (%s), want %s", i, r.Outcome, r.Error, want[i])
		}
	}
	if !strings.Contains(tr.Records[0].Error, "no result") {
		t.Errorf("error %q does not say the result is missing", tr.Records[0].Error)
	}
	if _, err := Run(context.Background(), b, Config{Invocations: 3, Async: true}); err == nil || !strings.Contains(err.Error(), "result store") {
		t.Errorf("async without a result store: err = %v", err)
	}
}
