package kmeans

import (
	"context"
	"fmt"
	"slices"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
	"github.com/galeproject/gale/state"
)

// Registered names of the shared object types.
const (
	TypeCentroids = "gale.kmeans.Centroids"
	TypeDelta     = "gale.kmeans.Delta"
)

// RegisterTypes registers the shared object types of ModeShared (and
// package rounds') in reg; the DSO server of a shared-mode run must host
// them.
func RegisterTypes(reg *state.Registry) {
	state.RegisterType[Centroids](reg, TypeCentroids)
	state.RegisterType[Delta](reg, TypeDelta)
	rounds.Register(reg)
}

// Centroids is the shared centroid object. Its methods run on the DSO
// server, one call at a time.
type Centroids struct {
	K, Dim, Workers int
	// Round is the number of rounds merged; Centers are the centroids of
	// round Round.
	Round   int
	Centers []float64
	// Previous are the centroids of round Round−1, for a worker restarted
	// after its merge into that round but before the barrier: it redoes
	// the round (its merge then ignored) and needs them.
	Previous []float64
	// Pending collects the workers' sums and counts of round Round.
	Pending rounds.Contributions
}

// Init sets the object up for a job, unless it already is: a second call
// must agree with the first.
func (c *Centroids) Init(k, dim, workers int, centers []float64) error {
	if c.K != 0 {
		if c.K != k || c.Dim != dim || c.Workers != workers {
			return fmt.Errorf("kmeans: centroids already set up for K=%d, Dim=%d, %d workers", c.K, c.Dim, c.Workers)
		}
		return nil
	}
	if k < 1 || dim < 1 || workers < 1 || len(centers) != k*dim {
		return fmt.Errorf("kmeans: bad centroids setup: K=%d, Dim=%d, %d workers, %d coordinates", k, dim, workers, len(centers))
	}
	c.K, c.Dim, c.Workers = k, dim, workers
	c.Centers = slices.Clone(centers)
	c.Pending.Reset(workers)
	return nil
}

// Get returns the centroids of round round: the current round, or the one
// before (every worker merges round r before the barrier of round r, so
// after the barrier the object is at round r+1; a worker restarted between
// its merge and the barrier asks for round r again).
func (c *Centroids) Get(round int) ([]float64, error) {
	if c.K == 0 {
		return nil, fmt.Errorf("kmeans: centroids not set up (Init)")
	}
	if round == c.Round-1 {
		return c.Previous, nil
	}
	if round != c.Round {
		return nil, fmt.Errorf("kmeans: centroids of round %d asked for, but the object is at round %d", round, c.Round)
	}
	return c.Centers, nil
}

// Partial is one worker's contribution to a round.
type Partial struct {
	Round, Worker int
	// Sums holds, for each centroid, the sum of the worker's points
	// assigned to it (K·Dim); Counts how many there were (K).
	Sums, Counts []float64
}

// Merge adds a worker's partial sums and counts to the current round. A
// worker's second contribution to a round, or one to a finished round (a
// restarted worker redoing it), is ignored and Merge returns false. When
// the last worker's contribution arrives, Merge moves the centroids to the
// means, adding the contributions in worker order, and opens the next
// round.
func (c *Centroids) Merge(p Partial) (bool, error) {
	switch {
	case c.K == 0:
		return false, fmt.Errorf("kmeans: centroids not set up (Init)")
	case p.Round < c.Round:
		return false, nil
	case p.Round > c.Round:
		return false, fmt.Errorf("kmeans: worker %d merged round %d, but the object is at round %d", p.Worker, p.Round, c.Round)
	case len(p.Sums) != c.K*c.Dim || len(p.Counts) != c.K:
		return false, fmt.Errorf("kmeans: worker %d sent %d sums and %d counts, want %d and %d", p.Worker, len(p.Sums), len(p.Counts), c.K*c.Dim, c.K)
	}
	added, err := c.Pending.Add(p.Worker, append(slices.Clone(p.Sums), p.Counts...))
	if err != nil || !added {
		return false, err
	}
	if c.Pending.Complete() {
		total := c.Pending.Sum()
		c.Previous = c.Centers
		c.Centers = update(c.Centers, total[:c.K*c.Dim], total[c.K*c.Dim:], c.K, c.Dim)
		c.Round++
		c.Pending.Reset(c.Workers)
	}
	return true, nil
}

