package kmeans

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
)

// Modes of Run.
const (
	ModeShared = "shared"
	ModeStages = "stages"
	ModeLocal  = "local"
)

// Name is the job's name on the shared-object servers (the prefix of its
// objects' keys).
const Name = "kmeans"

// Config configures a run.
type Config struct {
	// Inputs are the data files, directories, globs or object-store URLs.
	// Required.
	Inputs []string
	// StoreOptions are the object-store client options (gale.StoreOptions).
	StoreOptions map[string]string
	// K is the number of clusters. Required.
	K int
	// Dim, if set, is the number of coordinates every point must have;
	// otherwise the first line decides.
	Dim int
	// Iterations is the largest number of rounds. Default 10.
	Iterations int
	// Tolerance stops the run early once a round lowers the cost by at most
	// this fraction of the previous round's cost. Default 0: run all
	// Iterations rounds.
	Tolerance float64
	// Seed selects the initial centroids. Default 1.
	Seed uint64
	// Workers is the number of workers (ModeShared: iterate workers;
	// ModeStages: the jobs' concurrency; ModeLocal: goroutines). Default 4.
	Workers int
	// Mode is ModeShared (default), ModeStages or ModeLocal.
	Mode string
	// RunOptions are passed to every gale.Run (the backend, for one).
	// Workers and WithDSO are set by Run.
	RunOptions []gale.RunOption
	// Fault injects one worker failure (ModeShared; for tests).
	Fault rounds.Fault
	// DSOServers, if set, are the shared-object servers of ModeShared
	// (hosting this package's types; `gale dso serve` does), with their
	// token DSOToken; default: a server embedded in this process. On a
	// replicated cluster the model and the job's state are replicated
	// objects, so the run survives a member's crash.
	DSOServers []string
	DSOToken   string
}

