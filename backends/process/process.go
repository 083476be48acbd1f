package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// WorkerEnv is the environment variable a Backend sets to WorkerEnvValue
// in every worker process it starts; the program's worker entry checks it
// to serve tasks instead of running its driver.
const WorkerEnv = "GALE_WORKER"

// WorkerEnvValue is WorkerEnv's value in a process backend's worker.
const WorkerEnvValue = "process"

// Config configures a process backend. Zero durations, a zero Concurrency
// and a nil Output take the defaults DefaultConfig sets.
type Config struct {
	// Path is the worker binary; normally this program's own,
	// os.Executable(). Required.
	Path string
	// Args are the worker's command-line arguments, without the program
	// name. DefaultConfig sets this program's own (os.Args[1:]), so the
	// worker builds the same pipeline, registering the same kernels,
	// before it serves tasks where the driver would run it.
	Args []string
	// Env holds extra KEY=VALUE environment entries for workers, on top of
	// this process's environment and WorkerEnv=WorkerEnvValue.
	Env []string
	// Dir is the workers' working directory; default: this process's.
	Dir string
	// Concurrency is the most worker processes alive at once, each running
	// one task at a time; further invocations wait for one to be free.
	// Default: runtime.GOMAXPROCS(0).
	Concurrency int
	// IdleTimeout is how long a worker stays warm without a task before
	// it is retired. Default: 1 minute.
	IdleTimeout time.Duration
	// StartTimeout bounds how long a new worker may take to report that
	// it is ready. Default: 30 seconds.
	StartTimeout time.Duration
	// StopTimeout is how long a retired worker may take to exit after it
	// is told to stop before it is killed. Default: 5 seconds.
	StopTimeout time.Duration
	// Output receives the workers' standard output and standard error,
	// line by line, each line prefixed with "gale worker PID: ". Default:
	// os.Stderr.
	Output io.Writer
}

// DefaultConfig returns a configuration that runs this very program, with
// its own arguments, as the worker.
func DefaultConfig() Config {
	path, _ := os.Executable() // an empty Path is reported by Validate
	return Config{
		Path:         path,
		Args:         append([]string(nil), os.Args[1:]...),
		Concurrency:  runtime.GOMAXPROCS(0),
		IdleTimeout:  time.Minute,
		StartTimeout: 30 * time.Second,
		StopTimeout:  5 * time.Second,
		Output:       os.Stderr,
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("process: Config.Path (the worker binary) is required; DefaultConfig sets it to this program"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("process: Config.Concurrency must be >= 0, got %d", c.Concurrency))
	}
	for name, d := range map[string]time.Duration{"IdleTimeout": c.IdleTimeout, "StartTimeout": c.StartTimeout, "StopTimeout": c.StopTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("process: Config.%s must not be negative, got %s", name, d))
		}
	}
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			errs = append(errs, fmt.Errorf("process: Config.Env entry %q is not KEY=VALUE", kv))
		case k == WorkerEnv:
			errs = append(errs, fmt.Errorf("process: Config.Env must not set %s; the backend sets it", WorkerEnv))
		}
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = d.StopTimeout
	}
	if c.Output == nil {
		c.Output = d.Output
	}
	return c
}

// Stats counts a backend's worker processes.
type Stats struct {
	// Started is how many worker processes were started; Exited how many
	// of them have exited and been reaped.
	Started, Exited int
	// Crashed is how many exited while running a task.
	Crashed int
	// Live is how many are alive (starting, busy, idle or stopping); Idle
	// how many of them are warm and waiting for a task.
	Live, Idle int
}

// Backend runs tasks in a pool of worker processes. It is safe for
// concurrent use.
type Backend struct {
	cfg Config
	env []string

	outMu sync.Mutex // serializes lines written to cfg.Output

	mu      sync.Mutex
	closed  bool
	idle    []*proc            // warm and free; the most recently used last
	live    int                // processes counted against Concurrency
	all     map[*proc]struct{} // started and not yet reaped
	changed chan struct{}      // closed (and replaced) when a worker or a slot frees up
	done    chan struct{}      // closed by Close; stops the janitor
	janitor bool               // whether the janitor runs
	stats   Stats

	invokes sync.WaitGroup // Invoke calls in flight
	wg      sync.WaitGroup // the janitor and every process's goroutines
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
)