// Clone copies c (the server copies an object before each call).
func (c *Centroids) Clone() *Centroids {
	out := *c
	out.Centers = slices.Clone(c.Centers)
	out.Previous = slices.Clone(c.Previous)
	out.Pending = c.Pending.Clone()
	return &out
}

// Delta is the shared global delta: each round's cost, the sum of the
// workers' local costs, taken exactly once per worker.
type Delta struct {
	Workers int
	// Costs holds the cost of every completed round.
	Costs   []float64
	Pending rounds.Contributions
}

// Init sets the object up for workers workers, unless it already is.
func (d *Delta) Init(workers int) error {
	if d.Workers != 0 {
		if d.Workers != workers {
			return fmt.Errorf("kmeans: delta already set up for %d workers", d.Workers)
		}
		return nil
	}
	if workers < 1 {
		return fmt.Errorf("kmeans: bad delta setup: %d workers", workers)
	}
	d.Workers = workers
	d.Pending.Reset(workers)
	return nil
}

// Update adds a worker's local cost of round round, once (see
// Centroids.Merge).
func (d *Delta) Update(round, worker int, cost float64) (bool, error) {
	switch {
	case d.Workers == 0:
		return false, fmt.Errorf("kmeans: delta not set up (Init)")
	case round < len(d.Costs):
		return false, nil
	case round > len(d.Costs):
		return false, fmt.Errorf("kmeans: worker %d updated the delta of round %d, but the object is at round %d", worker, round, len(d.Costs))
	}
	added, err := d.Pending.Add(worker, []float64{cost})
	if err != nil || !added {
		return false, err
	}
	if d.Pending.Complete() {
		d.Costs = append(d.Costs, d.Pending.Sum()[0])
		d.Pending.Reset(d.Workers)
	}
	return true, nil
}

// History returns the cost of every completed round.
func (d *Delta) History() []float64 { return d.Costs }

// Clone copies d.
func (d *Delta) Clone() *Delta {
	out := *d
	out.Costs = slices.Clone(d.Costs)
	out.Pending = d.Pending.Clone()
	return &out
}

// jobConfig is what the workers read from the shared objects.
type jobConfig struct {
	K, Dim     int
	Iterations int
	Tolerance  float64
	Fault      rounds.Fault
}

// worker is the body of a ModeShared worker (Listing 4.5 of the thesis).
func worker(ctx context.Context, it *gale.Iteration, lines []string) (err error) {
	loop := rounds.NewLoop(it, Name)
	defer func() {
		if ferr := loop.Finish(context.WithoutCancel(ctx)); err == nil {
			err = ferr
		}
	}()
	var cfg jobConfig
	if err := loop.DSOCall(func() error { return rounds.ReadConfig(ctx, it.DSO, Name, &cfg) }); err != nil {
		return err
	}
	points := make([]float64, 0, len(lines)*cfg.Dim)
	for i, line := range lines {
		n := len(points)
		var perr error
		if points, perr = dataset.ParseLine(points, line); perr != nil || (len(points)-n != cfg.Dim && len(points) != n) {
			return fmt.Errorf("kmeans: worker %d: element %d of its partition (%.40q) no longer parses as %d coordinates (%v); did the input change after validation?",
				it.Worker, i, line, cfg.Dim, perr)
		}
	}
	centroids, delta := sharedObjects(it.DSO)
	round, err := loop.Resume(ctx)
	if err != nil {
		return err
	}
	sums := make([]float64, cfg.K*cfg.Dim)
	counts := make([]float64, cfg.K)
	for ; round < cfg.Iterations; round++ {
		if cfg.Tolerance > 0 && round >= 2 {
			var costs []float64
			if err := loop.DSOCall(func() (err error) {
				costs, err = state.Call[[]float64](ctx, delta, "History")
				return err
			}); err != nil {
				return err
			}
			if converged(costs[:round], cfg.Tolerance) {
				break
			}
		}
		var centers []float64
		if err := loop.DSOCall(func() (err error) {
			centers, err = state.Call[[]float64](ctx, centroids, "Get", round)
			return err
		}); err != nil {
			return err
		}
		var cost float64
		loop.Compute(func() {
			clear(sums)
			clear(counts)
			cost = accumulate(points, centers, cfg.K, cfg.Dim, sums, counts)
		})
		if err := cfg.Fault.Check(it, round, rounds.BeforeMerge); err != nil {
			return err
		}
		if err := loop.DSOCall(func() error {
			if _, err := state.Call[bool](ctx, centroids, "Merge", Partial{Round: round, Worker: it.Worker, Sums: sums, Counts: counts}); err != nil {
				return err
			}
			_, err := state.Call[bool](ctx, delta, "Update", round, it.Worker, cost)
			return err
		}); err != nil {
			return err
		}
		if err := cfg.Fault.Check(it, round, rounds.AfterMerge); err != nil {
			return err
		}
		if err := loop.Sync(ctx, round, func() error { return cfg.Fault.Check(it, round, rounds.AfterBarrier) }); err != nil {
			return err
		}
	}
	return nil
}

