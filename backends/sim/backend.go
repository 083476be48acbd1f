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
	// calls or returns before it advances simulated time (see Backend).
	// Default: 2 ms.
	Settle time.Duration
	// Handler runs the tasks that are not probe invocations: a Gale
	// worker's router (gale.NewWorkerMux), so whole jobs can run on the
	// simulated platform. Each such task runs for real, in this process,
	// and the CPU time it took becomes its compute demand in the model
	// (see Backend). Nil: such tasks fail with backends.ErrNotStarted.
	Handler backends.Handler
	// HandlerParallelism bounds how many handlers run at once in wall
	// time. Default 1: a handler's CPU time is measured as the process's
	// CPU time across its run, which is its own only when it runs alone.
	// More overlap the runs and charge each the CPU time of all that ran
	// beside it.
	HandlerParallelism int
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
	if c.HandlerParallelism < 0 {
		errs = append(errs, errors.New("sim: Config.HandlerParallelism must not be negative"))
	}
	return errors.Join(errs...)
}

// Backend is a simulated FaaS platform: a backends.Backend whose
// invocations run in the model's simulated time.
//
// Probe invocations (payloads of kind probe.Kind) are not executed: the
// model computes when each would start and end on the platform, from its
// requested duration and CPU demand, and the backend answers with the
// probe.Response a real function would have returned, with simulated
// times. An asynchronous probe request (probe.Request.Async) is modelled
// natively: the platform accepts it at once, retries it on its own while
// it is throttled, and the answer arrives when its result would land in
// object storage.
//
// Other payloads (a Gale job's stage tasks) run for real on
// Config.Handler, once the model starts them on an instance. While a
// handler runs, simulated time stands still at its start; when it returns,
// the process CPU time it took becomes its compute demand, which the model
// runs on the instance's CPU share at the platform's CPU speed, beside
// whatever else shares that CPU. Its answer is the handler's result (a
// handler error is a *backends.FunctionError), delivered at the simulated
// time the platform would answer. Time spent waiting on I/O is not
// charged: the model predicts compute, cold starts, queueing and limits.
// A rejection (throttled, no instance in time) is backends.ErrNotStarted:
// the handler did not run, and the engine retries. Tasks that must run at
// the same time as each other (barriers, iterate stages) cannot be
// simulated: simulated time cannot pass while one waits for another. So
// Traits reports MaxGang 1, and Invoke refuses a task of a larger gang
// (backends.Task.Gang) at once with backends.ErrGang.
//
// Time. Reported times are Config.Epoch plus simulated time, which starts
// at zero and passes only as the model processes events, never while the
// backend is idle: SimulatedElapsed measured before and after a job is its
// predicted makespan. InvokeAll sends a batch at one simulated instant and
// runs the model until every invocation of the batch has answered: a
// 10,000-invocation probe takes well under a second. Invoke serves
// callers that arrive independently: calls that arrive while the model is
// idle are sent at the current simulated instant; the clock advances only
// after no call has arrived and no caller has returned for Config.Settle
// of wall time, every caller answered so far has returned, and no handler
// is running; and then only to the next instant at which some caller gets
// an answer, so a caller that invokes again on an answer does so at the
// simulated time of that answer.
type Backend struct {
	cfg   Config
	mem   int
	epoch time.Time

	mu        sync.Mutex
	m         *model
	pending   []*call            // Invoke calls not yet sent into the model
	live      map[*call]struct{} // Invoke calls not yet answered
	closed    bool
	loopStart bool
	measured  *sync.Cond // signalled, under mu, when a handler has been measured

	lastActivity atomic.Int64 // wall time (Unix ns) of the last Invoke call or return
	outstanding  atomic.Int64 // answers delivered to Invoke callers that have not returned
	wake         chan struct{}
	done         chan struct{}
	wg           sync.WaitGroup // the clock loop and the handler goroutines

	hctx    context.Context // handlers' context, cancelled by Close
	hcancel context.CancelFunc
	hsem    chan struct{} // HandlerParallelism slots

	// abandoned counts Invoke calls whose caller gave up (its context
	// ended) before the answer: the model runs them on, as a platform
	// runs an invocation its client no longer waits for, but simulated
	// time does not advance for them alone.
	abandoned int
	tickers   []*ticker // NewTicker's, in simulated time
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
	_ probe.BatchInvoker = (*Backend)(nil)
)

// call is one Invoke or InvokeAll request.
type call struct {
	task   backends.Task
	req    probe.Request // probe invocations only
	exec   bool          // runs Config.Handler
	out    []byte        // exec: the handler's result
	herr   error         // exec: the handler's error
	inv    *invocation
	res    backends.Result
	err    error
	state  atomic.Int32 // 0 waiting, 1 abandoned, 2 answered
	gaveUp bool         // under Backend.mu: counted in Backend.abandoned
	ch     chan struct{}
}

