package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
)

// fake is an inner backend that records its invocations.
type fake struct {
	mu     sync.Mutex
	calls  map[string]int
	closed int
	// run, when set, runs the call-th (1-based) invocation of t.
	run func(ctx context.Context, t backends.Task, call int) (backends.Result, error)
}

func newFake() *fake { return &fake{calls: map[string]int{}} }

func (f *fake) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	f.mu.Lock()
	f.calls[t.ID]++
	n := f.calls[t.ID]
	run := f.run
	f.mu.Unlock()
	if run != nil {
		return run(ctx, t, n)
	}
	return backends.Result{Payload: append([]byte("ok:"), t.Payload...)}, nil
}

func (f *fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fake) Traits() backends.Traits { return backends.Traits{Name: "fake", MaxConcurrency: 7} }

func (f *fake) callsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func always(f faulty.Fault) func(backends.Task, int) faulty.Fault {
	return func(backends.Task, int) faulty.Fault { return f }
}

func task(id string) backends.Task { return backends.Task{ID: id, Payload: []byte(id)} }

func TestNonePassesThrough(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{})
	defer b.Close()
	res, err := b.Invoke(context.Background(), task("t1"))
	if err != nil || string(res.Payload) != "ok:t1" {
		t.Fatalf("Invoke = %q, %v; want ok:t1, nil", res.Payload, err)
	}
	if got := b.Stats(); got != (faulty.Stats{Invocations: 1, Passed: 1}) {
		t.Errorf("Stats = %+v", got)
	}
}

func TestReject(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Reject)})
	defer b.Close()
	_, err := b.Invoke(context.Background(), task("t1"))
	if !errors.Is(err, backends.ErrNotStarted) || !errors.Is(err, faulty.ErrRejected) {
		t.Fatalf("err = %v; want ErrRejected wrapping ErrNotStarted", err)
	}
	if !strings.Contains(err.Error(), "t1") {
		t.Errorf("error %q does not name the task", err)
	}
	if n := in.callsOf("t1"); n != 0 {
		t.Errorf("a rejected task ran %d times", n)
	}
	if got := b.Stats(); got.Rejected != 1 || got.Invocations != 1 {
		t.Errorf("Stats = %+v", got)
	}
}

func TestFailRunsThenReportsFunctionError(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Fail)})
	defer b.Close()
	res, err := b.Invoke(context.Background(), task("t1"))
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("err = %v; want a *FunctionError not wrapping ErrNotStarted", err)
	}
	if fe.Type != "crash" || !strings.Contains(fe.Message, "t1") {
		t.Errorf("FunctionError = %+v", fe)
	}
	if res.Payload != nil {
		t.Errorf("a crashed invocation returned payload %q", res.Payload)
	}
	if n := in.callsOf("t1"); n != 1 {
		t.Errorf("the task ran %d times, want 1", n)
	}
}

func TestFailKeepsInnerError(t *testing.T) {
	in := newFake()
	inner := &backends.FunctionError{Backend: "fake", Type: "panic", Message: "boom"}
	in.run = func(context.Context, backends.Task, int) (backends.Result, error) { return backends.Result{}, inner }
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Fail)})
	defer b.Close()
	if _, err := b.Invoke(context.Background(), task("t1")); !errors.Is(err, inner) {
		t.Fatalf("err = %v; want the inner error", err)
	}
}

func TestLose(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Lose)})
	defer b.Close()
	_, err := b.Invoke(context.Background(), task("t1"))
	if !errors.Is(err, faulty.ErrLost) || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("err = %v; want ErrLost, not ErrNotStarted", err)
	}
	if n := in.callsOf("t1"); n != 1 {
		t.Errorf("the task ran %d times, want 1", n)
	}
	if got := b.Stats(); got.Lost != 1 {
		t.Errorf("Stats = %+v", got)
	}
}

func TestDelayRuns(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Delay)})
	defer b.Close()
	res, err := b.Invoke(context.Background(), task("t1"))
	if err != nil || string(res.Payload) != "ok:t1" {
		t.Fatalf("Invoke = %q, %v", res.Payload, err)
	}
	if got := b.Stats(); got.Delayed != 1 {
		t.Errorf("Stats = %+v", got)
	}
}

