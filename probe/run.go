package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
)

// Config describes one probe run. The thesis names a configuration
// I/W/T/M: Invocations, Warm, Task and MemoryMiB.
type Config struct {
	// Invocations is how many concurrent invocations the measured round
	// fires. Required, at least 1.
	Invocations int
	// Task is Sleep or Compute. Default: Compute.
	Task Task
	// Duration is the sleep time, or the compute time on one full CPU.
	// Default: 1 s.
	Duration time.Duration
	// MemoryMiB is the memory configured for the function, recorded in
	// the trace. The backend is configured with it when it is built; if
	// the backend reports a memory size (backends.Traits.MemoryMiB) that
	// differs, Validate fails. Zero: the backend's.
	MemoryMiB int
	// Warm, if positive, runs a warm-up round of Warm invocations first and
	// waits for it, so about Warm instances are warm when the measured
	// round starts (the W of I/W/T/M). The warm-up round is kept in
	// Trace.Warmup and left out of the metrics.
	Warm int
	// Async makes the measured round a large-scale asynchronous run, the
	// thesis's variant with 1000 invocations: every invocation is fired
	// at once without waiting for its function, each function writes its
	// result to object storage (ResultStore), and the driver lists the
	// store every PollInterval to collect them; an invocation's return is
	// when its result was found there. A BatchInvoker (the simulator)
	// models asynchronous invocation itself and needs no store. The trace
	// is marked async and plots use the simplified timeline.
	Async bool
	// ResultStore is the URL of the store where the functions of an
	// asynchronous run put their results; workers must be able to open it
	// (a local directory for the local and process backends). Each run
	// writes under a prefix of its own and deletes what it read.
	// Required for Async, except on a BatchInvoker.
	ResultStore string
	// OpenStore opens ResultStore on the driver. Default: local
	// directories and file:// URLs.
	OpenStore StoreOpener
	// PollInterval is how often an asynchronous run lists ResultStore: the
	// resolution of its return times. Default: Duration / 20, within
	// 10 ms and 1 s.
	PollInterval time.Duration
	// Timeout bounds each invocation; one that takes longer is recorded
	// with OutcomeTimeout. Default: 10 × Duration + 1 minute.
	Timeout time.Duration
	// Iterations overrides the compute loop's size; zero sizes it to
	// Duration with this process's calibration (Calibrate), so every
	// instance does the same work and a slower CPU share shows as a longer
	// in-function duration.
	Iterations int64
	// AllowOverLimit sends the invocations even when Invocations exceeds
	// the backend's concurrency limit, to observe its throttling.
	AllowOverLimit bool
}

// DefaultConfig returns the thesis's main configuration: 200 concurrent
// one-second compute tasks.
func DefaultConfig() Config {
	return Config{Invocations: 200, Task: Compute, Duration: time.Second}
}

func (c Config) withDefaults() Config {
	if c.Task == "" {
		c.Task = Compute
	}
	if c.Duration == 0 {
		c.Duration = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10*c.Duration + time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = min(max(c.Duration/20, 10*time.Millisecond), time.Second)
	}
	if c.OpenStore == nil {
		c.OpenStore = defaultOpener
	}
	return c
}

// Validate reports every problem with c, checked against the traits of
// the backend it will run on (zero Traits check c alone).
func (c Config) Validate(t backends.Traits) error {
	c = c.withDefaults()
	var errs []error
	name := t.Name
	if name == "" {
		name = "the backend"
	}
	if c.Invocations < 1 {
		errs = append(errs, fmt.Errorf("probe: Invocations must be at least 1, got %d", c.Invocations))
	}
	if _, err := ParseTask(string(c.Task)); err != nil {
		errs = append(errs, err)
	}
	if c.Duration < 0 || c.Timeout < 0 || c.Warm < 0 || c.Iterations < 0 || c.MemoryMiB < 0 || c.PollInterval < 0 {
		errs = append(errs, errors.New("probe: Duration, Timeout, Warm, Iterations, MemoryMiB and PollInterval must not be negative"))
	}
	if lim := t.MaxConcurrency; lim > 0 && !c.AllowOverLimit {
		// An asynchronous run's invocations queue on the platform: only
		// its warm-up round must fit.
		if c.Invocations > lim && !c.Async {
			errs = append(errs, fmt.Errorf("probe: %d invocations exceed %s's concurrency limit of %d; lower the invocations, raise the backend's limit, or allow the overflow to observe throttling",
				c.Invocations, name, lim))
		}
		if c.Warm > lim {
			errs = append(errs, fmt.Errorf("probe: %d warm-up invocations exceed %s's concurrency limit of %d", c.Warm, name, lim))
		}
	}
	if c.MemoryMiB > 0 && t.MemoryMiB > 0 && c.MemoryMiB != t.MemoryMiB {
		errs = append(errs, fmt.Errorf("probe: the run asks for %d MiB but %s is configured with %d MiB; build the backend with the memory size to probe",
			c.MemoryMiB, name, t.MemoryMiB))
	}
	return errors.Join(errs...)
}

