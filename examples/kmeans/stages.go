package kmeans

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
)

// Round is a ModeStages round's parameter: the centroids, shipped to the
// map tasks in the task descriptor.
type Round struct {
	K, Dim  int
	Centers []float64
}

// badKey is the key under which assignLine reports lines that do not
// parse (the input was validated before the first round, so this means it
// changed since).
const badKey = -1

// assignLine parses a point and emits (its nearest centroid, its
// coordinates followed by 1 and its squared distance to the centroid).
func assignLine(r Round, line string, emit func(gale.KV[int32, []float64])) {
	x, err := dataset.ParseLine(make([]float64, 0, r.Dim+2), line)
	switch {
	case err != nil || (len(x) != r.Dim && len(x) != 0):
		emit(gale.KV[int32, []float64]{Key: badKey, Value: []float64{1}})
		return
	case len(x) == 0:
		return
	}
	c, d := nearest(r.Centers, r.K, r.Dim, x)
	emit(gale.KV[int32, []float64]{Key: int32(c), Value: append(x, 1, d)})
}

// BuildStages adds one ModeStages round to p and returns its output: per
// centroid, the sums of its points' coordinates, their count and cost.
func BuildStages(p *gale.Pipeline, inputs []string, r Round) *gale.Collected[gale.KV[int32, []float64]] {
	assigned := gale.FlatMapWith(gale.ReadText(p, inputs...), assignLine, r)
	return gale.Collect(gale.CombinePerKey(assigned, dataset.VecSum{}))
}

func runStages(ctx context.Context, cfg Config, in input, res *Result) error {
	k, dim := cfg.K, in.summary.Width
	centers := slices.Clone(in.initial)
	names := dataset.Names(in.files)
	opts := append(slices.Clone(cfg.RunOptions), gale.Workers(cfg.Workers), gale.StoreOptions(cfg.StoreOptions))
	for round := 0; round < cfg.Iterations && !converged(res.Costs, cfg.Tolerance); round++ {
		start := time.Now()
		p := gale.NewPipeline()
		out := BuildStages(p, names, Round{K: k, Dim: dim, Centers: centers})
		if _, err := gale.Run(ctx, p, opts...); err != nil {
			return fmt.Errorf("kmeans: round %d: %w", round, err)
		}
		sums, counts := make([]float64, k*dim), make([]float64, k)
		var cost float64
		for _, kv := range out.Values() {
			if kv.Key == badKey {
				return fmt.Errorf("kmeans: round %d: %d lines no longer parse as %d coordinates; did the input change after validation?", round, int64(kv.Value[0]), dim)
			}
			c := int(kv.Key)
			if c < 0 || c >= k || len(kv.Value) != dim+2 {
				return fmt.Errorf("kmeans: round %d: malformed sums for centroid %d", round, c)
			}
			copy(sums[c*dim:], kv.Value[:dim])
			counts[c] = kv.Value[dim]
			cost += kv.Value[dim+1]
		}
		centers = update(centers, sums, counts, k, dim)
		res.Costs = append(res.Costs, cost)
		res.RoundTimes = append(res.RoundTimes, time.Since(start))
		res.Rounds++
	}
	res.Centers = centers
	return nil
}