func TestDelayHonoursContext(t *testing.T) {
	in := newFake()
	// A delay far longer than any test: only cancellation can end it.
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Delay), MaxDelay: math.MaxInt64})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Invoke(ctx, task("t1"))
	if !errors.Is(err, backends.ErrNotStarted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want ErrNotStarted and context.Canceled", err)
	}
	if n := in.callsOf("t1"); n != 0 {
		t.Errorf("a cancelled delayed task ran %d times", n)
	}
}

func TestDuplicateReturnsFirstAndCloseWaitsForSecond(t *testing.T) {
	in := newFake()
	release := make(chan struct{})
	var secondDone bool // written by the second copy, read after Close
	in.run = func(ctx context.Context, tk backends.Task, call int) (backends.Result, error) {
		if tk.ID != "t1" || call == 1 {
			return backends.Result{Payload: []byte("first")}, nil
		}
		<-release
		secondDone = true
		return backends.Result{Payload: []byte("second")}, nil
	}
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Duplicate)})
	res, err := b.Invoke(context.Background(), task("t1"))
	if err != nil || string(res.Payload) != "first" {
		t.Fatalf("Invoke = %q, %v; want the first copy's result", res.Payload, err)
	}
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	// Wait until Close has begun (new invocations are refused), then let
	// the second copy finish: Close must have waited for it.
	for {
		if _, err := b.Invoke(context.Background(), task("probe")); errors.Is(err, backends.ErrClosed) {
			break
		}
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !secondDone {
		t.Fatal("Close returned before the duplicate copy finished")
	}
	if n := in.callsOf("t1"); n != 2 {
		t.Errorf("the task ran %d times, want 2", n)
	}
	if in.closed != 1 {
		t.Errorf("inner closed %d times, want 1", in.closed)
	}
}

func TestRuleSeesInvocationCounts(t *testing.T) {
	in := newFake()
	var got []string
	b := faulty.New(in, faulty.Config{Rule: func(tk backends.Task, n int) faulty.Fault {
		got = append(got, fmt.Sprintf("%s#%d", tk.ID, n))
		if tk.ID == "a" && n < 3 {
			return faulty.Reject
		}
		return faulty.None
	}})
	defer b.Close()
	for _, id := range []string{"a", "b", "a", "a"} {
		_, _ = b.Invoke(context.Background(), task(id))
	}
	if want := "a#1 b#1 a#2 a#3"; strings.Join(got, " ") != want {
		t.Errorf("Rule saw %q, want %q", strings.Join(got, " "), want)
	}
	if in.callsOf("a") != 1 || in.callsOf("b") != 1 {
		t.Errorf("inner calls a=%d b=%d, want 1 and 1", in.callsOf("a"), in.callsOf("b"))
	}
	if s := b.Stats(); s != (faulty.Stats{Invocations: 4, Passed: 2, Rejected: 2}) {
		t.Errorf("Stats = %+v", s)
	}
}