// New returns a simulated platform. It starts no goroutine until the
// first Invoke or handler run.
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
	if cfg.HandlerParallelism == 0 {
		cfg.HandlerParallelism = 1
	}
	b := &Backend{cfg: cfg, mem: mem, epoch: cfg.Epoch, m: newModel(cfg.Platform, mem, cfg.Seed),
		live: map[*call]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
		hsem: make(chan struct{}, cfg.HandlerParallelism)}
	b.measured = sync.NewCond(&b.mu)
	b.hctx, b.hcancel = context.WithCancel(context.Background())
	b.m.onExec = b.runHandler
	return b, nil
}

// Traits reports the simulated platform's traits.
func (b *Backend) Traits() backends.Traits {
	p := b.cfg.Platform
	lim := p.MaxInFlight
	if lim == 0 && p.MaxInstances > 0 {
		lim = p.MaxInstances * p.InstanceConcurrency
	}
	return backends.Traits{Name: "sim:" + p.Name, MaxConcurrency: lim, MemoryMiB: b.mem, VCPUs: p.VCPUs(b.mem),
		PricePerGBSecond: p.PricePerGBSecond, PricePerRequest: p.PricePerRequest, MaxGang: 1}
}

// Platform returns the model the backend simulates.
func (b *Backend) Platform() Platform { return b.cfg.Platform }

// Now returns the current simulated time.
func (b *Backend) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epoch.Add(b.m.now)
}

// SimulatedElapsed returns the simulated time that has passed since the
// backend was created. It passes only while the platform serves
// invocations, so its growth across a job is the job's predicted
// makespan on the platform (engine.Simulator).
func (b *Backend) SimulatedElapsed() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.now
}

// SimulatedBilled returns the in-function time of every invocation that
// has finished so far, in simulated time: what the platform would bill
// (engine.Simulator).
func (b *Backend) SimulatedBilled() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.billed
}

// SimulatedStorage reports what the model's object store served so far:
// its name (Storage.Name; "" when the platform models no store), GET and
// PUT requests, the requests throttled by the per-prefix rates (delayed to
// a free slot) and their list price in US dollars. The engine reads it
// before and after a job (engine.StorageSimulator).
func (b *Backend) SimulatedStorage() (name string, gets, puts, throttled int64, cost float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.m.store
	if st == nil {
		return "", 0, 0, 0, 0
	}
	return st.s.Name, st.gets, st.puts, st.throttled, st.cost()
}

// Stats reports how many instances the model has created and how many
// invocations it has rejected so far.
func (b *Backend) Stats() (created, rejected int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.created, b.m.rejected
}

// Stragglers reports how many invocations the model's straggler model
// (Platform.Stragglers) has slowed so far.
func (b *Backend) Stragglers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.stragglers
}

// newCall parses a task into a call. A probe request is simulated; any
// other payload runs on Config.Handler, and fails at once, having run
// nowhere, when there is none.
func (b *Backend) newCall(t backends.Task) (*call, error) {
	if t.Gang > 1 {
		return nil, fmt.Errorf("sim: task %s is one of %d tasks that wait for each other, which a simulated platform cannot run together "+
			"(its clock stands still while a task runs, so the others would never start); run the job on local, process or a cloud backend: %w",
			t.ID, t.Gang, backends.ErrGang)
	}
	c := &call{task: t, ch: make(chan struct{}, 1)}
	if !probe.IsRequest(t.Payload) {
		if b.cfg.Handler == nil {
			return nil, fmt.Errorf("sim: task %s: this simulator has no handler, so it runs probe invocations (kind %q) only; give sim.Config a Handler (gale.NewWorkerMux) to run jobs: %w",
				t.ID, probe.Kind, backends.ErrNotStarted)
		}
		c.exec = true
		c.inv = &invocation{id: t.ID, cpu: true, exec: true, done: b.answered(c)}
		return c, nil
	}
	req, err := probe.ParseRequest(t.Payload)
	if err != nil {
		return nil, &backends.FunctionError{Backend: "sim", Type: "error", Message: err.Error()}
	}
	c.req = req
	c.inv = &invocation{id: t.ID, cpu: req.Task == probe.Compute, work: time.Duration(req.DurationNS),
		async: req.Async, done: b.answered(c)}
	return c, nil
}

// runHandler starts the handler of an exec invocation the model has just
// started; called by the model under b.mu. The goroutine is owned by the
// backend: Close cancels the handler's context and waits for it.
func (b *Backend) runHandler(inv *invocation) {
	c := inv.call
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		var cpu time.Duration
		select {
		case b.hsem <- struct{}{}:
			cpu, c.out, c.herr = measure(b.hctx, b.cfg.Handler, c.task.Payload)
			<-b.hsem
		case <-b.hctx.Done():
			c.herr = b.hctx.Err()
		}
		var io ioDemand
		if c.herr == nil && b.cfg.Platform.Storage.Modelled() {
			io = parseIODemand(c.out)
		}
		b.mu.Lock()
		if !b.closed {
			inv.io = io
			b.m.measured(inv, cpu)
		}
		b.measured.Broadcast()
		b.mu.Unlock()
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}()
}