// New returns a process backend. It starts nothing: worker processes start
// on demand.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	env := append(os.Environ(), cfg.Env...)
	env = append(env, WorkerEnv+"="+WorkerEnvValue)
	return &Backend{cfg: cfg, env: env, changed: make(chan struct{}), done: make(chan struct{}),
		all: map[*proc]struct{}{}}, nil
}

// Traits reports the process backend's traits.
func (b *Backend) Traits() backends.Traits {
	return backends.Traits{Name: "process", MaxConcurrency: b.cfg.Concurrency, VCPUs: 1, MaxPayloadBytes: MaxPayload}
}

// Stats returns the backend's process counts.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Live, s.Idle = b.live, len(b.idle)
	return s
}

// Invoke runs t in a worker process: a warm idle one if there is one, else
// a new one if fewer than Config.Concurrency are alive, else the first to
// become free. The result reports the worker's pid-based instance id
// ("process-PID"), whether this was its first task (a cold start), and
// the task's start and end inside the worker.
//
// Errors: a worker that could not be started or did not become ready, or
// a task that could not be handed to its worker, wraps
// backends.ErrNotStarted. A worker that exits while running the task (a
// crash, os.Exit in user code, a kill) fails only that task, with a
// *backends.FunctionError of type "crash" quoting the end of the worker's
// output; the process is replaced on demand. When ctx ends while the task
// runs, Invoke returns ctx's error at once (the task may have run) and the
// worker is retired: told to stop, which cancels the task, then killed if
// it does not exit within Config.StopTimeout.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.invokes.Add(1)
	b.mu.Unlock()
	defer b.invokes.Done()

	if len(t.Payload)+len(t.ID) > MaxPayload {
		return backends.Result{}, fmt.Errorf("process: task %s: payload of %d bytes exceeds the %d-byte limit; pass large inputs through object storage: %w",
			t.ID, len(t.Payload), MaxPayload, backends.ErrNotStarted)
	}
	if err := ctx.Err(); err != nil {
		return backends.Result{}, fmt.Errorf("process: task %s: %w: %w", t.ID, backends.ErrNotStarted, err)
	}
	sent := time.Now()
	p, err := b.acquire(ctx, t.ID)
	if err != nil {
		return backends.Result{}, err
	}
	if err := p.send(ctx, taskFrame(t.ID, t.Payload)); err != nil {
		b.retire(p)
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return backends.Result{}, fmt.Errorf("process: task %s: %w", t.ID, backends.ErrClosed)
		}
		return backends.Result{}, fmt.Errorf("process: task %s: handing it to worker process %d: %w: %w", t.ID, p.pid, backends.ErrNotStarted, err)
	}
	var body []byte
	select {
	case body = <-p.replies:
	case <-p.readerDone:
		select {
		case body = <-p.replies: // the result arrived just before the worker exited
		default:
			return backends.Result{}, b.lost(p, t.ID)
		}
	case <-ctx.Done():
		b.retire(p)
		return backends.Result{}, fmt.Errorf("process: task %s: %w (the task may have run; worker process %d is retired)", t.ID, ctx.Err(), p.pid)
	}
	r, err := decodeResult(body)
	if err != nil {
		b.retire(p)
		return backends.Result{}, fmt.Errorf("process: task %s: worker process %d: %w", t.ID, p.pid, err)
	}
	b.release(p)
	res := backends.Result{Invocation: backends.Invocation{
		Sent: sent, Returned: time.Now(), Start: r.start, End: r.end,
		Instance: p.instance, Cold: r.flags&flagCold != 0,
	}}
	if r.flags&flagError != 0 {
		if r.flags&flagNotStarted != 0 {
			return res, fmt.Errorf("process: task %s: %s: %w", t.ID, r.errMsg, backends.ErrNotStarted)
		}
		return res, &backends.FunctionError{Backend: "process", Type: r.errType, Message: r.errMsg}
	}
	res.Payload = r.payload
	return res, nil
}

