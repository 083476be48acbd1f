package pi

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"testing"
)

func TestRun(t *testing.T) {
	cfg := Config{Workers: 8, SamplesPerWorker: 50_000, Seed: 42}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(cfg.Workers) * cfg.SamplesPerWorker
	if res.Total != n {
		t.Fatalf("total = %d, want exactly %d", res.Total, n)
	}
	// Recompute the inside count sequentially, with code independent of
	// the package's Sample: the shared counter must hold exactly the sum.
	var in int64
	for w := 0; w < cfg.Workers; w++ {
		r := mrand.New(mrand.NewPCG(cfg.Seed, uint64(w)))
		for i := int64(0); i < cfg.SamplesPerWorker; i++ {
			x := r.Float64()
			y := r.Float64()
			if x*x+y*y <= 1 {
				in++
			}
		}
	}
	if res.Inside != in {
		t.Fatalf("inside = %d, sequential recount %d", res.Inside, in)
	}
	// The estimate is a binomial proportion: within 6 standard deviations
	// of π (a false failure has probability about 2e-9).
	sd := 4 * math.Sqrt((math.Pi/4)*(1-math.Pi/4)/float64(n))
	if d := math.Abs(res.Estimate - math.Pi); d > 6*sd {
		t.Fatalf("estimate %v is %v from π, more than 6σ = %v", res.Estimate, d, 6*sd)
	}
}
