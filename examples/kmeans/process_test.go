package kmeans_test

import (
	"context"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/kmeans/dataset"
)

// The test binary is its own worker (TestMain): worker processes build
// the pipelines, connect to the driver's embedded DSO server and merge
// into the same shared objects.
func TestSharedAndStagesOnTheProcessBackendMatchLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	dir := genPoints(t, dataset.PointsConfig{Count: 4000, Dim: 4, K: 6, Parts: 4, Seed: 11})
	base := kmeans.Config{Inputs: []string{dir}, K: 6, Iterations: 5, Workers: 3}
	ref := base
	ref.Mode = kmeans.ModeLocal
	want, err := kmeans.Run(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg := process.DefaultConfig()
	cfg.Args = nil
	cfg.Concurrency = 3
	b, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, mode := range []string{kmeans.ModeShared, kmeans.ModeStages} {
		c := base
		c.Mode = mode
		c.RunOptions = []gale.RunOption{gale.WithBackend("process", b), gale.ChunkSize(32 << 10)}
		got, err := kmeans.Run(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		checkSame(t, mode+" centers", got.Centers, want.Centers)
		checkSame(t, mode+" costs", got.Costs, want.Costs)
	}
}

func TestToleranceStopsEveryModeAtTheSameRound(t *testing.T) {
	dir := genPoints(t, dataset.PointsConfig{Count: 2000, Dim: 2, K: 3, Scale: 20})
	var rounds []int
	for _, mode := range []string{kmeans.ModeLocal, kmeans.ModeShared, kmeans.ModeStages} {
		res, err := kmeans.Run(context.Background(), kmeans.Config{Inputs: []string{dir}, K: 3, Iterations: 50,
			Tolerance: 1e-6, Workers: 2, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		rounds = append(rounds, res.Rounds)
	}
	if rounds[0] >= 50 || rounds[0] < 2 || rounds[1] != rounds[0] || rounds[2] != rounds[0] {
		t.Fatalf("rounds by mode (local, shared, stages): %v; want the same, fewer than 50", rounds)
	}
}