// lost builds the error of a task whose worker exited before answering.
func (b *Backend) lost(p *proc, id string) error {
	<-p.exited // bounded: the supervisor kills and reaps the process
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.stats.Crashed++
	}
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("process: task %s: the backend was closed while worker process %d ran it (the task may have run)", id, p.pid)
	}
	why := describeExit(p.exitErr)
	if p.readErr != nil && !errors.Is(p.readErr, io.EOF) {
		why += "; " + p.readErr.Error()
	}
	return &backends.FunctionError{Backend: "process", Type: "crash",
		Message: fmt.Sprintf("worker process %d exited while running task %s (%s)%s", p.pid, id, why, p.outputTail())}
}

// acquire returns a worker reserved for one task.
func (b *Backend) acquire(ctx context.Context, id string) (*proc, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, backends.ErrClosed
		}
		if n := len(b.idle); n > 0 {
			p := b.idle[n-1]
			b.idle = b.idle[:n-1]
			b.mu.Unlock()
			select {
			case <-p.readerDone: // it died while idle; its supervisor accounts for it
				continue
			default:
				return p, nil
			}
		}
		if b.live < b.cfg.Concurrency {
			b.live++
			if !b.janitor {
				b.janitor = true
				b.wg.Add(1)
				go b.retireIdle()
			}
			b.mu.Unlock()
			p, err := b.start(ctx)
			if err != nil {
				return nil, fmt.Errorf("process: task %s: %w", id, err)
			}
			return p, nil
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("process: task %s: waiting for a free worker: %w: %w", id, backends.ErrNotStarted, ctx.Err())
		}
	}
}

// signalLocked wakes every acquire waiting for a worker or a slot.
func (b *Backend) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// release returns a worker that finished a task to the idle pool.
func (b *Backend) release(p *proc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		p.stop()
		return
	}
	p.idleSince = time.Now()
	b.idle = append(b.idle, p)
	b.signalLocked()
}

// retire stops a worker that is not in the idle pool.
func (b *Backend) retire(p *proc) { p.stop() }

// exited is called by a worker's supervisor once it has been reaped.
func (b *Backend) exited(p *proc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live--
	b.stats.Exited++
	delete(b.all, p)
	for i, q := range b.idle {
		if q == p {
			b.idle = append(b.idle[:i], b.idle[i+1:]...)
			break
		}
	}
	b.signalLocked()
}

// retireIdle is the janitor: it stops workers idle for longer than
// Config.IdleTimeout. Workers join the idle pool in time order, so the
// expired ones are its oldest; the janitor sleeps until the next expiry.
func (b *Backend) retireIdle() {
	defer b.wg.Done()
	timer := time.NewTimer(b.cfg.IdleTimeout)
	defer timer.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-timer.C:
		}
		now := time.Now()
		next := b.cfg.IdleTimeout
		b.mu.Lock()
		n := 0
		for _, p := range b.idle {
			idle := now.Sub(p.idleSince)
			if idle < b.cfg.IdleTimeout {
				next = b.cfg.IdleTimeout - idle
				break
			}
			p.stop()
			n++
		}
		b.idle = append(b.idle[:0], b.idle[n:]...)
		b.mu.Unlock()
		timer.Reset(next)
	}
}

// Close stops every worker — idle ones, and busy ones, whose tasks are
// cancelled and reported to their callers as possibly run — each first by
// telling it to stop, then, after Config.StopTimeout, by killing it. It
// waits for every invocation in flight, every worker process and every
// goroutine the backend owns. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
		for _, p := range b.idle {
			p.stop()
		}
		b.idle = nil
		for p := range b.all {
			p.stop()
		}
		b.signalLocked()
	}
	b.mu.Unlock()
	b.invokes.Wait()
	b.wg.Wait()
	return nil
}
