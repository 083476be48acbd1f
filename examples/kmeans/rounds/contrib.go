package rounds

import (
	"errors"
	"fmt"
	"slices"

	"github.com/galeproject/gale"
)

// Contributions collects one vector per worker for one round, exactly
// once: a second vector from the same worker (a restarted worker redoing
// the round) is ignored, which is sound because a worker's contribution is
// a deterministic function of its partition and the round's shared state.
// Shared objects embed it and sum it when the round is complete.
type Contributions struct {
	// Parts holds each worker's vector, nil until it arrives.
	Parts [][]float64
	// Missing counts the workers not yet heard from.
	Missing int
}

// Reset prepares c for a round of workers contributions.
func (c *Contributions) Reset(workers int) {
	c.Parts = make([][]float64, workers)
	c.Missing = workers
}

// Add records worker's vector. It returns false if the worker had already
// contributed to this round, and an error if worker is out of range or v's
// length differs from the other contributions'.
func (c *Contributions) Add(worker int, v []float64) (bool, error) {
	if worker < 0 || worker >= len(c.Parts) {
		return false, fmt.Errorf("rounds: worker %d of a round of %d workers", worker, len(c.Parts))
	}
	if c.Parts[worker] != nil {
		return false, nil
	}
	for _, p := range c.Parts {
		if p != nil && len(p) != len(v) {
			return false, fmt.Errorf("rounds: worker %d sent %d values, others %d", worker, len(v), len(p))
		}
	}
	if v == nil {
		v = []float64{}
	}
	c.Parts[worker] = slices.Clone(v)
	c.Missing--
	return true, nil
}

// Complete reports whether every worker has contributed.
func (c *Contributions) Complete() bool { return len(c.Parts) > 0 && c.Missing == 0 }

// Sum returns the element-wise sum of the contributions, added in worker
// order so that the result does not depend on the order they arrived in.
func (c *Contributions) Sum() []float64 {
	var out []float64
	for _, p := range c.Parts {
		if p == nil {
			continue
		}
		if out == nil {
			out = make([]float64, len(p))
		}
		for i, v := range p {
			out[i] += v
		}
	}
	return out
}

// Clone returns a deep copy of c.
func (c Contributions) Clone() Contributions {
	out := Contributions{Missing: c.Missing, Parts: make([][]float64, len(c.Parts))}
	for i, p := range c.Parts {
		out.Parts[i] = slices.Clone(p)
	}
	return out
}

// ErrInjected is the error a Fault makes a worker return.
var ErrInjected = errors.New("rounds: injected worker failure")

// Fault points within a round.
const (
	BeforeMerge  = "before-merge"  // after computing, before any shared call of the round
	AfterMerge   = "after-merge"   // after merging, before the barrier
	AfterBarrier = "after-barrier" // after the barrier, before advancing the counter
)

// Fault makes one worker's first attempt fail once, at round Round, at
// point At (BeforeMerge, AfterMerge or AfterBarrier). The zero Fault (At
// empty) injects nothing. It exists to test restarts; it travels to the
// workers in the job's configuration.
type Fault struct {
	Worker int    `json:"worker"`
	Round  int    `json:"round"`
	At     string `json:"at,omitempty"`
}

// Validate reports a Fault that names an unknown point.
func (f Fault) Validate() error {
	switch f.At {
	case "", BeforeMerge, AfterMerge, AfterBarrier:
		return nil
	}
	return fmt.Errorf("rounds: unknown fault point %q (known: %s, %s, %s)", f.At, BeforeMerge, AfterMerge, AfterBarrier)
}

// Check returns ErrInjected if the fault applies to this worker's attempt
// at round r and point at.
func (f Fault) Check(it *gale.Iteration, r int, at string) error {
	if f.At != "" && f.At == at && f.Worker == it.Worker && f.Round == r && it.Attempt == 1 {
		return fmt.Errorf("%w: worker %d, attempt %d, round %d, %s", ErrInjected, it.Worker, it.Attempt, r, at)
	}
	return nil
}
