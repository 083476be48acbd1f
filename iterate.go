package gale

import (
	"context"
	"errors"
	"fmt"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/state"
)

// Iteration is what an Iterate worker receives besides its partition.
type Iteration struct {
	// Worker is this worker's index in [0, Workers).
	Worker, Workers int
	// Attempt is 1 for a worker's first run; a worker restarted after a
	// failure has Attempt > 1 and must resume from the shared state (keep
	// the iteration counter in a shared object and read it first).
	Attempt int
	// DSO is a client of the job's shared-object servers, connected for
	// this worker and closed when the worker returns.
	DSO *state.Client
}

// IterateFunc is the body of an iterative job's worker: it loads nothing
// (its partition is in part), loops — reading and merging shared state,
// crossing barriers — and returns when the loop ends. A returned error or
// a panic fails the worker; the engine restarts it, up to the job's
// MaxAttempts.
type IterateFunc[T any] func(ctx context.Context, it *Iteration, part []T) error

// Iterate hands the elements of c, divided into workers partitions of
// nearly equal size, to workers long-running workers that each run fn once
// over their partition. It is how iterative algorithms (k-means, logistic
// regression) run on Gale: data is loaded once, and the workers keep their
// model in shared objects (package state) and synchronize with shared
// barriers, instead of one stage per iteration. All workers run at once, so
// the job's concurrency (Workers) must be at least workers; the run needs
// shared-object servers (WithDSO). fn must be a top-level function or
// registered with Register. Iterate is a terminal: the results live in the
// shared objects.
func Iterate[T any](c Collection[T], workers int, fn IterateFunc[T]) {
	loc := callerLoc(1)
	p := c.p
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "Iterate: %v", err)
	}
	kname := fmt.Sprintf("iterate:%s(%s)", name, coder.TypeName[T]())
	p.reg.Put(kname, &iterateKernel[T]{fn: fn, name: name})
	iterateNode(c, workers, "Iterate", name, kname, loc)
}

// IterateWith is Iterate with a parameter, as MapWith: param travels to
// the workers as its JSON encoding (so the driver may compute it at run
// time: the number of rounds, a learning rate, the initial model's
// location), and every worker, however its own run of main configured the
// pipeline, receives the driver's value. P must survive its JSON round
// trip; one that does not (an unexported field, a func) is refused when the
// pipeline is built, naming the type and field.
func IterateWith[P, T any](c Collection[T], workers int, fn func(ctx context.Context, it *Iteration, param P, part []T) error, param P) {
	loc := callerLoc(1)
	p := c.p
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "IterateWith: %v", err)
	}
	params, err := encodeParam(param)
	if err != nil {
		p.fail(loc, "IterateWith: %v", err)
	}
	// The kernel's name ends with the parameter's encoding; every process
	// builds its kernel from the name the driver sent.
	prefix := fmt.Sprintf("iteratewith:%s(%s,%s):", name, coder.TypeName[P](), coder.TypeName[T]())
	p.reg.PutFamily(prefix, func(cfg string) (any, error) {
		v, err := decodeParam[P]([]byte(cfg))
		if err != nil {
			return nil, err
		}
		return &iterateKernel[T]{name: name, fn: func(ctx context.Context, it *Iteration, part []T) error {
			return fn(ctx, it, v, part)
		}}, nil
	})
	iterateNode(c, workers, "IterateWith", name, prefix+string(params), loc)
}

func iterateNode[T any](c Collection[T], workers int, kind, name, kname, loc string) {
	p := c.p
	if workers < 1 {
		p.fail(loc, "%s: need at least one worker, got %d", kind, workers)
	}
	checkCoder[T](p, loc, kind+" element")
	addNode[T](p, &node{Node: planner.Node{Kind: planner.Iterate, Label: kind + "(" + displayName(name) + ")",
		Kernel: kname, Inputs: []int{c.id}, Loc: loc, Partitions: workers}})
}

// WithDSO gives the job's iterate workers the shared-object servers at
// servers (every server of the cluster, in the same order for everyone),
// authenticated with token.
func WithDSO(servers []string, token string) RunOption {
	return func(c *runConfig) { c.dso = &dsoConfig{servers: servers, token: token} }
}

type dsoConfig struct {
	servers []string
	token   string
}

// iterateKernel repartitions elements round-robin (map side) and runs the
// worker over its partition (reduce side).
type iterateKernel[T any] struct {
	fn   IterateFunc[T]
	name string
}

var _ kernel.Keyed = (*iterateKernel[int])(nil)

func (k *iterateKernel[T]) Writer(parts int, _ bool) (kernel.ShuffleWriter, error) {
	return &roundRobin[T]{out: make([][]byte, parts), c: coder.For[T]()}, nil
}

// roundRobin deals elements to partitions in turn, so partitions differ in
// size by at most one element per map task.
type roundRobin[T any] struct {
	out  [][]byte
	c    coder.Coder[T]
	vbuf []byte
	next int
	n    int64
}

func (w *roundRobin[T]) Emit() any {
	return func(v T) {
		i := w.next
		w.next = (w.next + 1) % len(w.out)
		w.vbuf = w.c.Append(w.vbuf[:0], v)
		w.out[i] = coder.AppendBytes(coder.AppendBytes(w.out[i], nil), w.vbuf)
		w.n++
	}
}

func (w *roundRobin[T]) Finish() ([][]byte, error) { return w.out, nil }
func (w *roundRobin[T]) Records() int64            { return w.n }

func (k *iterateKernel[T]) Reduce(ctx context.Context, segments [][]byte, _ bool, _ any) (int64, error) {
	c := coder.For[T]()
	var part []T
	err := forRecords(ctx, segments, func(_, val []byte) (int, error) {
		v, n, err := c.Decode(val)
		if err == nil {
			part = append(part, v)
		}
		return n, err
	})
	if err != nil {
		return 0, err
	}
	info, ok := kernel.TaskInfoFrom(ctx)
	if !ok || len(info.DSOServers) == 0 {
		return int64(len(part)), errors.New("gale: Iterate worker started without shared-object servers (gale.WithDSO)")
	}
	dso, err := state.Dial(ctx, state.ClientConfig{Servers: info.DSOServers, Token: info.DSOToken})
	if err != nil {
		return int64(len(part)), fmt.Errorf("gale: Iterate worker %d: connecting to shared objects: %w", info.Task, err)
	}
	defer dso.Close()
	it := &Iteration{Worker: info.Task, Workers: info.Tasks, Attempt: info.Attempt, DSO: dso}
	if err := k.fn(ctx, it, part); err != nil {
		return int64(len(part)), fmt.Errorf("gale: Iterate worker %d (%s): %w", info.Task, displayName(k.name), err)
	}
	return int64(len(part)), nil
}
