// Package local implements the embedded default backend: tasks run as
// goroutines in the calling process.
//
// The task payload still travels as the serialized bytes the engine produced
// and the result comes back serialized, so local runs exercise exactly the
// code path of remote functions. Each invocation runs on its own goroutine,
// owned by Invoke, which waits for it; Close waits for every invocation in
// flight. A panic in the handler is recovered and reported as a
// *backends.FunctionError of type "panic".
package local

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// Config configures a local backend.
type Config struct {
	// Handler runs each task. Required.
	Handler backends.Handler
	// Concurrency is the most tasks that run at once; further Invoke calls
	// wait for a slot. Default: runtime.GOMAXPROCS(0).
	Concurrency int
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Handler == nil {
		errs = append(errs, errors.New("local: Config.Handler is required"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("local: Config.Concurrency must be >= 0, got %d", c.Concurrency))
	}
	return errors.Join(errs...)
}

// Backend runs tasks on goroutines.
type Backend struct {
	handler backends.Handler
	slots   chan int // free slot numbers; a slot is one warm "instance"
	conc    int

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	used   []bool // whether slot i has run a task (cold-start tracking)
}

var _ backends.Backend = (*Backend)(nil)
var _ backends.Describer = (*Backend)(nil)

// New returns a local backend. It starts no goroutines.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Concurrency
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	b := &Backend{handler: cfg.Handler, slots: make(chan int, n), conc: n, used: make([]bool, n)}
	for i := 0; i < n; i++ {
		b.slots <- i
	}
	return b, nil
}

// Invoke runs t on a goroutine and waits for it.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()

	sent := time.Now()
	var slot int
	select {
	case slot = <-b.slots:
	case <-ctx.Done():
		return backends.Result{}, fmt.Errorf("local: task %s: %w: %w", t.ID, backends.ErrNotStarted, ctx.Err())
	}
	defer func() { b.slots <- slot }()
	b.mu.Lock()
	cold := !b.used[slot]
	b.used[slot] = true
	b.mu.Unlock()

	// The payload is copied so the handler cannot alias the caller's bytes,
	// as it could not on a remote platform.
	payload := append([]byte(nil), t.Payload...)
	out, err := b.run(ctx, payload)
	res := backends.Result{Invocation: backends.Invocation{
		Sent: sent, Returned: time.Now(), Instance: "local-" + strconv.Itoa(slot), Cold: cold,
	}}
	if err != nil {
		return res, err
	}
	res.Payload = out
	return res, nil
}

func (b *Backend) run(ctx context.Context, payload []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &backends.FunctionError{Backend: "local", Type: "panic",
				Message: fmt.Sprintf("%v\n%s", r, debug.Stack())}
		}
	}()
	out, err = b.handler(ctx, payload)
	if err != nil {
		var fe *backends.FunctionError
		if errors.As(err, &fe) || errors.Is(err, backends.ErrNotStarted) {
			return nil, err
		}
		return nil, &backends.FunctionError{Backend: "local", Type: "error", Message: err.Error()}
	}
	return append([]byte(nil), out...), nil
}

// Traits reports the local backend's traits.
func (b *Backend) Traits() backends.Traits {
	return backends.Traits{Name: "local", MaxConcurrency: b.conc, VCPUs: 1}
}

// Close waits for invocations in flight. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}