// faultsOf invokes ids in order on a fresh backend and returns which
// fault each got, inferred from the outcome and the inner call count.
func faultsOf(t *testing.T, cfg faulty.Config, ids []string) (map[string]string, faulty.Stats) {
	t.Helper()
	in := newFake()
	b := faulty.New(in, cfg)
	out := map[string]string{}
	for _, id := range ids {
		_, err := b.Invoke(context.Background(), task(id))
		switch {
		case errors.Is(err, faulty.ErrRejected):
			out[id] = "reject"
		case errors.Is(err, faulty.ErrLost):
			out[id] = "lose"
		case err != nil:
			out[id] = "fail"
		default:
			out[id] = "ok"
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if in.callsOf(id) == 2 {
			out[id] = "duplicate"
		}
	}
	return out, b.Stats()
}

func TestRandomFaultsAreReproducibleAndOrderFree(t *testing.T) {
	cfg := faulty.Config{Seed: 42, RejectRate: 0.1, FailRate: 0.1, DelayRate: 0.1, DuplicateRate: 0.1, LoseRate: 0.1,
		MaxDelay: 1000}
	var ids, rev []string
	for i := range 400 {
		ids = append(ids, fmt.Sprintf("job/stage-%d/task-%d/attempt-1", i%3, i))
	}
	for i := len(ids) - 1; i >= 0; i-- {
		rev = append(rev, ids[i])
	}
	a, sa := faultsOf(t, cfg, ids)
	b, sb := faultsOf(t, cfg, rev)
	if sa != sb {
		t.Errorf("same seed, other order: stats %+v vs %+v", sa, sb)
	}
	for _, id := range ids {
		if a[id] != b[id] {
			t.Errorf("%s: %s in order, %s in reverse order", id, a[id], b[id])
		}
	}
	cfg.Seed = 43
	c, _ := faultsOf(t, cfg, ids)
	diff := 0
	for _, id := range ids {
		if a[id] != c[id] {
			diff++
		}
	}
	if diff == 0 {
		t.Error("seeds 42 and 43 injected identical faults")
	}
}

func TestRatesAreRespected(t *testing.T) {
	// The decisions are deterministic for a seed, so these bounds (about
	// five standard deviations) cannot flake; they catch a wrong mapping
	// from rates to faults.
	const n = 20000
	cfg := faulty.Config{Seed: 1, RejectRate: 0.05, FailRate: 0.1, DelayRate: 0.15, DuplicateRate: 0.2, LoseRate: 0.25,
		MaxDelay: 1000}
	b := faulty.New(newFake(), cfg)
	defer b.Close()
	for i := range n {
		_, _ = b.Invoke(context.Background(), task(fmt.Sprint("t", i)))
	}
	s := b.Stats()
	check := func(name string, got int64, rate float64) {
		want := rate * n
		sd := math.Sqrt(n * rate * (1 - rate))
		if math.Abs(float64(got)-want) > 5*sd {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, n, want)
		}
	}
	check("rejected", s.Rejected, 0.05)
	check("failed", s.Failed, 0.1)
	check("delayed", s.Delayed, 0.15)
	check("duplicated", s.Duplicated, 0.2)
	check("lost", s.Lost, 0.25)
	check("passed", s.Passed, 0.25)
	if s.Invocations != n {
		t.Errorf("Invocations = %d, want %d", s.Invocations, n)
	}
}

func TestConcurrentInvocations(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Seed: 3, RejectRate: 0.2, FailRate: 0.2, DelayRate: 0.2, DuplicateRate: 0.2,
		LoseRate: 0.1, MaxDelay: 100_000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				_, _ = b.Invoke(context.Background(), task(fmt.Sprintf("g%d-t%d", g, i)))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	if s.Invocations != 400 || s.Passed+s.Rejected+s.Failed+s.Delayed+s.Duplicated+s.Lost != 400 {
		t.Errorf("Stats = %+v; want 400 invocations, each counted once", s)
	}
	total := 0
	for _, c := range in.calls {
		total += c
	}
	// Every invocation but the rejected ones ran once, duplicates twice.
	if want := 400 - int(s.Rejected) + int(s.Duplicated); total != want {
		t.Errorf("inner ran %d times, want %d", total, want)
	}
}

func TestCloseIsIdempotentAndRefuses(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if in.closed != 1 {
		t.Errorf("inner closed %d times, want 1", in.closed)
	}
	_, err := b.Invoke(context.Background(), task("t1"))
	if !errors.Is(err, backends.ErrClosed) || !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("Invoke after Close: %v; want ErrClosed", err)
	}
	if s := b.Stats(); s.Invocations != 0 {
		t.Errorf("an invocation after Close was counted: %+v", s)
	}
}

