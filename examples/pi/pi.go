// Package pi estimates π by Monte Carlo sampling on cloud threads that
// share two AtomicLong counters, the first example of the Crucial model.
//
// Each worker draws SamplesPerWorker points in the unit square from its own
// deterministic random stream (PCG seeded with Seed and the worker's index),
// counts those inside the quarter circle, and adds its counts to the shared
// counters with one AddAndGet each. The driver reads the counters: π ≈ 4 ·
// inside / total.
//
// Run starts threads on cfg.Executor if given, else on an embedded DSO
// server and the local backend (threads.StartLocal). A worker binary must
// call Register on its thread registry. This package starts goroutines only
// through threads.StartLocal, which Run closes before returning.
package pi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"

	"github.com/galeproject/gale/state"
	"github.com/galeproject/gale/state/threads"
)

// FuncName is the registered name of the worker function.
const FuncName = "gale.examples.pi.worker"

// Config configures a run.
type Config struct {
	// Workers is the number of cloud threads. Default 4.
	Workers int
	// SamplesPerWorker is the number of points each thread draws.
	// Default 1,000,000.
	SamplesPerWorker int64
	// Seed selects the random streams. Default 1.
	Seed uint64
	// Executor and DSO, if both set, run the threads there (e.g. on the
	// process backend); otherwise Run embeds its own.
	Executor *threads.Executor
	DSO      *state.Client
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("pi: Workers must be >= 0, got %d", c.Workers))
	}
	if c.SamplesPerWorker < 0 {
		errs = append(errs, fmt.Errorf("pi: SamplesPerWorker must be >= 0, got %d", c.SamplesPerWorker))
	}
	if (c.Executor == nil) != (c.DSO == nil) {
		errs = append(errs, errors.New("pi: set both Executor and DSO, or neither"))
	}
	return errors.Join(errs...)
}

// Result is a run's outcome.
type Result struct {
	// Estimate is 4 · Inside / Total.
	Estimate float64
	// Inside and Total are the shared counters' final values.
	Inside, Total int64
	// Workers is the number of threads run.
	Workers int
}

// Task is one worker's argument.
type Task struct {
	Seed    uint64 `json:"seed"`
	Worker  int    `json:"worker"`
	Samples int64  `json:"samples"`
	Key     string `json:"key"`
}

// Sample counts how many of n points of worker's stream fall inside the
// quarter circle. It stops with ctx's error when ctx ends (Ctrl-C), which
// it checks every 2^16 points.
func Sample(ctx context.Context, seed uint64, worker int, n int64) (int64, error) {
	r := mrand.New(mrand.NewPCG(seed, uint64(worker)))
	var in int64
	for i := int64(0); i < n; i++ {
		if i&(1<<16-1) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			in++
		}
	}
	return in, nil
}

// Register adds the worker function to reg.
func Register(reg *threads.Registry) {
	threads.Register(reg, FuncName, func(ctx context.Context, env *threads.Env, t Task) (int64, error) {
		if env.DSO == nil {
			return 0, errors.New("pi: the worker has no DSO")
		}
		in, err := Sample(ctx, t.Seed, t.Worker, t.Samples)
		if err != nil {
			return 0, err
		}
		if _, err := env.DSO.AtomicLong(t.Key+"/inside").AddAndGet(ctx, in); err != nil {
			return 0, err
		}
		if _, err := env.DSO.AtomicLong(t.Key+"/total").AddAndGet(ctx, t.Samples); err != nil {
			return 0, err
		}
		return in, nil
	})
}

// Run estimates π.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.SamplesPerWorker == 0 {
		cfg.SamplesPerWorker = 1_000_000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	ex, dso := cfg.Executor, cfg.DSO
	if ex == nil {
		reg := threads.NewRegistry()
		Register(reg)
		l, err := threads.StartLocal(ctx, threads.LocalConfig{Registry: reg})
		if err != nil {
			return Result{}, err
		}
		defer l.Close()
		ex, dso = l.Executor, l.DSO
	}
	// A fresh key per run keeps runs on a long-lived DSO apart.
	var id [8]byte
	_, _ = rand.Read(id[:])
	key := "pi/" + hex.EncodeToString(id[:])
	calls := make([]threads.Call, cfg.Workers)
	for w := range calls {
		calls[w] = threads.Call{Func: FuncName, Arg: Task{Seed: cfg.Seed, Worker: w, Samples: cfg.SamplesPerWorker, Key: key}}
	}
	if _, err := ex.InvokeAll(ctx, calls); err != nil {
		return Result{}, fmt.Errorf("pi: %w", err)
	}
	in, err := dso.AtomicLong(key + "/inside").Get(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("pi: %w", err)
	}
	total, err := dso.AtomicLong(key + "/total").Get(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("pi: %w", err)
	}
	res := Result{Inside: in, Total: total, Workers: cfg.Workers}
	if total > 0 {
		res.Estimate = 4 * float64(in) / float64(total)
	}
	return res, nil
}

// StdDev is the standard deviation of the estimate for n samples:
// 4·sqrt(p(1-p)/n) with p = π/4.
func StdDev(n int64) float64 {
	p := math.Pi / 4
	return 4 * math.Sqrt(p*(1-p)/float64(n))
}
