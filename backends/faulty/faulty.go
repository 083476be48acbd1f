package faulty

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// Fault is what happens to one invocation.
type Fault int

// The faults; see the package documentation for what each one does.
const (
	// None passes the invocation to the wrapped backend unchanged.
	None Fault = iota
	// Reject refuses the invocation without running it.
	Reject
	// Fail runs the task, then reports that the function crashed.
	Fail
	// Delay sleeps before running the task.
	Delay
	// Duplicate runs the task twice at once and returns the first result.
	Duplicate
	// Lose runs the task, then reports an error of unknown outcome.
	Lose
	// Crash reports that the function crashed before it did anything.
	Crash
	// Slow runs the task and holds its answer back, so the invocation
	// takes Config.SlowFactor times as long (a straggler).
	Slow
	// Hang never answers: the invocation ends only with its context.
	Hang
)

func (f Fault) String() string {
	switch f {
	case None:
		return "none"
	case Reject:
		return "reject"
	case Fail:
		return "fail"
	case Delay:
		return "delay"
	case Duplicate:
		return "duplicate"
	case Lose:
		return "lose"
	case Crash:
		return "crash"
	case Slow:
		return "slow"
	case Hang:
		return "hang"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// ErrRejected is wrapped by the error of a rejected invocation. It wraps
// backends.ErrNotStarted: the task did not run.
var ErrRejected = fmt.Errorf("faulty: invocation rejected: %w", backends.ErrNotStarted)

// ErrLost is wrapped by the error of an invocation whose response was
// lost. It does not wrap backends.ErrNotStarted: the task ran.
var ErrLost = errors.New("faulty: response lost; the task may have run")

// ErrHung is wrapped by the error of a hung invocation once its context
// ends. It does not wrap backends.ErrNotStarted: a platform cannot tell
// whether a function that never answered ran.
var ErrHung = errors.New("faulty: invocation hung")

// DefaultMaxDelay is the MaxDelay used when Config.MaxDelay is zero.
const DefaultMaxDelay = 5 * time.Millisecond

// DefaultSlowFactor is the SlowFactor used when Config.SlowFactor is zero.
const DefaultSlowFactor = 10

// Config says which faults to inject.
type Config struct {
	// Seed seeds the random decisions (faults and delays). Default 0.
	Seed uint64
	// RejectRate, FailRate, DelayRate, DuplicateRate, LoseRate,
	// CrashRate, SlowRate and HangRate are the probabilities, each in
	// [0, 1] and together at most 1, that an invocation gets that fault;
	// the rest pass unchanged. All default to 0. They are ignored when
	// Rule is set.
	RejectRate, FailRate, DelayRate, DuplicateRate, LoseRate float64
	CrashRate, SlowRate, HangRate                            float64
	// MaxDelay bounds the sleep of a Delay fault, drawn uniformly in
	// (0, MaxDelay]. Default DefaultMaxDelay.
	MaxDelay time.Duration
	// SlowFactor is how many times as long as the task itself took a Slow
	// invocation takes to answer (at least 1). Default DefaultSlowFactor.
	SlowFactor float64
	// SlowMin is the least a Slow invocation is held back, so that tasks
	// far shorter than the driver's reaction time still straggle.
	// Default 0.
	SlowMin time.Duration
	// Rule, when set, chooses every invocation's fault instead of the
	// rates. n counts the invocations of task.ID so far, this one included
	// (1 for the first). Rule is called with the backend's lock held, one
	// call at a time, so it may keep state without locking; it must not
	// block or call the Backend.
	Rule func(task backends.Task, n int) Fault
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	rates := []struct {
		name string
		v    float64
	}{{"RejectRate", c.RejectRate}, {"FailRate", c.FailRate}, {"DelayRate", c.DelayRate},
		{"DuplicateRate", c.DuplicateRate}, {"LoseRate", c.LoseRate},
		{"CrashRate", c.CrashRate}, {"SlowRate", c.SlowRate}, {"HangRate", c.HangRate}}
	sum := 0.0
	for _, r := range rates {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("faulty: Config.%s is %v; must be in [0, 1]", r.name, r.v))
			continue
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		errs = append(errs, fmt.Errorf("faulty: the fault rates add up to %v; must be at most 1", sum))
	}
	if c.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("faulty: Config.MaxDelay is %v; must not be negative", c.MaxDelay))
	}
	if c.SlowFactor != 0 && !(c.SlowFactor >= 1) {
		errs = append(errs, fmt.Errorf("faulty: Config.SlowFactor is %v; must be at least 1 (or 0 for the default)", c.SlowFactor))
	}
	if c.SlowMin < 0 {
		errs = append(errs, fmt.Errorf("faulty: Config.SlowMin is %v; must not be negative", c.SlowMin))
	}
	return errors.Join(errs...)
}