func TestTraits(t *testing.T) {
	b := faulty.New(newFake(), faulty.Config{})
	defer b.Close()
	tr := backends.TraitsOf(b)
	if tr.Name != "faulty(fake)" || tr.MaxConcurrency != 7 {
		t.Errorf("Traits = %+v", tr)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := faulty.Config{RejectRate: -1, FailRate: 2, DelayRate: math.NaN(), DuplicateRate: 0.7, LoseRate: 0.7,
		MaxDelay: -1}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"RejectRate", "FailRate", "DelayRate", "add up to", "MaxDelay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %s", err, want)
		}
	}
	if err := (faulty.Config{RejectRate: 0.5, LoseRate: 0.5}).Validate(); err != nil {
		t.Errorf("rates adding up to 1 rejected: %v", err)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "FailRate") {
			t.Errorf("recovered %v; want a panic naming FailRate", r)
		}
	}()
	faulty.New(newFake(), faulty.Config{FailRate: 3})
}

func TestCrashDoesNotRunAndIsNotNotStarted(t *testing.T) {
	in := newFake()
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Crash)})
	defer b.Close()
	_, err := b.Invoke(context.Background(), task("t1"))
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("err = %v; want a *FunctionError, not ErrNotStarted", err)
	}
	if n := in.callsOf("t1"); n != 0 {
		t.Errorf("a task that crashed as it started ran %d times", n)
	}
	if s := b.Stats(); s.Crashed != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSlowHoldsTheAnswer(t *testing.T) {
	in := newFake()
	in.run = func(context.Context, backends.Task, int) (backends.Result, error) {
		time.Sleep(20 * time.Millisecond)
		return backends.Result{Payload: []byte("done")}, nil
	}
	b := faulty.New(in, faulty.Config{Rule: always(faulty.Slow), SlowFactor: 5})
	defer b.Close()
	start := time.Now()
	res, err := b.Invoke(context.Background(), task("t1"))
	if err != nil || string(res.Payload) != "done" {
		t.Fatalf("Invoke = %q, %v", res.Payload, err)
	}
	// Not a timing threshold on the machine's speed: the hold is at
	// least four times the 20 ms the task slept, whatever the load.
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("a task slowed 5x answered after %s, less than 5 x 20ms", took)
	}
	if s := b.Stats(); s.Slowed != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSlowAndHangEndWithTheirContext(t *testing.T) {
	for _, f := range []faulty.Fault{faulty.Slow, faulty.Hang} {
		t.Run(f.String(), func(t *testing.T) {
			in := newFake()
			// SlowMin far beyond any test: only the context ends the hold.
			b := faulty.New(in, faulty.Config{Rule: always(f), SlowMin: time.Hour})
			defer b.Close()
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				time.Sleep(10 * time.Millisecond)
				cancel()
			}()
			_, err := b.Invoke(ctx, task("t1"))
			if !errors.Is(err, context.Canceled) || errors.Is(err, backends.ErrNotStarted) {
				t.Fatalf("err = %v; want context.Canceled, not ErrNotStarted", err)
			}
			if f == faulty.Hang && !errors.Is(err, faulty.ErrHung) {
				t.Errorf("err = %v; want ErrHung", err)
			}
			wantRuns := map[faulty.Fault]int{faulty.Slow: 1, faulty.Hang: 0}[f]
			if n := in.callsOf("t1"); n != wantRuns {
				t.Errorf("the task ran %d times, want %d", n, wantRuns)
			}
		})
	}
}

func TestNewRatesKeepEarlierDraws(t *testing.T) {
	// Adding the crash, slow and hang rates (drawn after the others) must not change which fault
	// an invocation of an older configuration gets, so that seeds
	// recorded with it reproduce.
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprint("t", i))
	}
	old := faulty.Config{Seed: 9, RejectRate: 0.1, FailRate: 0.1, LoseRate: 0.1, MaxDelay: 1000}
	a, _ := faultsOf(t, old, ids)
	old.CrashRate = 0.1 // drawn after the older faults
	b, s := faultsOf(t, old, ids)
	for _, id := range ids {
		if a[id] != "ok" && a[id] != b[id] {
			t.Errorf("%s: %s before the new rates, %s after", id, a[id], b[id])
		}
	}
	if s.Crashed == 0 {
		t.Errorf("no crash injected at 10%%: %+v", s)
	}
}
