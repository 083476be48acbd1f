package kmeans_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
)

// TestMain makes the test binary a worker when the process backend starts
// it: build the pipelines (registering their kernels), then serve.
func TestMain(m *testing.M) {
	kmeans.Register(gale.NewPipeline())
	gale.ServeWorkerIfRequested()
	os.Exit(m.Run())
}

// genPoints writes a clustered dataset into a new directory.
func genPoints(t *testing.T, cfg dataset.PointsConfig) string {
	t.Helper()
	dir := t.TempDir()
	st, err := gale.OpenStore(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.WritePoints(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lloyd is an independent sequential k-means over points read with the
// standard library: the answer every mode must reproduce.
func lloyd(t *testing.T, dir string, k int, seed uint64, iterations int) (centers []float64, costs []float64) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	var pts [][]float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var p []float64
			for _, s := range strings.Split(line, ",") {
				var v float64
				if _, err := fmt.Sscan(s, &v); err != nil {
					t.Fatal(err)
				}
				p = append(p, v)
			}
			pts = append(pts, p)
		}
	}
	dim := len(pts[0])
	c := make([][]float64, k)
	for i, idx := range dataset.Pick(seed, int64(len(pts)), k) {
		c[i] = append([]float64(nil), pts[idx]...)
	}
	for range iterations {
		sums := make([][]float64, k)
		for i := range sums {
			sums[i] = make([]float64, dim)
		}
		counts := make([]int, k)
		var cost float64
		for _, p := range pts {
			best, bd := 0, math.Inf(1)
			for j := range c {
				var d float64
				for x := range p {
					d += (p[x] - c[j][x]) * (p[x] - c[j][x])
				}
				if d < bd {
					best, bd = j, d
				}
			}
			cost += bd
			counts[best]++
			for x := range p {
				sums[best][x] += p[x]
			}
		}
		costs = append(costs, cost)
		for j := range c {
			if counts[j] > 0 {
				for x := range c[j] {
					c[j][x] = sums[j][x] / float64(counts[j])
				}
			}
		}
	}
	for _, v := range c {
		centers = append(centers, v...)
	}
	return centers, costs
}

// tolerance is the relative difference allowed between modes: they add
// the same numbers in different orders (per worker, per map task, per
// goroutine), which changes the last bits of the sums.
const tolerance = 1e-9

func close(a, b float64) bool {
	return math.Abs(a-b) <= tolerance*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func checkSame(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !close(got[i], want[i]) {
			t.Fatalf("%s[%d] = %.17g, want %.17g (tolerance %g relative)", what, i, got[i], want[i], tolerance)
		}
	}
}

func TestModesAgreeWithAnIndependentLloyd(t *testing.T) {
	dir := genPoints(t, dataset.PointsConfig{Count: 3000, Dim: 5, K: 4, Parts: 3, Seed: 7})
	const k, iters = 4, 6
	wantC, wantCost := lloyd(t, dir, k, 3, iters)
	for _, mode := range []string{kmeans.ModeLocal, kmeans.ModeShared, kmeans.ModeStages} {
		t.Run(mode, func(t *testing.T) {
			res, err := kmeans.Run(context.Background(), kmeans.Config{Inputs: []string{dir}, K: k, Iterations: iters,
				Seed: 3, Workers: 3, Mode: mode, RunOptions: []gale.RunOption{gale.ChunkSize(16 << 10)}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rounds != iters || res.Points != 3000 || res.Dim != 5 {
				t.Fatalf("rounds %d, points %d, dim %d", res.Rounds, res.Points, res.Dim)
			}
			checkSame(t, "centers", res.Centers, wantC)
			checkSame(t, "costs", res.Costs, wantCost)
			for i := 1; i < len(res.Costs); i++ {
				if res.Costs[i] > res.Costs[i-1]*(1+tolerance) {
					t.Errorf("cost rose from %g to %g at round %d", res.Costs[i-1], res.Costs[i], i)
				}
			}
			if mode == kmeans.ModeShared {
				if len(res.Timings) != 3 {
					t.Fatalf("%d timing records, want 3: %+v", len(res.Timings), res.Timings)
				}
				for _, tm := range res.Timings {
					if tm.Rounds != iters || tm.Loop <= 0 || tm.Compute+tm.DSO+tm.Barrier > tm.Loop {
						t.Errorf("timing %+v", tm)
					}
				}
			}
		})
	}
}

func TestAWorkerRestartedMidRunGivesTheSameAnswer(t *testing.T) {
	dir := genPoints(t, dataset.PointsConfig{Count: 2000, Dim: 3, K: 5, Parts: 2})
	base := kmeans.Config{Inputs: []string{dir}, K: 5, Iterations: 6, Workers: 3}
	want, err := kmeans.Run(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{rounds.BeforeMerge, rounds.AfterMerge, rounds.AfterBarrier} {
		t.Run(at, func(t *testing.T) {
			cfg := base
			cfg.Fault = rounds.Fault{Worker: 1, Round: 3, At: at}
			got, err := kmeans.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Contributions are summed in worker order on the server, so a
			// restart changes nothing, not even the last bit.
			for i := range want.Centers {
				if got.Centers[i] != want.Centers[i] {
					t.Fatalf("centers[%d] = %.17g after a restart, want %.17g", i, got.Centers[i], want.Centers[i])
				}
			}
			var restarted bool
			for _, tm := range got.Timings {
				if tm.Worker == 1 && tm.Attempt == 2 {
					restarted = true
					if tm.FirstRound < 3 || tm.FirstRound > 4 {
						t.Errorf("worker 1 resumed at round %d, want 3 or 4", tm.FirstRound)
					}
				}
			}
			if !restarted {
				t.Fatalf("worker 1 was not restarted: %+v", got.Timings)
			}
		})
	}
}

// A worker that is not restarted fails the job, and the others, waiting
// at the barrier, are released (the run returns) rather than left hanging.
func TestAWorkerOutOfAttemptsFailsTheJob(t *testing.T) {
	dir := genPoints(t, dataset.PointsConfig{Count: 600, Dim: 2, K: 3})
	_, err := kmeans.Run(context.Background(), kmeans.Config{Inputs: []string{dir}, K: 3, Iterations: 5, Workers: 3,
		Fault: rounds.Fault{Worker: 0, Round: 2, At: rounds.AfterMerge}, RunOptions: []gale.RunOption{gale.MaxAttempts(1)}})
	if !errors.Is(err, rounds.ErrInjected) && (err == nil || !strings.Contains(err.Error(), "injected worker failure")) {
		t.Fatalf("got %v, want the injected failure", err)
	}
}
