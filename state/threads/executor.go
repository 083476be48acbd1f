package threads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends"
)

// RetryPolicy says when a failed thread is started again.
type RetryPolicy struct {
	// MaxAttempts is the most attempts per thread, the first included.
	// Default 3.
	MaxAttempts int
	// RetryFunctionErrors also retries threads that ran and failed
	// (*backends.FunctionError). Only safe for functions that are idempotent
	// on the shared objects (e.g. they keep their progress in a DSO
	// counter and resume from it). Invocations that certainly did not start
	// (backends.ErrNotStarted) are always retried.
	RetryFunctionErrors bool
	// Backoff is the wait before the second attempt, doubling after each.
	// Default 20 ms.
	Backoff time.Duration
}

// Config configures an Executor.
type Config struct {
	// Backend runs the threads. Required. The executor does not close it.
	Backend backends.Backend
	// DSO, if set, travels in every payload so threads can reach the
	// shared objects.
	DSO *DSO
	// Retry is the retry policy.
	Retry RetryPolicy
	// MaxInFlight bounds concurrent invocations; 0 means unbounded (the
	// backend bounds them).
	MaxInFlight int
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Backend == nil {
		errs = append(errs, errors.New("threads: Config.Backend is required"))
	}
	if c.DSO != nil && (len(c.DSO.Servers) == 0 || c.DSO.Token == "") {
		errs = append(errs, errors.New("threads: Config.DSO needs Servers and Token"))
	}
	if c.Retry.MaxAttempts < 0 || c.Retry.Backoff < 0 || c.MaxInFlight < 0 {
		errs = append(errs, errors.New("threads: Config.Retry.MaxAttempts, Retry.Backoff and MaxInFlight must be >= 0"))
	}
	return errors.Join(errs...)
}

// Executor starts threads on a backend. Close stops them and waits.
type Executor struct {
	cfg   Config
	slots chan struct{}
	seq   atomic.Int64

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

// NewExecutor validates cfg and returns an executor. It starts nothing.
func NewExecutor(cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry.MaxAttempts = 3
	}
	if cfg.Retry.Backoff == 0 {
		cfg.Retry.Backoff = 20 * time.Millisecond
	}
	e := &Executor{cfg: cfg, stop: make(chan struct{})}
	if cfg.MaxInFlight > 0 {
		e.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	return e, nil
}

// Close cancels every running thread and waits for the executor's
// goroutines. It is idempotent.
func (e *Executor) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.stop)
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// Thread is a function started by Go.
type Thread struct {
	// ID names the thread, e.g. "pi.worker#3".
	ID       string
	done     chan struct{}
	res      json.RawMessage
	err      error
	attempts int
}