// Stats counts what a Backend injected.
type Stats struct {
	// Invocations is the number of Invoke calls that reached the fault
	// decision (calls after Close are not counted).
	Invocations int64
	// Passed, Rejected, Failed, Delayed, Duplicated, Lost, Crashed,
	// Slowed and Hung count the invocations given each fault (None,
	// Reject, ...).
	Passed, Rejected, Failed, Delayed, Duplicated, Lost int64
	Crashed, Slowed, Hung                               int64
}

// Backend injects faults into the invocations of a wrapped backend. It is
// safe for concurrent use. It remembers how often it saw every task ID,
// so it suits tests and benchmarks, not long-running services.
type Backend struct {
	inner backends.Backend
	cfg   Config

	mu     sync.Mutex
	closed bool
	seen   map[string]int // invocations per task ID
	stats  Stats
	wg     sync.WaitGroup // Invoke calls and duplicate copies in flight

	closeOnce sync.Once
	closeErr  error
}

var _ backends.Backend = (*Backend)(nil)
var _ backends.Describer = (*Backend)(nil)

// New returns a Backend that injects faults into inner's invocations. The
// Backend owns inner: Close closes it. New starts no goroutines.
//
// New panics if inner is nil or cfg is invalid: a fault-injection setup is
// test code, and a wrong one is a programming error.
func New(inner backends.Backend, cfg Config) *Backend {
	if inner == nil {
		panic("faulty: New needs a backend to wrap")
	}
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.SlowFactor == 0 {
		cfg.SlowFactor = DefaultSlowFactor
	}
	return &Backend{inner: inner, cfg: cfg, seen: map[string]int{}}
}

// decide picks the fault and, for Delay, the sleep of one invocation.
func (b *Backend) decide(t backends.Task) (Fault, time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return None, 0, false
	}
	b.seen[t.ID]++
	n := b.seen[t.ID]
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.ID))
	rng := rand.New(rand.NewPCG(b.cfg.Seed, h.Sum64()^uint64(n)*0x9e3779b97f4a7c15))
	var f Fault
	if b.cfg.Rule != nil {
		f = b.cfg.Rule(t, n)
	} else {
		u := rng.Float64()
		f = None
		for _, c := range []struct {
			f    Fault
			rate float64
		}{{Reject, b.cfg.RejectRate}, {Fail, b.cfg.FailRate}, {Delay, b.cfg.DelayRate},
			{Duplicate, b.cfg.DuplicateRate}, {Lose, b.cfg.LoseRate},
			{Crash, b.cfg.CrashRate}, {Slow, b.cfg.SlowRate}, {Hang, b.cfg.HangRate}} {
			if u < c.rate {
				f = c.f
				break
			}
			u -= c.rate
		}
	}
	delay := time.Duration(rng.Int64N(int64(b.cfg.MaxDelay))) + 1
	b.stats.Invocations++
	switch f {
	case None:
		b.stats.Passed++
	case Reject:
		b.stats.Rejected++
	case Fail:
		b.stats.Failed++
	case Delay:
		b.stats.Delayed++
	case Duplicate:
		b.stats.Duplicated++
	case Lose:
		b.stats.Lost++
	case Crash:
		b.stats.Crashed++
	case Slow:
		b.stats.Slowed++
	case Hang:
		b.stats.Hung++
	default:
		// An unknown fault from a Rule passes unchanged, counted as such.
		f = None
		b.stats.Passed++
	}
	// Register the call while holding the lock, so Close cannot start
	// waiting between the closed check and Add.
	b.wg.Add(1)
	return f, delay, true
}