func (c *Config) fill() {
	if c.Iterations == 0 {
		c.Iterations = 10
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Mode == "" {
		c.Mode = ModeShared
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	c.fill()
	var errs []error
	if len(c.Inputs) == 0 {
		errs = append(errs, errors.New("kmeans: no input (Inputs)"))
	}
	if c.K < 1 {
		errs = append(errs, fmt.Errorf("kmeans: K must be at least 1, got %d", c.K))
	}
	if c.Dim < 0 {
		errs = append(errs, fmt.Errorf("kmeans: Dim must not be negative, got %d", c.Dim))
	}
	if c.Iterations < 1 {
		errs = append(errs, fmt.Errorf("kmeans: Iterations must be at least 1, got %d", c.Iterations))
	}
	if c.Tolerance < 0 || math.IsNaN(c.Tolerance) {
		errs = append(errs, fmt.Errorf("kmeans: Tolerance must be >= 0, got %v", c.Tolerance))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("kmeans: Workers must be at least 1, got %d", c.Workers))
	}
	switch c.Mode {
	case ModeShared, ModeStages, ModeLocal:
	default:
		errs = append(errs, fmt.Errorf("kmeans: unknown mode %q (known: %s, %s, %s)", c.Mode, ModeShared, ModeStages, ModeLocal))
	}
	if err := c.Fault.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Result is a run's outcome.
type Result struct {
	Mode string
	// K and Dim are the number of clusters and of coordinates; Points the
	// number of points.
	K, Dim int
	Points int64
	// Rounds is the number of rounds run.
	Rounds int
	// Initial holds the initial centroids and Centers the final ones, K·Dim
	// coordinates each, centroid after centroid.
	Initial, Centers []float64
	// Costs[r] is the sum of squared distances from every point to its
	// nearest centroid of round r.
	Costs []float64
	// Validate is the time spent validating the input and choosing the
	// initial centroids, before any round.
	Validate time.Duration
	// Job is the wall time from the start of the rounds' job(s) to the end
	// (ModeShared: the whole Iterate job, loading included; ModeStages: all
	// the per-round jobs; ModeLocal: loading and rounds).
	Job time.Duration
	// RoundTimes holds each round's wall time where it is measured per
	// round (ModeStages: the round's job; ModeLocal: the round).
	RoundTimes []time.Duration
	// Timings are the shared-mode workers' attempt records (package
	// rounds): load, loop, compute, shared-object and barrier time.
	Timings []rounds.Timing
}

// PerRound returns the mean wall time of a round: in ModeShared the
// longest worker loop over the rounds it ran (loading excluded), else the
// mean of RoundTimes.
func (r Result) PerRound() time.Duration {
	if r.Rounds == 0 {
		return 0
	}
	if r.Mode == ModeShared {
		var loop time.Duration
		for _, t := range r.Timings {
			if t.Rounds > 0 {
				loop = max(loop, t.Loop*time.Duration(r.Rounds)/time.Duration(t.Rounds))
			}
		}
		return loop / time.Duration(r.Rounds)
	}
	var sum time.Duration
	for _, d := range r.RoundTimes {
		sum += d
	}
	return sum / time.Duration(len(r.RoundTimes))
}

// input is a validated input.
type input struct {
	files   []dataset.File
	summary dataset.Summary
	initial []float64
}

// prepare validates the input and picks the initial centroids.
func prepare(ctx context.Context, cfg Config) (input, error) {
	files, err := dataset.Expand(ctx, cfg.Inputs, cfg.StoreOptions)
	if err != nil {
		return input{}, fmt.Errorf("kmeans: %w", err)
	}
	sum, err := dataset.Scan(ctx, files, cfg.StoreOptions, cfg.Dim, nil)
	if err != nil {
		return input{}, fmt.Errorf("kmeans: %w", err)
	}
	if sum.Points == 0 {
		return input{}, fmt.Errorf("kmeans: %w: the input (%s) holds no points", dataset.ErrBadInput, describe(files))
	}
	if int64(cfg.K) > sum.Points {
		return input{}, fmt.Errorf("kmeans: %w: K = %d is larger than the number of points (%d) in %s; lower --k or add data",
			dataset.ErrBadInput, cfg.K, sum.Points, describe(files))
	}
	init, err := dataset.Gather(ctx, files, cfg.StoreOptions, sum.Width, dataset.Pick(cfg.Seed, sum.Points, cfg.K))
	if err != nil {
		return input{}, fmt.Errorf("kmeans: %w", err)
	}
	return input{files: files, summary: sum, initial: init}, nil
}

func describe(files []dataset.File) string {
	if len(files) == 1 {
		return files[0].Name
	}
	return fmt.Sprintf("%d files from %s to %s", len(files), files[0].Name, files[len(files)-1].Name)
}

// Run validates the input, then clusters it in cfg.Mode.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.fill()
	start := time.Now()
	in, err := prepare(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	res := Result{Mode: cfg.Mode, K: cfg.K, Dim: in.summary.Width, Points: in.summary.Points,
		Initial: append([]float64(nil), in.initial...), Validate: time.Since(start)}
	start = time.Now()
	switch cfg.Mode {
	case ModeShared:
		err = runShared(ctx, cfg, in, &res)
	case ModeStages:
		err = runStages(ctx, cfg, in, &res)
	case ModeLocal:
		err = runLocal(ctx, cfg, in, &res)
	}
	res.Job = time.Since(start)
	return res, err
}

// converged reports whether the last round lowered the cost by at most
// tol of the round before (never with fewer than two rounds or tol 0).
func converged(costs []float64, tol float64) bool {
	n := len(costs)
	return tol > 0 && n >= 2 && costs[n-2]-costs[n-1] <= tol*costs[n-2]
}

// nearest returns the index of the centroid nearest to x (the lowest on
// ties) and the squared distance to it.
func nearest(centers []float64, k, dim int, x []float64) (int, float64) {
	best, bestD := 0, math.Inf(1)
	for c := range k {
		if d := dataset.SqDist(x, centers[c*dim:(c+1)*dim]); d < bestD {
			best, bestD = c, d
		}
	}
	return best, bestD
}

// accumulate assigns the points (dim coordinates each, one after the
// other) to centers and adds them into sums (K·Dim) and counts (K); it
// returns the cost of the assignment.
func accumulate(points, centers []float64, k, dim int, sums, counts []float64) float64 {
	var cost float64
	for i := 0; i+dim <= len(points); i += dim {
		x := points[i : i+dim]
		c, d := nearest(centers, k, dim, x)
		cost += d
		s := sums[c*dim : (c+1)*dim]
		for j, v := range x {
			s[j] += v
		}
		counts[c]++
	}
	return cost
}

// update returns the new centroids: the mean of each centroid's points,
// or the old centroid if it has none.
func update(old, sums, counts []float64, k, dim int) []float64 {
	out := make([]float64, k*dim)
	for c := range k {
		if counts[c] == 0 {
			copy(out[c*dim:(c+1)*dim], old[c*dim:(c+1)*dim])
			continue
		}
		for j := range dim {
			out[c*dim+j] = sums[c*dim+j] / counts[c]
		}
	}
	return out
}