// Wait blocks until the thread ends or ctx is done, and returns the
// function's JSON result or its error. Cancelling ctx stops waiting, not
// the thread; cancel the ctx given to Go to stop the thread.
func (t *Thread) Wait(ctx context.Context) (json.RawMessage, error) {
	select {
	case <-t.done:
		return t.res, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Attempts returns how many invocations the thread took; valid after Wait.
func (t *Thread) Attempts() int { <-t.done; return t.attempts }

// WaitAs waits for t and decodes its result as R.
func WaitAs[R any](ctx context.Context, t *Thread) (R, error) {
	var r R
	raw, err := t.Wait(ctx)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("threads: %s: result does not decode as %T: %w", t.ID, r, err)
	}
	return r, nil
}

// Go starts fn (a registered function name) with arg (JSON-encoded) on the
// backend, like a goroutine. Cancelling ctx cancels the thread.
func (e *Executor) Go(ctx context.Context, fn string, arg any) *Thread {
	t := &Thread{ID: fn + "#" + strconv.FormatInt(e.seq.Add(1), 10), done: make(chan struct{})}
	raw, err := json.Marshal(arg)
	if err != nil {
		t.err = fmt.Errorf("threads: %s: encoding the argument: %w", t.ID, err)
		close(t.done)
		return t
	}
	p, err := json.Marshal(payload{Kind: Kind, Func: fn, Thread: t.ID, Arg: raw, DSO: e.cfg.DSO})
	if err != nil {
		t.err = err
		close(t.done)
		return t
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		t.err = ErrClosed
		close(t.done)
		return t
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer close(t.done)
		ctx, cancel := context.WithCancel(ctx)
		// The watcher turns Close into cancellation; it is waited for
		// before the thread's goroutine ends.
		var watcher sync.WaitGroup
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		t.res, t.attempts, t.err = e.run(ctx, t.ID, p)
		cancel()
		watcher.Wait()
	}()
	return t
}

func (e *Executor) run(ctx context.Context, id string, p []byte) (json.RawMessage, int, error) {
	backoff := e.cfg.Retry.Backoff
	var err error
	for attempt := 1; attempt <= e.cfg.Retry.MaxAttempts; attempt++ {
		if e.slots != nil {
			select {
			case e.slots <- struct{}{}:
			case <-ctx.Done():
				return nil, attempt - 1, fmt.Errorf("threads: %s: %w", id, ctx.Err())
			}
		}
		var res backends.Result
		res, err = e.cfg.Backend.Invoke(ctx, backends.Task{ID: id + "/attempt-" + strconv.Itoa(attempt), Payload: p})
		if e.slots != nil {
			<-e.slots
		}
		if err == nil {
			var r result
			if jerr := json.Unmarshal(res.Payload, &r); jerr != nil || r.Kind != Kind {
				return nil, attempt, fmt.Errorf("threads: %s: the worker's answer is not a thread result (is the worker's runtime routing %q payloads to threads.Handler?)", id, Kind)
			}
			return r.Result, attempt, nil
		}
		var fe *backends.FunctionError
		retry := errors.Is(err, backends.ErrNotStarted) || (e.cfg.Retry.RetryFunctionErrors && errors.As(err, &fe))
		if ctx.Err() != nil {
			// The caller's cancellation (Ctrl-C) or Close ended the
			// attempt: final, and not the function's failure.
			return nil, attempt, fmt.Errorf("threads: %s stopped: %w (attempt %d: %v)", id, context.Cause(ctx), attempt, err)
		}
		if !retry || attempt == e.cfg.Retry.MaxAttempts {
			return nil, attempt, fmt.Errorf("threads: %s failed after %d attempt(s): %w", id, attempt, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, attempt, fmt.Errorf("threads: %s: %w (last error: %w)", id, ctx.Err(), err)
		}
		backoff *= 2
	}
	return nil, e.cfg.Retry.MaxAttempts, err
}

// Call is one function invocation for InvokeAll.
type Call struct {
	Func string
	Arg  any
}

// InvokeAll runs every call in parallel and waits for all of them. It
// returns their results in order and, if any failed, an error joining every
// failure (each naming its thread).
func (e *Executor) InvokeAll(ctx context.Context, calls []Call) ([]json.RawMessage, error) {
	ts := make([]*Thread, len(calls))
	for i, c := range calls {
		ts[i] = e.Go(ctx, c.Func, c.Arg)
	}
	out := make([]json.RawMessage, len(calls))
	var errs []error
	for i, t := range ts {
		r, err := t.Wait(context.WithoutCancel(ctx))
		out[i] = r
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// ParallelFor runs iterations 0..n-1 of the loop body fn (registered with
// RegisterFor) on workers threads, each taking one contiguous block (static
// scheduling, as in Crucial's parallel for), and waits for all of them. arg
// is passed to every iteration. The first failure cancels the other
// workers; every failure is reported.
func (e *Executor) ParallelFor(ctx context.Context, fn string, n, workers int, arg any) error {
	if n < 0 || workers < 1 {
		return fmt.Errorf("threads: ParallelFor(%s): need n >= 0 and workers >= 1, got n=%d workers=%d", fn, n, workers)
	}
	if workers > n {
		workers = max(n, 1)
	}
	raw, err := json.Marshal(arg)
	if err != nil {
		return fmt.Errorf("threads: ParallelFor(%s): encoding the argument: %w", fn, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts := make([]*Thread, workers)
	for w := range ts {
		lo, hi := w*n/workers, (w+1)*n/workers
		ts[w] = e.Go(ctx, fn, forArg{Lo: lo, Hi: hi, Arg: raw})
	}
	var errs []error
	for _, t := range ts {
		if _, err := t.Wait(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, err)
			cancel()
		}
	}
	return errors.Join(errs...)
}
