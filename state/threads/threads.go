// Package threads runs functions on any Gale backend like goroutines — the
// cloud threads and serverless executor of the Crucial model.
//
// Go cannot ship closures, so functions are referenced by name: the user's
// program registers them in a Registry, and the same binary, started as a
// worker, serves them through Handler or a Worker (a backends.Handler). A
// thread's payload is JSON with "kind": "gale.thread/v1", the function's
// name, its JSON argument and the DSO servers' addresses and token, so the
// function can reach the shared objects (Env.DSO).
//
// An Executor starts threads (Go, then Thread.Wait), runs a batch
// (InvokeAll) or a distributed parallel for (ParallelFor: n iterations over
// a number of workers, static block scheduling). Errors propagate to the
// caller; a RetryPolicy says when to try again: an invocation that certainly
// did not start (backends.ErrNotStarted) is always retried, one that ran and
// failed (*backends.FunctionError) only if the policy allows it, since the
// function may have had effects on shared objects.
//
// This package imports backends, backends/local and state. Every goroutine it starts is
// owned by the Executor, which Close stops (by cancelling) and waits for.
package threads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/state"
)

// Kind is the value of the "kind" field of every thread payload; Gale's
// worker runtime routes payloads of this kind to this package's handler.
const Kind = "gale.thread/v1"

// Errors.
var (
	// ErrUnknownFunc: the worker has no function by that name.
	ErrUnknownFunc = errors.New("threads: unknown function")
	// ErrBadPayload: the payload is not a thread payload.
	ErrBadPayload = errors.New("threads: bad payload")
	// ErrClosed: the executor is closed.
	ErrClosed = errors.New("threads: executor closed")
)

// DSO tells a thread how to reach the shared objects.
type DSO struct {
	Servers []string `json:"servers"`
	Token   string   `json:"token"`
}

// Env is what a thread function receives besides its argument.
type Env struct {
	// DSO is a client to the shared objects, or nil if the executor has no
	// DSO configured. The worker owns it: do not Close it.
	DSO *state.Client
	// Thread identifies this invocation, e.g. "pi.worker#3".
	Thread string
}

// Func is a thread function: it receives its JSON argument and returns a
// JSON-encodable result.
type Func func(ctx context.Context, env *Env, arg json.RawMessage) (any, error)

// Registry holds thread functions by name. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	funcs map[string]Func
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{funcs: map[string]Func{}} }

// Register adds f under name. It panics if name is empty or taken (a
// programming error, as with sql.Register).
func (r *Registry) Register(name string, f Func) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" || f == nil {
		panic("threads: Register with an empty name or nil function")
	}
	if _, dup := r.funcs[name]; dup {
		panic(fmt.Sprintf("threads: Register(%q) called twice", name))
	}
	r.funcs[name] = f
}

// Register adds a typed function: its argument is decoded from JSON as A,
// its result encoded as JSON.
func Register[A, R any](reg *Registry, name string, f func(ctx context.Context, env *Env, arg A) (R, error)) {
	reg.Register(name, func(ctx context.Context, env *Env, raw json.RawMessage) (any, error) {
		var a A
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("threads: %s: argument does not decode as %T: %w", name, a, err)
			}
		}
		return f(ctx, env, a)
	})
}

// forArg is the argument of one ParallelFor worker.
type forArg struct {
	Lo  int             `json:"lo"`
	Hi  int             `json:"hi"`
	Arg json.RawMessage `json:"arg,omitempty"`
}

// RegisterFor adds a loop body for ParallelFor: each worker calls f for
// every iteration i of its block, in order, and stops at the first error.
func RegisterFor[A any](reg *Registry, name string, f func(ctx context.Context, env *Env, i int, arg A) error) {
	reg.Register(name, func(ctx context.Context, env *Env, raw json.RawMessage) (any, error) {
		var fa forArg
		if err := json.Unmarshal(raw, &fa); err != nil {
			return nil, fmt.Errorf("threads: %s: bad ParallelFor argument: %w", name, err)
		}
		var a A
		if len(fa.Arg) > 0 {
			if err := json.Unmarshal(fa.Arg, &a); err != nil {
				return nil, fmt.Errorf("threads: %s: argument does not decode as %T: %w", name, a, err)
			}
		}
		for i := fa.Lo; i < fa.Hi; i++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := f(ctx, env, i, a); err != nil {
				return nil, fmt.Errorf("iteration %d: %w", i, err)
			}
		}
		return fa.Hi - fa.Lo, nil
	})
}

func (r *Registry) lookup(name string) (Func, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if f, ok := r.funcs[name]; ok {
		return f, nil
	}
	names := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q (registered: %s); register it in the worker binary", ErrUnknownFunc, name, strings.Join(names, ", "))
}

// payload is the task descriptor of one thread.
type payload struct {
	Kind   string          `json:"kind"`
	Func   string          `json:"func"`
	Thread string          `json:"thread"`
	Arg    json.RawMessage `json:"arg,omitempty"`
	DSO    *DSO            `json:"dso,omitempty"`
}

// result is the handler's output.
type result struct {
	Kind   string          `json:"kind"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Worker serves thread payloads; it keeps one DSO client per distinct
// server set and token, shared by the invocations it runs. It is safe for
// concurrent use.
type Worker struct {
	reg     *Registry
	mu      sync.Mutex
	clients map[string]*state.Client
	closed  bool
}

// NewWorker returns a worker for reg's functions.
func NewWorker(reg *Registry) *Worker { return &Worker{reg: reg, clients: map[string]*state.Client{}} }

// Handler returns a backends.Handler running reg's functions with a fresh
// Worker. Its DSO clients live as long as the process; use NewWorker and
// Close to release them.
func Handler(reg *Registry) backends.Handler { return NewWorker(reg).Handle }

// Close closes the worker's DSO clients.
func (w *Worker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	var errs []error
	for k, c := range w.clients {
		errs = append(errs, c.Close())
		delete(w.clients, k)
	}
	return errors.Join(errs...)
}

func (w *Worker) client(ctx context.Context, d *DSO) (*state.Client, error) {
	key := strings.Join(d.Servers, ",") + "\x00" + d.Token
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("threads: worker closed")
	}
	if c := w.clients[key]; c != nil {
		return c, nil
	}
	c, err := state.Dial(ctx, state.ClientConfig{Servers: d.Servers, Token: d.Token})
	if err != nil {
		return nil, err
	}
	w.clients[key] = c
	return c, nil
}

// Handle runs one thread payload. It is a backends.Handler.
func (w *Worker) Handle(ctx context.Context, raw []byte) ([]byte, error) {
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if p.Kind != Kind {
		return nil, fmt.Errorf("%w: kind %q, want %q", ErrBadPayload, p.Kind, Kind)
	}
	f, err := w.reg.lookup(p.Func)
	if err != nil {
		return nil, err
	}
	env := &Env{Thread: p.Thread}
	if p.DSO != nil && len(p.DSO.Servers) > 0 {
		if env.DSO, err = w.client(ctx, p.DSO); err != nil {
			return nil, fmt.Errorf("threads: %s: reaching the DSO: %w", p.Thread, err)
		}
	}
	out, err := f(ctx, env, p.Arg)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("threads: %s: encoding the result: %w", p.Thread, err)
	}
	return json.Marshal(result{Kind: Kind, Result: b})
}
