package rounds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/state"
)

// Embedded is a DSO server running in this process on loopback, with a
// client for the driver's own calls.
type Embedded struct {
	// Servers and Token reach the server (for gale.WithDSO).
	Servers []string
	Token   string
	// DSO is the driver's client.
	DSO *state.Client

	srv    *state.Server
	cancel context.CancelFunc
	done   chan error
}

// StartEmbedded starts a DSO server hosting the user-defined types of reg
// (which must include this package's, see Register) on a free loopback
// port with a random token. Close stops it.
func StartEmbedded(ctx context.Context, reg *state.Registry) (*Embedded, error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("rounds: generating a DSO token: %w", err)
	}
	e := &Embedded{Token: hex.EncodeToString(tok[:]), done: make(chan error, 1)}
	srv, err := state.NewServer(state.ServerConfig{Token: e.Token, Registry: reg})
	if err != nil {
		return nil, err
	}
	e.srv = srv
	e.Servers = []string{srv.Addr()}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	go func() { e.done <- srv.Serve(sctx) }()
	if e.DSO, err = state.Dial(ctx, state.ClientConfig{Servers: e.Servers, Token: e.Token}); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// Close disconnects the client and stops the server, waiting for it.
func (e *Embedded) Close() error {
	var errs []error
	if e.DSO != nil {
		errs = append(errs, e.DSO.Close())
		e.DSO = nil
	}
	if e.cancel != nil {
		e.cancel()
		if err := <-e.done; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
		errs = append(errs, e.srv.Close())
		e.cancel = nil
	}
	return errors.Join(errs...)
}

// TypeStats is the registered name of the Stats shared object type.
const TypeStats = "gale.rounds.Stats"

// Register registers this package's shared object types in reg.
func Register(reg *state.Registry) { state.RegisterType[Stats](reg, TypeStats) }

// Replicated reports whether dso is a client of a replicated DSO cluster:
// the jobs then keep their shared data objects (configuration, counter,
// model, statistics) replicated, so they survive a member's crash; the
// barrier, a coordination object, is not replicated (a crash of its member
// fails the workers waiting there, and they restart and resume).
func Replicated(dso *state.Client) bool { return dso.View() != nil }

func configMap(dso *state.Client, name string) state.Map {
	if Replicated(dso) {
		return dso.Map(name).Persistent()
	}
	return dso.Map(name)
}

func statsObject(dso *state.Client, name string) state.Object {
	if Replicated(dso) {
		return dso.Object(TypeStats, name+"/stats").Persistent()
	}
	return dso.Object(TypeStats, name+"/stats")
}

// Counter returns job name's shared iteration counter.
func Counter(dso *state.Client, name string) state.AtomicLong {
	if Replicated(dso) {
		return dso.AtomicLong(name + "/iteration").Persistent()
	}
	return dso.AtomicLong(name + "/iteration")
}

// PublishConfig stores a job's configuration (JSON) for its workers under
// name. It fails if the servers already hold a job of that name: every run
// needs its own DSO servers (the examples embed one per run).
func PublishConfig(ctx context.Context, dso *state.Client, name string, cfg any) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("rounds: encoding the %s configuration: %w", name, err)
	}
	_, existed, err := configMap(dso, name).PutIfAbsent(ctx, "config", b)
	if err != nil {
		return fmt.Errorf("rounds: publishing the %s configuration: %w", name, err)
	}
	if existed {
		return fmt.Errorf("rounds: the shared-object servers already hold a %s job; give each run its own servers", name)
	}
	return nil
}

// ReadConfig reads the configuration PublishConfig stored under name into
// cfg.
func ReadConfig(ctx context.Context, dso *state.Client, name string, cfg any) error {
	b, ok, err := configMap(dso, name).Get(ctx, "config")
	if err != nil {
		return fmt.Errorf("rounds: reading the %s configuration: %w", name, err)
	}
	if !ok {
		return fmt.Errorf("rounds: no %s configuration on the shared-object servers (the driver publishes it before starting the workers)", name)
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return fmt.Errorf("rounds: decoding the %s configuration: %w", name, err)
	}
	return nil
}

// Timing is where one worker attempt's time went.
type Timing struct {
	Worker, Attempt int
	// FirstRound is the round the attempt started (resumed) at; Rounds is
	// how many it completed.
	FirstRound, Rounds int
	// Load is the time from the worker's start to its first round
	// (parsing its partition, reading the configuration, resuming).
	Load time.Duration
	// Loop is the wall time of the rounds, split into Compute (local work),
	// DSO (shared-object calls other than the barrier) and Barrier (waiting
	// in CyclicBarrier.Await); Loop − Compute − DSO − Barrier is the
	// bookkeeping in between.
	Loop, Compute, DSO, Barrier time.Duration
}