// measure runs h on payload and returns the process CPU time it took.
// A panic in h is its error, as a platform reports a crashed function.
func measure(ctx context.Context, h backends.Handler, payload []byte) (cpu time.Duration, out []byte, err error) {
	t0 := processCPU()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &backends.FunctionError{Backend: "sim", Type: "panic", Message: fmt.Sprint(r)}
		}
		cpu = max(processCPU()-t0, 0)
	}()
	out, err = h(ctx, payload)
	return cpu, out, err
}

// answered returns the callback the model calls when c's answer reaches
// the client.
func (b *Backend) answered(c *call) func(*invocation) {
	return func(inv *invocation) {
		c.res, c.err = b.result(c, inv)
		delete(b.live, c)
		if c.gaveUp {
			c.gaveUp = false
			b.abandoned--
		}
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
	if c.exec {
		if c.herr != nil {
			fe := &backends.FunctionError{Backend: "sim:" + p.Name, Type: "error", Message: fmt.Sprintf("task %s: %v", c.task.ID, c.herr)}
			var inner *backends.FunctionError
			if errors.As(c.herr, &inner) {
				fe.Type, fe.Message = inner.Type, fmt.Sprintf("task %s: %s", c.task.ID, inner.Message)
			}
			return res, fe
		}
		res.Payload = c.out
		return res, nil
	}
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
	c.inv.call = c
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.pending = append(b.pending, c)
	b.live[c] = struct{}{}
	b.lastActivity.Store(time.Now().UnixNano())
	if !b.loopStart {
		b.loopStart = true
		b.wg.Add(1)
		go b.loop()
	}
	b.mu.Unlock()
	b.poke()
	select {
	case <-c.ch:
		b.returned()
		return c.res, c.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(0, 1) {
			b.mu.Lock()
			if _, ok := b.live[c]; ok {
				c.gaveUp = true
				b.abandoned++
			}
			b.mu.Unlock()
			b.lastActivity.Store(time.Now().UnixNano())
			return backends.Result{}, fmt.Errorf("sim: task %s: %w (the simulated invocation goes on)", t.ID, ctx.Err())
		}
		<-c.ch // answered meanwhile
		b.returned()
		return c.res, c.err
	}
}

// returned notes that an answered Invoke caller is returning: the clock
// waits Settle from now for what the caller does next.
func (b *Backend) returned() {
	b.lastActivity.Store(time.Now().UnixNano())
	b.outstanding.Add(-1)
	b.poke()
}

// poke wakes the clock loop.
func (b *Backend) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
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
			if !b.waiting() {
				b.mu.Unlock()
				break
			}
			quiet := time.Since(time.Unix(0, b.lastActivity.Load()))
			if quiet < b.cfg.Settle || b.outstanding.Load() > 0 {
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
			blocked := b.m.blocked()
			b.mu.Unlock()
			if blocked {
				// A handler runs: nothing can happen before it returns
				// (which pokes) or a new call arrives (which pokes).
				select {
				case <-b.done:
					return
				case <-b.wake:
				}
			}
		}
	}
}

// waiting reports whether some Invoke caller waits for an answer: only
// then does simulated time pass. Called under b.mu.
func (b *Backend) waiting() bool {
	return len(b.pending) > 0 || b.m.unanswered-b.abandoned > 0
}

// flushPending sends the pending Invoke calls into the model now.
func (b *Backend) flushPending() {
	for _, c := range b.pending {
		b.m.submit(c.inv)
	}
	b.pending = nil
}

// runUntilAnswer processes events until some caller is answered, then the
// rest of that instant's events; it stops early where a running handler
// blocks the clock.
func (b *Backend) runUntilAnswer() {
	before := b.m.answers
	for len(b.m.events) > 0 && b.m.unanswered > 0 {
		if b.m.answers != before && b.m.events[0].at != b.m.now {
			return
		}
		if b.tick(b.m.events[0].at) {
			return
		}
		if !b.m.step() {
			return
		}
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
		c.inv.call = c
		c.state.Store(1) // answered through calls[i], not through Invoke
		calls[i] = c
		left++
		inner := c.inv.done
		c.inv.done = func(inv *invocation) { inner(inv); left-- }
		b.m.submit(c.inv)
	}
	// A handler's completion wakes the wait below; so does the end of
	// ctx, through this watcher (it takes the lock to broadcast, so it
	// cannot slip between the check of ctx and the Wait).
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.measured.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	for left > 0 && ctx.Err() == nil && !b.closed {
		if b.m.step() {
			continue
		}
		if b.m.executing == 0 {
			break // nothing left to happen
		}
		b.measured.Wait() // a handler runs: wait for its measurement
	}
	for i, c := range calls {
		if c == nil {
			continue
		}
		select {
		case <-c.ch:
			res[i], errs[i] = c.res, c.err
		default:
			err := ctx.Err()
			if err == nil {
				err = backends.ErrClosed
			}
			errs[i] = fmt.Errorf("sim: task %s: %w (the simulated invocation goes on)", c.task.ID, err)
		}
	}
	return res, errs
}

// Close stops the clock loop, cancels the handlers still running and
// waits for them; Invoke calls still waiting fail with ErrClosed. It is
// idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.hcancel()
	live := b.live
	b.live = map[*call]struct{}{}
	b.pending = nil
	b.measured.Broadcast()
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
