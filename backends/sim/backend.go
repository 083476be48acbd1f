package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/probe"
)

// Config configures a simulated platform.
type Config struct {
	// Platform is the model; Preset returns the thesis's four. Required.
	Platform Platform
	// MemoryMiB is the memory configured for the function; it must be one
	// the platform offers. Default: Platform.DefaultMemoryMiB.
	MemoryMiB int
	// Seed seeds the model's random draws (cold starts, latencies): the
	// same seed and the same batches give the same trace.
	Seed uint64
	// Epoch is the wall-clock time that simulated time zero stands for in
	// the times the backend reports. Default: 2020-10-01T00:00:00Z, the
	// month of the thesis's measurements.
	Epoch time.Time
	// Settle is how long, in wall time, Invoke's clock waits without new
	// calls before it advances simulated time (see Backend). Default: 2 ms.
	Settle time.Duration
}

// DefaultConfig returns the configuration of a preset platform.
func DefaultConfig(preset string) (Config, error) {
	p, err := Preset(preset)
	if err != nil {
		return Config{}, err
	}
	return Config{Platform: p, Seed: 1}, nil
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if err := c.Platform.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MemoryMiB != 0 {
		if err := c.Platform.Offers(c.MemoryMiB); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Settle < 0 {
		errs = append(errs, errors.New("sim: Config.Settle must not be negative"))
	}
	return errors.Join(errs...)
}

// Backend is a simulated FaaS platform: a backends.Backend whose
// invocations run in the model's simulated time. Probe invocations
// (payloads of kind probe.Kind) are not executed: the model computes when
// each would start and end on the platform, from its requested duration
// and CPU demand, and the backend answers with the probe.Response a real
// function would have returned, with simulated times. Other payloads
// fail with a *backends.FunctionError.
//
// Time. Reported times are Config.Epoch plus simulated time. InvokeAll
// sends a batch at one simulated instant and runs the model until every
// invocation of the batch has answered, without waiting in wall time: a
// 10,000-invocation probe takes well under a second. Invoke serves
// callers that arrive independently: calls that arrive while the model
// is idle are sent at the current simulated instant; the clock advances
// only after no new call has arrived for Config.Settle of wall time and
// every caller answered so far has returned, and then only to the next
// instant at which some caller gets an answer, so a caller that invokes
// again on an answer does so at the simulated time of that answer.
type Backend struct {
	cfg   Config
	mem   int
	epoch time.Time

	mu        sync.Mutex
	m         *model
	pending   []*call            // Invoke calls not yet sent into the model
	live      map[*call]struct{} // Invoke calls not yet answered
	lastCall  time.Time
	closed    bool
	loopStart bool

	outstanding atomic.Int64 // answers delivered to Invoke callers that have not returned
	wake        chan struct{}
	done        chan struct{}
	wg          sync.WaitGroup
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
	_ probe.BatchInvoker = (*Backend)(nil)
)

// call is one Invoke or InvokeAll request.
type call struct {
	task  backends.Task
	req   probe.Request
	inv   *invocation
	res   backends.Result
	err   error
	state atomic.Int32 // 0 waiting, 1 abandoned, 2 answered
	ch    chan struct{}
}

// New returns a simulated platform. It starts no goroutine until the
// first Invoke.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mem := cfg.MemoryMiB
	if mem == 0 {
		mem = cfg.Platform.DefaultMemoryMiB
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = time.Date(2020, 10, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Millisecond
	}
	return &Backend{cfg: cfg, mem: mem, epoch: cfg.Epoch, m: newModel(cfg.Platform, mem, cfg.Seed),
		live: map[*call]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Traits reports the simulated platform's traits.
func (b *Backend) Traits() backends.Traits {
	p := b.cfg.Platform
	lim := p.MaxInFlight
	if lim == 0 && p.MaxInstances > 0 {
		lim = p.MaxInstances * p.InstanceConcurrency
	}
	return backends.Traits{Name: "sim:" + p.Name, MaxConcurrency: lim, MemoryMiB: b.mem, VCPUs: p.VCPUs(b.mem),
		PricePerGBSecond: p.PricePerGBSecond, PricePerRequest: p.PricePerRequest}
}

// Platform returns the model the backend simulates.
func (b *Backend) Platform() Platform { return b.cfg.Platform }

// Now returns the current simulated time.
func (b *Backend) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epoch.Add(b.m.now)
}

// Stats reports how many instances the model has created and how many
// invocations it has rejected so far.
func (b *Backend) Stats() (created, rejected int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.created, b.m.rejected
}

// newCall parses a task into a call; a payload that is not a probe
// request fails at once, having run nowhere.
func (b *Backend) newCall(t backends.Task) (*call, error) {
	if !probe.IsRequest(t.Payload) {
		return nil, fmt.Errorf("sim: task %s: the simulator runs probe invocations (kind %q) only: %w",
			t.ID, probe.Kind, backends.ErrNotStarted)
	}
	req, err := probe.ParseRequest(t.Payload)
	if err != nil {
		return nil, &backends.FunctionError{Backend: "sim", Type: "error", Message: err.Error()}
	}
	c := &call{task: t, req: req, ch: make(chan struct{}, 1)}
	c.inv = &invocation{id: t.ID, cpu: req.Task == probe.Compute, work: time.Duration(req.DurationNS), done: b.answered(c)}
	return c, nil
}

// answered returns the callback the model calls when c's answer reaches
// the client.
func (b *Backend) answered(c *call) func(*invocation) {
	return func(inv *invocation) {
		c.res, c.err = b.result(c, inv)
		delete(b.live, c)
		if c.state.CompareAndSwap(0, 2) {
			b.outstanding.Add(1)
		}
		c.ch <- struct{}{}
	}
}

// result builds the answer a real platform would have given.
func (b *Backend) result(c *call, inv *invocation) (backends.Result, error) {
	p := b.cfg.Platform
	res := backends.Result{Invocation: backends.Invocation{Sent: b.epoch.Add(inv.sent), Returned: b.epoch.Add(b.m.now)}}
	if inv.reject != "" {
		return res, fmt.Errorf("sim: %s rejected task %s: %s: %w", p.Name, c.task.ID, inv.reject, backends.ErrNotStarted)
	}
	in := inv.inst
	res.Invocation.Start, res.Invocation.End = b.epoch.Add(inv.start), b.epoch.Add(inv.end)
	res.Invocation.Instance, res.Invocation.Cold = in.id, inv.cold
	resp := probe.Response{Kind: probe.ResultKind, Seq: c.req.Seq, StartNS: res.Invocation.Start.UnixNano(),
		EndNS: res.Invocation.End.UnixNano(), Instance: in.id, InstanceSource: "sim", Cold: inv.cold,
		UptimeS: (inv.start - in.boot).Seconds(), Iterations: c.req.Iterations}
	if c.req.Task == probe.Compute {
		resp.Pi = 3.14159
	}
	res.Payload, _ = json.Marshal(resp) // plain fields: cannot fail
	return res, nil
}

// Invoke sends t at the current simulated instant and waits for the
// model's answer; see Backend for how simulated time advances.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	c, err := b.newCall(t)
	if err != nil {
		return backends.Result{}, err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.pending = append(b.pending, c)
	b.live[c] = struct{}{}
	b.lastCall = time.Now()
	if !b.loopStart {
		b.loopStart = true
		b.wg.Add(1)
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.ch:
		b.outstanding.Add(-1)
		return c.res, c.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(0, 1) {
			return backends.Result{}, fmt.Errorf("sim: task %s: %w (the simulated invocation goes on)", t.ID, ctx.Err())
		}
		<-c.ch // answered meanwhile
		b.outstanding.Add(-1)
		return c.res, c.err
	}
}

// loop advances simulated time for Invoke callers. It is owned by the
// backend and stopped by Close.
func (b *Backend) loop() {
	defer b.wg.Done()
	poll := max(b.cfg.Settle/4, 50*time.Microsecond)
	for {
		select {
		case <-b.done:
			return
		case <-b.wake:
		}
		for {
			b.mu.Lock()
			waiting := len(b.pending) > 0 || b.m.unanswered > 0
			if !waiting {
				b.mu.Unlock()
				break
			}
			if time.Since(b.lastCall) < b.cfg.Settle || b.outstanding.Load() > 0 {
				b.mu.Unlock()
				select {
				case <-b.done:
					return
				case <-time.After(poll):
				}
				continue
			}
			b.flushPending()
			b.runUntilAnswer()
			b.mu.Unlock()
		}
	}
}

// flushPending sends the pending Invoke calls into the model now.
func (b *Backend) flushPending() {
	for _, c := range b.pending {
		b.m.submit(c.inv)
	}
	b.pending = nil
}

// runUntilAnswer processes events until some caller is answered, then the
// rest of that instant's events.
func (b *Backend) runUntilAnswer() {
	before := b.m.answers
	for len(b.m.events) > 0 && b.m.unanswered > 0 {
		if b.m.answers != before && b.m.events[0].at != b.m.now {
			return
		}
		b.m.step()
	}
}

// InvokeAll sends every task at the current simulated instant and runs
// the model until all have answered. The i-th result and error answer
// tasks[i]. If ctx ends first, the unanswered tasks get ctx's error.
func (b *Backend) InvokeAll(ctx context.Context, tasks []backends.Task) ([]backends.Result, []error) {
	res := make([]backends.Result, len(tasks))
	errs := make([]error, len(tasks))
	calls := make([]*call, len(tasks))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		for i := range errs {
			errs[i] = backends.ErrClosed
		}
		return res, errs
	}
	b.flushPending()
	left := 0
	for i, t := range tasks {
		c, err := b.newCall(t)
		if err != nil {
			errs[i] = err
			continue
		}
		c.state.Store(1) // answered through calls[i], not through Invoke
		calls[i] = c
		left++
		inner := c.inv.done
		c.inv.done = func(inv *invocation) { inner(inv); left-- }
		b.m.submit(c.inv)
	}
	for n := 0; left > 0 && b.m.step(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			break
		}
	}
	for i, c := range calls {
		if c == nil {
			continue
		}
		select {
		case <-c.ch:
			res[i], errs[i] = c.res, c.err
		default:
			errs[i] = fmt.Errorf("sim: task %s: %w (the simulated invocation goes on)", c.task.ID, ctx.Err())
		}
	}
	return res, errs
}

// Close stops the clock loop; Invoke calls still waiting fail with
// ErrClosed. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	live := b.live
	b.live = map[*call]struct{}{}
	b.pending = nil
	b.mu.Unlock()
	b.wg.Wait()
	for c := range live {
		c.res, c.err = backends.Result{}, backends.ErrClosed
		if c.state.CompareAndSwap(0, 2) {
			b.outstanding.Add(1)
		}
		c.ch <- struct{}{}
	}
	return nil
}

// HintFor probes a preset platform with n concurrent one-second compute
// tasks in simulated time and returns the planner's hint for it, so the
// engine can size a job for a platform it has not measured.
func HintFor(ctx context.Context, preset string, n int) (probe.Hint, error) {
	cfg, err := DefaultConfig(preset)
	if err != nil {
		return probe.Hint{}, err
	}
	b, err := New(cfg)
	if err != nil {
		return probe.Hint{}, err
	}
	defer b.Close()
	tr, err := probe.Run(ctx, b, probe.Config{Invocations: n, Task: probe.Compute, Duration: time.Second, Iterations: 1, AllowOverLimit: true})
	if err != nil {
		return probe.Hint{}, err
	}
	return probe.Recommend(probe.Analyze(tr)), nil
}