// Invoke runs t on the wrapped backend, injecting the fault chosen for
// this invocation.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	f, delay, ok := b.decide(t)
	if !ok {
		return backends.Result{}, fmt.Errorf("faulty: task %s: %w", t.ID, backends.ErrClosed)
	}
	defer b.wg.Done()
	switch f {
	case Reject:
		return backends.Result{}, fmt.Errorf("faulty: task %s: %w", t.ID, ErrRejected)
	case Fail:
		res, err := b.inner.Invoke(ctx, t)
		if err != nil {
			return res, err
		}
		return backends.Result{Invocation: res.Invocation}, &backends.FunctionError{Backend: "faulty", Type: "crash",
			Message: fmt.Sprintf("injected crash of task %s after it ran", t.ID)}
	case Delay:
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return backends.Result{}, fmt.Errorf("faulty: delayed task %s: %w: %w", t.ID, backends.ErrNotStarted, ctx.Err())
		}
		return b.inner.Invoke(ctx, t)
	case Duplicate:
		return b.duplicate(ctx, t)
	case Lose:
		res, err := b.inner.Invoke(ctx, t)
		if err != nil {
			return res, err
		}
		return backends.Result{Invocation: res.Invocation}, fmt.Errorf("faulty: task %s: %w", t.ID, ErrLost)
	case Crash:
		return backends.Result{}, &backends.FunctionError{Backend: "faulty", Type: "crash",
			Message: fmt.Sprintf("injected crash of task %s before it did anything", t.ID)}
	case Slow:
		return b.slow(ctx, t)
	case Hang:
		<-ctx.Done()
		return backends.Result{}, fmt.Errorf("faulty: task %s: %w until its context ended: %w", t.ID, ErrHung, ctx.Err())
	}
	return b.inner.Invoke(ctx, t)
}

// slow runs t, then holds its answer until SlowFactor times the task's
// own duration (at least SlowMin more) has passed, as an invocation on a
// slow instance would take. The end of ctx ends the wait: the answer is
// then ctx's error, of unknown outcome (the task ran).
func (b *Backend) slow(ctx context.Context, t backends.Task) (backends.Result, error) {
	start := time.Now()
	res, err := b.inner.Invoke(ctx, t)
	took := time.Since(start)
	hold := max(time.Duration(float64(took)*(b.cfg.SlowFactor-1)), b.cfg.SlowMin)
	timer := time.NewTimer(hold)
	defer timer.Stop()
	select {
	case <-timer.C:
		return res, err
	case <-ctx.Done():
		return backends.Result{}, fmt.Errorf("faulty: slowed task %s (it ran): %w", t.ID, ctx.Err())
	}
}

type outcome struct {
	res backends.Result
	err error
}

// duplicate runs two copies of t and returns the first to finish. Both
// copies run under ctx, as the two deliveries of one request would; the
// later one keeps running after duplicate returns, owned by b (Close waits
// for it).
func (b *Backend) duplicate(ctx context.Context, t backends.Task) (backends.Result, error) {
	done := make(chan outcome, 2) // buffered: the losing copy never blocks
	b.wg.Add(2)                   // the caller's own Add is still held, so Close is not waiting yet
	for range 2 {
		go func() {
			defer b.wg.Done()
			res, err := b.inner.Invoke(ctx, t)
			done <- outcome{res, err}
		}()
	}
	o := <-done
	return o.res, o.err
}

// Stats returns the counts of injected faults so far.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Traits returns the wrapped backend's traits, named "faulty(<inner>)".
func (b *Backend) Traits() backends.Traits {
	t := backends.TraitsOf(b.inner)
	if t.Name == "" {
		t.Name = "faulty"
	} else {
		t.Name = "faulty(" + t.Name + ")"
	}
	return t
}

// Close refuses new invocations, waits for those in flight and for every
// duplicate copy still running, then closes the wrapped backend and
// returns its error. It is idempotent.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.wg.Wait()
		b.closeErr = b.inner.Close()
	})
	return b.closeErr
}
