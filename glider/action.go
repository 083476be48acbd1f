package glider

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Action is a user-defined stateful object that lives at a path of a
// namespace and is fed and drained through streams, like a file. Any type
// can be an action; it opts into each event by implementing the matching
// interface, all optional: Creator, WriteHandler, ReadHandler, Deleter and
// Sizer.
//
// An active server runs one method of an action at a time (the action
// lock), so an action's fields need no locking of their own. An action
// created with interleaving lets a method that waits for stream data (or
// for its reader to catch up) yield the lock to another method of the same
// action; methods still never run at the same time, but a method may see
// the action's state change while it waits inside Read or Write.
type Action = any

// Creator is implemented by actions that initialize themselves when
// created. An error (or panic) makes the creation fail: no node appears.
type Creator interface {
	OnCreate(ctx context.Context, env *Env) error
}

// WriteHandler is implemented by actions that accept writes. OnWrite runs
// once per write stream and consumes it from r; r returns io.EOF when the
// writer closed the stream successfully and an error wrapping
// ErrStreamBroken when it was cut (the writer aborted or went away), so a
// partial stream is never mistaken for a whole one. OnWrite's error is
// returned to the writer by its Close.
type WriteHandler interface {
	OnWrite(ctx context.Context, r io.Reader) error
}

// ReadHandler is implemented by actions that can be read. OnRead runs once
// per read stream and writes the stream's contents to w; returning ends
// the stream (the reader sees io.EOF, or OnRead's error). Writes to w block
// while the reader is behind, and fail once the reader went away.
type ReadHandler interface {
	OnRead(ctx context.Context, w io.Writer) error
}

// Deleter is implemented by actions that release something when deleted.
// OnDelete runs after every stream of the action was cut.
type Deleter interface {
	OnDelete(ctx context.Context) error
}

// Sizer is implemented by actions that report how many bytes of state they
// hold; the active server sums it into the bytes-stored accounting. It is
// called with the action lock held, after every method.
type Sizer interface {
	StateBytes() int64
}

// Env is what an action learns about itself when created.
type Env struct {
	// Namespace, Path and Type name the action.
	Namespace, Path, Type string
	// Options are the creation options given by the client.
	Options map[string]string
	// Interleaved reports whether the action was created with
	// interleaving.
	Interleaved bool

	registry *Registry
	client   func(ctx context.Context) (*Client, error)
}

// Client returns a client of the action's namespace, so the action can
// open other nodes (read files next to it, write results). It is shared by
// the actions of the namespace on this server and owned by the server:
// do not close it.
func (e *Env) Client(ctx context.Context) (*Client, error) {
	if e.client == nil {
		return nil, fmt.Errorf("glider: action %s: no namespace client in this environment", e.Path)
	}
	return e.client(ctx)
}

// Registry returns the registry the action's server uses (to look up
// combiners and predicates by name).
func (e *Env) Registry() *Registry { return e.registry }

// NewEnv returns an Env for running an action outside a server (in tests
// or a worker); client may be nil.
func NewEnv(reg *Registry, path, typ string, options map[string]string, client *Client) *Env {
	e := &Env{Path: path, Type: typ, Options: options, registry: reg}
	if client != nil {
		e.client = func(context.Context) (*Client, error) { return client, nil }
	}
	return e
}

// CombineFunc merges value v into the accumulator acc of one key and
// returns the new accumulator. acc is nil for the first value of a key. It
// must be associative, with values and accumulators in one encoding: merge
// actions also use it to fold one accumulator into another.
// The function may reuse acc's memory but must not keep v (it aliases the
// stream's buffer).
type CombineFunc func(acc, v []byte) ([]byte, error)

// PredicateFactory builds a line predicate from its argument (a substring,
// a regular expression, ...), reporting a bad argument as an error.
type PredicateFactory func(arg string) (func(line []byte) bool, error)