// Outcome classifies how an invocation ended.
type Outcome string

const (
	// OK: the function ran and returned a valid probe response.
	OK Outcome = "ok"
	// OutcomeError: the function may have run and failed, or its response
	// was not a probe response.
	OutcomeError Outcome = "error"
	// OutcomeRejected: the platform refused the invocation
	// (backends.ErrNotStarted: throttled, over a limit, no capacity).
	OutcomeRejected Outcome = "rejected"
	// OutcomeTimeout: the invocation outlived Config.Timeout or the
	// platform's time limit.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeCancelled: the run was interrupted before the invocation
	// returned.
	OutcomeCancelled Outcome = "cancelled"
)

// Record is one invocation of a probe run.
type Record struct {
	// Seq numbers the invocation within its round, from 0.
	Seq int `json:"seq"`
	// Outcome is how it ended; Error holds the error text if not OK.
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
	// Sent and Returned are when the client sent the request and got the
	// answer (the backend's own measurement where it makes one, which is
	// the only meaningful one on a simulated clock).
	Sent     time.Time `json:"sent"`
	Returned time.Time `json:"returned"`
	// Start and End are when the task ran inside the function, on the
	// function's clock; zero unless Outcome is OK.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Instance identifies the instance that ran the invocation: the
	// backend's identity where it reports one (a process, a local slot, a
	// simulated instance), else the function's own (Response.Instance).
	Instance string `json:"instance,omitempty"`
	// Cold is the backend's cold flag where it reports an instance, else
	// the function's.
	Cold bool `json:"cold"`
	// UptimeS is the host uptime the function read, a host hint.
	UptimeS float64 `json:"uptime_s,omitempty"`
}

// Trace is the raw outcome of a probe run: the input of the metrics and
// the plots.
type Trace struct {
	// Backend names the backend, Task, DurationS, MemoryMiB, Invocations,
	// Warm and Async echo the configuration.
	Backend     string  `json:"backend"`
	Task        Task    `json:"task"`
	DurationS   float64 `json:"duration_s"`
	MemoryMiB   int     `json:"memory_mib,omitempty"`
	Invocations int     `json:"invocations"`
	Warm        int     `json:"warm,omitempty"`
	Async       bool    `json:"async,omitempty"`
	// Interrupted is true if the run was cancelled before every
	// invocation returned; the records then hold what was measured.
	Interrupted bool `json:"interrupted,omitempty"`
	// Records has one entry per invocation of the measured round, in Seq
	// order, whatever its outcome.
	Records []Record `json:"records"`
	// Warmup holds the warm-up round, if any.
	Warmup []Record `json:"warmup,omitempty"`
}

// BatchInvoker is implemented by backends that can take a whole round of
// invocations at once, sent at the same instant. The simulator does: its
// clock is virtual, so the round must reach it as one batch for "at the
// same time" to mean the same simulated instant. Run uses InvokeAll when
// the backend has it, and concurrent Invoke calls otherwise. The i-th
// result and error answer tasks[i], with the same meaning as Invoke's.
type BatchInvoker interface {
	InvokeAll(ctx context.Context, tasks []backends.Task) ([]backends.Result, []error)
}