// Stats is a shared object collecting the workers' Timing.
type Stats struct {
	Entries []Timing
}

// Put records t, replacing an earlier record of the same worker and
// attempt.
func (s *Stats) Put(t Timing) {
	for i, e := range s.Entries {
		if e.Worker == t.Worker && e.Attempt == t.Attempt {
			s.Entries[i] = t
			return
		}
	}
	s.Entries = append(s.Entries, t)
}

// All returns every record, by worker then attempt.
func (s *Stats) All() []Timing {
	out := slices.Clone(s.Entries)
	slices.SortFunc(out, func(a, b Timing) int {
		if a.Worker != b.Worker {
			return a.Worker - b.Worker
		}
		return a.Attempt - b.Attempt
	})
	return out
}

// Clone copies s (the server copies an object before each call).
func (s *Stats) Clone() *Stats { return &Stats{Entries: slices.Clone(s.Entries)} }

// ReadStats returns the Timing records the workers of job name left.
func ReadStats(ctx context.Context, dso *state.Client, name string) ([]Timing, error) {
	return state.Call[[]Timing](ctx, statsObject(dso, name), "All")
}

// Loop is one worker's view of a job's rounds: the shared iteration
// counter, the barrier, and the worker's Timing.
type Loop struct {
	name    string
	counter state.AtomicLong
	barrier state.CyclicBarrier
	stats   state.Object
	// T accumulates this attempt's timing.
	T     Timing
	start time.Time
	loop  time.Time
}

// NewLoop returns the loop of job name for the worker it describes; call
// it first thing in the worker, so Timing.Load counts from there.
func NewLoop(it *gale.Iteration, name string) *Loop {
	return &Loop{
		name:    name,
		counter: Counter(it.DSO, name),
		barrier: it.DSO.CyclicBarrier(name+"/barrier", it.Workers),
		stats:   statsObject(it.DSO, name),
		T:       Timing{Worker: it.Worker, Attempt: it.Attempt},
		start:   time.Now(),
	}
}

// Resume returns the round to start at: the shared counter, unless the
// barrier has already completed that round (the worker died after the
// barrier released it but before anyone advanced the counter), in which
// case it advances the counter itself. The barrier is crossed exactly once
// per round, so its generation counts the completed rounds; it cannot run
// ahead by more than one round, because it cannot complete a round
// without this worker.
func (l *Loop) Resume(ctx context.Context) (int, error) {
	var round, gen int64
	err := l.DSOCall(func() error {
		var err error
		if round, err = l.counter.Get(ctx); err != nil {
			return err
		}
		gen, err = l.barrier.Generation(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rounds: resuming %s: %w", l.name, err)
	}
	if gen > round {
		if err := l.DSOCall(func() error {
			_, err := l.counter.CompareAndSet(ctx, round, gen)
			return err
		}); err != nil {
			return 0, fmt.Errorf("rounds: resuming %s: %w", l.name, err)
		}
		round = gen
	}
	l.T.FirstRound = int(round)
	l.loop = time.Now()
	l.T.Load = l.loop.Sub(l.start)
	l.T.DSO = 0 // the calls so far belong to Load
	return int(round), nil
}

// Sync ends round r: it waits at the barrier for every worker, calls
// between (if not nil; a fault hook), then advances the shared counter
// from r to r+1 (CompareAndSet: the first worker through does it, the
// others find it done).
func (l *Loop) Sync(ctx context.Context, r int, between func() error) error {
	t := time.Now()
	_, _, err := l.barrier.Await(ctx)
	l.T.Barrier += time.Since(t)
	if err != nil {
		return fmt.Errorf("rounds: %s round %d: barrier: %w", l.name, r, err)
	}
	if between != nil {
		if err := between(); err != nil {
			return err
		}
	}
	if err := l.DSOCall(func() error {
		_, err := l.counter.CompareAndSet(ctx, int64(r), int64(r+1))
		return err
	}); err != nil {
		return fmt.Errorf("rounds: %s round %d: advancing the counter: %w", l.name, r, err)
	}
	l.T.Rounds++
	return nil
}

// DSOCall runs fn, counting its time as shared-object access.
func (l *Loop) DSOCall(fn func() error) error {
	t := time.Now()
	err := fn()
	l.T.DSO += time.Since(t)
	return err
}

// Compute runs fn, counting its time as local computation.
func (l *Loop) Compute(fn func()) {
	t := time.Now()
	fn()
	l.T.Compute += time.Since(t)
}

// Finish records this attempt's Timing in the job's Stats object.
func (l *Loop) Finish(ctx context.Context) error {
	if !l.loop.IsZero() {
		l.T.Loop = time.Since(l.loop)
	}
	if err := l.stats.Invoke(ctx, "Put", l.T); err != nil {
		return fmt.Errorf("rounds: recording %s timing: %w", l.name, err)
	}
	return nil
}