// Registry maps names to action types, combiners and line predicates. An
// active server instantiates only the types of its registry, so they must
// be linked into its binary. A Registry is safe for concurrent use; names
// are registered once, at start-up.
type Registry struct {
	mu         sync.RWMutex
	actions    map[string]func() Action
	combiners  map[string]CombineFunc
	predicates map[string]PredicateFactory
	// int64Folds are native forms of the built-in int64 combiners, used by
	// merge actions to skip the varint round trip per record.
	int64Folds map[string]func(a, b int64) int64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{actions: map[string]func() Action{}, combiners: map[string]CombineFunc{}, predicates: map[string]PredicateFactory{}, int64Folds: map[string]func(a, b int64) int64{}}
}

// DefaultRegistry returns a new registry holding the built-in actions
// (merge, sort, filter, count), combiners (int64-sum, int64-min,
// int64-max, last)
// and predicates (substring, prefix, regexp).
func DefaultRegistry() *Registry {
	r := NewRegistry()
	registerBuiltins(r)
	return r
}

// Register registers an action type: factory returns a new, empty
// instance. Registering a name twice is a programmer error and panics.
func (r *Registry) Register(name string, factory func() Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("glider: action type name %q must match %s", name, nameRE))
	}
	if _, dup := r.actions[name]; dup {
		panic(fmt.Sprintf("glider: action type %q registered twice", name))
	}
	r.actions[name] = factory
}

// Wrap decorates every instance of the registered action type name that
// is created from now on: wrap receives the new instance and returns the
// action the server uses instead (to count, check or fail what it does).
// The wrapper must implement the event interfaces (Creator, WriteHandler,
// ...) it wants to pass on. Wrapping a type that is not registered is a
// programmer error and panics.
func (r *Registry) Wrap(name string, wrap func(Action) Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.actions[name]
	if f == nil {
		panic(fmt.Sprintf("glider: cannot wrap action type %q: it is not registered", name))
	}
	r.actions[name] = func() Action { return wrap(f()) }
}

// RegisterCombiner registers a combine function for merge actions.
// Registering a name twice panics.
func (r *Registry) RegisterCombiner(name string, f CombineFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.combiners[name]; dup {
		panic(fmt.Sprintf("glider: combiner %q registered twice", name))
	}
	r.combiners[name] = f
}

// RegisterPredicate registers a line predicate for filter actions.
// Registering a name twice panics.
func (r *Registry) RegisterPredicate(name string, f PredicateFactory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.predicates[name]; dup {
		panic(fmt.Sprintf("glider: predicate %q registered twice", name))
	}
	r.predicates[name] = f
}

// HasCombiner reports whether a combine function is registered under name.
func (r *Registry) HasCombiner(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.combiners[name] != nil
}

// Predicates returns a copy of the predicate factories by name (to copy
// them into another registry).
func (r *Registry) Predicates() map[string]PredicateFactory {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]PredicateFactory, len(r.predicates))
	for k, f := range r.predicates {
		out[k] = f
	}
	return out
}

// HasPredicate reports whether a predicate is registered under name.
func (r *Registry) HasPredicate(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.predicates[name] != nil
}

// Combiner returns the combine function registered under name.
func (r *Registry) Combiner(name string) (CombineFunc, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := r.combiners[name]
	if f == nil {
		return nil, errf(wire.CodeUnknownType, "glider: no combiner %q is registered (known: %v)", name, keys(r.combiners))
	}
	return f, nil
}

// Predicate returns the predicate built by the factory registered under
// name from arg.
func (r *Registry) Predicate(name, arg string) (func([]byte) bool, error) {
	r.mu.RLock()
	f := r.predicates[name]
	known := keys(r.predicates)
	r.mu.RUnlock()
	if f == nil {
		return nil, errf(wire.CodeUnknownType, "glider: no predicate %q is registered (known: %v)", name, known)
	}
	p, err := f(arg)
	if err != nil {
		return nil, errf(wire.CodeBadRequest, "glider: predicate %s(%q): %v", name, arg, err)
	}
	return p, nil
}

// newAction instantiates the action type name.
func (r *Registry) newAction(name string) (Action, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := r.actions[name]
	if f == nil {
		return nil, errf(wire.CodeUnknownType, "glider: no action type %q is registered in the active server's binary (known: %v); register it with Registry.Register", name, keys(r.actions))
	}
	return f(), nil
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