// Run probes b: an optional warm-up round of cfg.Warm invocations, then
// the measured round of cfg.Invocations concurrent invocations. It checks
// cfg against b's traits before sending anything.
//
// Every invocation is recorded whatever its outcome. If ctx is cancelled
// (Ctrl-C), Run stops waiting, records the invocations still in flight as
// cancelled, and returns the trace so far, marked Interrupted, together
// with an error wrapping ctx's. Other errors are returned only for a
// configuration Run cannot start with, with a nil trace.
func Run(ctx context.Context, b backends.Backend, cfg Config) (*Trace, error) {
	traits := backends.TraitsOf(b)
	if err := cfg.Validate(traits); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	iters := cfg.Iterations
	if cfg.Task == Compute && iters == 0 {
		iters = IterationsFor(cfg.Duration)
	}
	mem := cfg.MemoryMiB
	if mem == 0 {
		mem = traits.MemoryMiB
	}
	var store objstore.Store
	if _, batch := b.(BatchInvoker); cfg.Async && !batch {
		if cfg.ResultStore == "" {
			return nil, fmt.Errorf("probe: an asynchronous run on %s needs a result store (Config.ResultStore) its functions can write to", orName(traits.Name))
		}
		var err error
		if store, err = cfg.OpenStore(ctx, cfg.ResultStore); err != nil {
			return nil, fmt.Errorf("probe: opening the result store: %w", err)
		}
	}
	tr := &Trace{Backend: traits.Name, Task: cfg.Task, DurationS: cfg.Duration.Seconds(), MemoryMiB: mem,
		Invocations: cfg.Invocations, Warm: cfg.Warm, Async: cfg.Async}
	if cfg.Warm > 0 {
		tr.Warmup = round(ctx, b, cfg, iters, cfg.Warm, "warm")
		if ctx.Err() != nil {
			tr.Interrupted = true
			return tr, fmt.Errorf("probe: interrupted during the warm-up round: %w", context.Cause(ctx))
		}
	}
	if cfg.Async && store != nil {
		tr.Records = asyncRound(ctx, b, store, cfg, iters)
	} else {
		tr.Records = round(ctx, b, cfg, iters, cfg.Invocations, "run")
	}
	if ctx.Err() != nil {
		tr.Interrupted = true
		return tr, fmt.Errorf("probe: interrupted: %w", context.Cause(ctx))
	}
	return tr, nil
}

// round fires n invocations at once and records each.
func round(ctx context.Context, b backends.Backend, cfg Config, iters int64, n int, label string) []Record {
	tasks := make([]backends.Task, n)
	for i := range tasks {
		req := Request{Kind: Kind, Task: cfg.Task, DurationNS: int64(cfg.Duration), Iterations: iters, Seq: i,
			Async: cfg.Async && label == "run"}
		tasks[i] = backends.Task{ID: "probe/" + label + "/" + strconv.Itoa(i), Payload: req.encode()}
	}
	recs := make([]Record, n)
	if bi, ok := b.(BatchInvoker); ok {
		sent := time.Now()
		res, errs := bi.InvokeAll(ctx, tasks)
		ret := time.Now()
		for i := range recs {
			recs[i] = record(ctx, i, sent, ret, res[i], errs[i])
		}
		return recs
	}
	// One goroutine per invocation, as the thesis's asyncio client had one
	// request in flight per invocation. They are started together and all
	// waited for.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ictx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			sent := time.Now()
			res, err := b.Invoke(ictx, tasks[i])
			ret := time.Now()
			if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && ictx.Err() != nil {
				err = fmt.Errorf("%w (probe timeout %s)", err, cfg.Timeout)
			}
			recs[i] = record(ctx, i, sent, ret, res, err)
		}()
	}
	close(start)
	wg.Wait()
	return recs
}

// record builds the record of one invocation from what the backend
// returned.
func record(ctx context.Context, seq int, sent, ret time.Time, res backends.Result, err error) Record {
	inv := res.Invocation
	r := Record{Seq: seq, Sent: sent, Returned: ret, Instance: inv.Instance, Cold: inv.Cold}
	if !inv.Sent.IsZero() {
		r.Sent = inv.Sent
	}
	if !inv.Returned.IsZero() {
		r.Returned = inv.Returned
	}
	if err != nil {
		r.Outcome, r.Error = classify(ctx, err), err.Error()
		return r
	}
	var resp Response
	if jerr := json.Unmarshal(res.Payload, &resp); jerr != nil || resp.Kind != ResultKind {
		r.Outcome = OutcomeError
		r.Error = fmt.Sprintf("probe: invocation %d returned a payload that is not a probe response (is the probe handler registered under %q in the worker?)", seq, Kind)
		return r
	}
	r.Outcome = OK
	r.Start, r.End = resp.Start(), resp.End()
	if r.Start.IsZero() || resp.StartNS == 0 {
		r.Start, r.End = inv.Start, inv.End
	}
	if r.Instance == "" {
		r.Instance, r.Cold = resp.Instance, resp.Cold
	}
	r.UptimeS = resp.UptimeS
	return r
}

// classify maps an invocation error to an outcome.
func classify(ctx context.Context, err error) Outcome {
	var fe *backends.FunctionError
	switch {
	case ctx.Err() != nil:
		return OutcomeCancelled
	case errors.Is(err, backends.ErrNotStarted):
		return OutcomeRejected
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &fe) && fe.Type == "timeout":
		return OutcomeTimeout
	}
	return OutcomeError
}

func orName(name string) string {
	if name == "" {
		return "this backend"
	}
	return name
}