// BuildShared adds ModeShared's job to p: the input lines dealt to workers
// iterate workers.
func BuildShared(p *gale.Pipeline, inputs []string, workers int) {
	gale.Iterate(gale.ReadText(p, inputs...), workers, worker)
}

// sharedObjects returns the job's centroid and delta objects: replicated on
// a DSO cluster (rounds.Replicated), else ephemeral.
func sharedObjects(dso *state.Client) (centroids, delta state.Object) {
	centroids = dso.Object(TypeCentroids, Name+"/centroids")
	delta = dso.Object(TypeDelta, Name+"/delta")
	if rounds.Replicated(dso) {
		return centroids.Persistent(), delta.Persistent()
	}
	return centroids, delta
}

func runShared(ctx context.Context, cfg Config, in input, res *Result) error {
	var emb *rounds.Embedded
	if len(cfg.DSOServers) > 0 {
		dso, err := state.Dial(ctx, state.ClientConfig{Servers: cfg.DSOServers, Token: cfg.DSOToken})
		if err != nil {
			return fmt.Errorf("kmeans: DSO servers: %w", err)
		}
		emb = &rounds.Embedded{Servers: cfg.DSOServers, Token: cfg.DSOToken, DSO: dso}
	} else {
		reg := state.NewRegistry()
		RegisterTypes(reg)
		var err error
		if emb, err = rounds.StartEmbedded(ctx, reg); err != nil {
			return err
		}
	}
	defer emb.Close()
	jc := jobConfig{K: cfg.K, Dim: in.summary.Width, Iterations: cfg.Iterations, Tolerance: cfg.Tolerance, Fault: cfg.Fault}
	if err := rounds.PublishConfig(ctx, emb.DSO, Name, jc); err != nil {
		return err
	}
	centroids, delta := sharedObjects(emb.DSO)
	if err := centroids.Invoke(ctx, "Init", cfg.K, jc.Dim, cfg.Workers, in.initial); err != nil {
		return err
	}
	if err := delta.Invoke(ctx, "Init", cfg.Workers); err != nil {
		return err
	}
	p := gale.NewPipeline()
	BuildShared(p, dataset.Names(in.files), cfg.Workers)
	opts := append(slices.Clone(cfg.RunOptions), gale.Workers(cfg.Workers), gale.WithDSO(emb.Servers, emb.Token),
		gale.StoreOptions(cfg.StoreOptions))
	if _, err := gale.Run(ctx, p, opts...); err != nil {
		return fmt.Errorf("kmeans: %w", err)
	}
	n, err := rounds.Counter(emb.DSO, Name).Get(ctx)
	if err != nil {
		return err
	}
	res.Rounds = int(n)
	if res.Centers, err = state.Call[[]float64](ctx, centroids, "Get", res.Rounds); err != nil {
		return err
	}
	if res.Costs, err = state.Call[[]float64](ctx, delta, "History"); err != nil {
		return err
	}
	res.Timings, err = rounds.ReadStats(ctx, emb.DSO, Name)
	return err
}
