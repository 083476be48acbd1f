package kmeans

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/galeproject/gale/examples/kmeans/dataset"
)

// runLocal is the single-machine reference: every point in memory, Workers
// goroutines over contiguous slices of them, partial sums added in slice
// order.
func runLocal(ctx context.Context, cfg Config, in input, res *Result) error {
	k, dim := cfg.K, in.summary.Width
	points, _, err := dataset.Load(ctx, in.files, cfg.StoreOptions, dim)
	if err != nil {
		return fmt.Errorf("kmeans: %w", err)
	}
	n := len(points) / dim
	w := min(cfg.Workers, n)
	type partial struct {
		sums, counts []float64
		cost         float64
	}
	parts := make([]partial, w)
	for i := range parts {
		parts[i] = partial{sums: make([]float64, k*dim), counts: make([]float64, k)}
	}
	centers := slices.Clone(in.initial)
	for round := 0; round < cfg.Iterations && !converged(res.Costs, cfg.Tolerance); round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := &parts[i]
				clear(p.sums)
				clear(p.counts)
				lo, hi := n*i/w, n*(i+1)/w
				p.cost = accumulate(points[lo*dim:hi*dim], centers, k, dim, p.sums, p.counts)
			}()
		}
		wg.Wait()
		sums, counts := make([]float64, k*dim), make([]float64, k)
		var cost float64
		for _, p := range parts {
			for j, v := range p.sums {
				sums[j] += v
			}
			for j, v := range p.counts {
				counts[j] += v
			}
			cost += p.cost
		}
		centers = update(centers, sums, counts, k, dim)
		res.Costs = append(res.Costs, cost)
		res.RoundTimes = append(res.RoundTimes, time.Since(start))
		res.Rounds++
	}
	res.Centers = centers
	return nil
}