// encode returns r as a payload.
func (r Request) encode() []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return b
}

// ack is how the invocation of an asynchronous run came back to the
// client: the function's acknowledgement, or an error.
type ack struct {
	seq      int
	sent     time.Time
	res      backends.Result
	err      error
	returned time.Time
}

// asyncRound fires cfg.Invocations invocations at once, each asking its
// function to put its result in store, and collects the results by
// listing the store every cfg.PollInterval. An invocation is recorded
// when both its acknowledgement and its result are in (so the instance
// identity is the backend's where it reports one), with the time its
// result was found as its return; one whose invocation failed is
// recorded with the failure; one acknowledged whose result never appears
// is an error; what is missing at cfg.Timeout is a timeout.
func asyncRound(ctx context.Context, b backends.Backend, store objstore.Store, cfg Config, iters int64) []Record {
	n := cfg.Invocations
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "probe-" + hex.EncodeToString(rnd[:]) + "/"
	recs := make([]Record, n)
	done := make([]bool, n)
	acks := make([]*ack, n)
	seen := make([]time.Time, n)
	left := n
	finish := func(i int, r Record) {
		if !done[i] {
			recs[i], done[i] = r, true
			left--
		}
	}

	ch := make(chan ack, n) // never blocks: one send per invocation
	var wg sync.WaitGroup
	ictx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := make(chan struct{})
	for i := range n {
		req := Request{Kind: Kind, Task: cfg.Task, DurationNS: int64(cfg.Duration), Iterations: iters, Seq: i, Async: true,
			ResultURL: cfg.ResultStore, ResultKey: prefix + fmt.Sprintf("%06d.json", i)}
		t := backends.Task{ID: "probe/async/" + strconv.Itoa(i), Payload: req.encode()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sent := time.Now()
			res, err := b.Invoke(ictx, t)
			ch <- ack{seq: i, sent: sent, res: res, err: err, returned: time.Now()}
		}()
	}
	close(start)
	// Every invocation goroutine is waited for, also on cancellation
	// (ictx ends their Invoke calls).
	defer wg.Wait()

	// settle records invocation i if both halves are in.
	settle := func(i int, payload []byte) {
		a := acks[i]
		if a == nil || seen[i].IsZero() {
			return
		}
		res := a.res
		res.Payload = payload
		res.Invocation.Sent, res.Invocation.Returned = time.Time{}, time.Time{}
		finish(i, record(ctx, i, a.sent, seen[i], res, nil))
	}
	results := make([][]byte, n)
	poll := func() {
		objs, err := objstore.ListAll(ctx, store, prefix)
		at := time.Now()
		if err != nil {
			return // listed again at the next tick
		}
		for _, o := range objs {
			var i int
			if _, err := fmt.Sscanf(o.Key[len(prefix):], "%06d.json", &i); err != nil || i < 0 || i >= n || !seen[i].IsZero() {
				continue
			}
			data, err := readAll(ctx, store, o.Key)
			if err != nil {
				continue
			}
			seen[i], results[i] = at, data
			_ = store.Delete(ctx, o.Key)
			settle(i, data)
		}
	}
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	acked := 0
	for left > 0 {
		select {
		case a := <-ch:
			acked++
			if a.err != nil {
				finish(a.seq, record(ctx, a.seq, a.sent, a.returned, a.res, a.err))
				break
			}
			acks[a.seq] = &a
			settle(a.seq, results[a.seq])
		case <-tick.C:
			poll()
		case <-ictx.Done():
		}
		if ictx.Err() != nil {
			poll()
			for i := range n {
				if !done[i] {
					r := Record{Seq: i, Outcome: OutcomeTimeout, Error: fmt.Sprintf("probe: no result in %s within %s", store, cfg.Timeout)}
					if ctx.Err() != nil {
						r.Outcome, r.Error = OutcomeCancelled, ctx.Err().Error()
					}
					if a := acks[i]; a != nil {
						r.Sent = a.sent
					}
					finish(i, r)
				}
			}
			break
		}
		if acked == n && left > 0 {
			// Every function has answered, so every result is stored.
			poll()
			for i, a := range acks {
				if a != nil && !done[i] {
					finish(i, Record{Seq: i, Sent: a.sent, Returned: a.returned, Outcome: OutcomeError,
						Error: fmt.Sprintf("probe: invocation %d was acknowledged but left no result in %s (is the probe handler registered in the worker?)", i, store)})
				}
			}
		}
	}
	return recs
}

func readAll(ctx context.Context, st objstore.Store, key string) ([]byte, error) {
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
