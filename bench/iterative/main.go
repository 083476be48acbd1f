// Command iterative measures Gale's iterative jobs (k-means and logistic
// regression) in one run, on the process backend (worker processes of this
// binary) unless it cannot start, in which case it says so and uses the
// local backend:
//
//   - time per round of --mode shared (one stage of long-running workers,
//     model in shared objects merged on the DSO server, a barrier per
//     round) against --mode stages (one Gale job per round, re-reading the
//     input) at 8 workers, with the single-machine reference beside them;
//     every mode's answer is checked against the reference;
//   - scale-up of shared-mode k-means, the input growing with the workers
//     (n = 1, 2, 4, 8): T1/Tn, reported against what the machine's cores
//     allow;
//   - where the workers' round time goes: computing, shared-object calls,
//     barrier waits.
//
// Results go to bench/results/iterative.json and the figures to
// docs/img/iterative-*.png.
//
//	go run ./bench/iterative [-points-per-worker 25000] [-dim 20] [-k 25] [-iterations 10]
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
	"github.com/galeproject/gale/examples/logreg"
)

func main() {
	// A worker process of the process backend: register the jobs' kernels,
	// then serve (this call does not return in a worker).
	kmeans.Register(gale.NewPipeline())
	logreg.Register(gale.NewPipeline())
	gale.ServeWorkerIfRequested()

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/iterative:", err)
		os.Exit(1)
	}
}

// modeRun is one run of one job in one mode.
type modeRun struct {
	Job     string  `json:"job"`
	Mode    string  `json:"mode"`
	Workers int     `json:"workers"`
	Points  int64   `json:"points"`
	Rounds  int     `json:"rounds"`
	RoundMS float64 `json:"round_ms"` // mean time per round (shared: worker loop, loading excluded)
	JobMS   float64 `json:"job_ms"`   // the whole job(s), loading included
	// Shares of the workers' round time (shared mode).
	ComputeShare float64 `json:"compute_share,omitempty"`
	DSOShare     float64 `json:"dso_share,omitempty"`
	BarrierShare float64 `json:"barrier_share,omitempty"`
	LoadMS       float64 `json:"load_ms,omitempty"` // longest worker load (shared mode)
	// MaxRelDiff is the largest relative difference of the answer from the
	// local reference's.
	MaxRelDiff float64 `json:"max_rel_diff"`
}

type results struct {
	Backend      string    `json:"backend"`
	BackendNote  string    `json:"backend_note,omitempty"`
	CPUs         int       `json:"cpus"`
	KMeans       []modeRun `json:"kmeans"`
	LogReg       []modeRun `json:"logreg"`
	KMeansGap    float64   `json:"kmeans_stages_over_shared"`
	LogRegGap    float64   `json:"logreg_stages_over_shared"`
	ScaleUp      []modeRun `json:"scaleup"`
	ScaleUpRatio []float64 `json:"scaleup_t1_over_tn"`
	Config       any       `json:"config"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func shares(ts []rounds.Timing) (comp, dso, bar, load float64) {
	var loop, c, d, b time.Duration
	for _, t := range ts {
		loop += t.Loop
		c += t.Compute
		d += t.DSO
		b += t.Barrier
		load = max(load, ms(t.Load))
	}
	if loop == 0 {
		return 0, 0, 0, load
	}
	return c.Seconds() / loop.Seconds(), d.Seconds() / loop.Seconds(), b.Seconds() / loop.Seconds(), load
}

func maxRelDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i])/math.Max(1, math.Abs(b[i])))
	}
	return m
}

// generate writes a dataset once into dir (a hidden marker written last
// makes later runs reuse it).
func generate(ctx context.Context, dir string, gen func(st any) error) error {
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Printf("generating %s\n", dir)
	if err := gen(nil); err != nil {
		return err
	}
	return os.WriteFile(marker, nil, 0o644)
}

func run() error {
	perWorker := flag.Int64("points-per-worker", 25_000, "k-means points per worker")
	dim := flag.Int("dim", 20, "k-means coordinates per point")
	k := flag.Int("k", 25, "k-means clusters")
	iters := flag.Int("iterations", 10, "rounds per run")
	lrPerWorker := flag.Int64("labeled-per-worker", 5_000, "logistic regression points per worker")
	features := flag.Int("features", 100, "logistic regression features")
	workers := flag.Int("workers", 8, "workers of the shared vs stages comparison")
	repeat := flag.Int("repeat", 3, "scale-up runs per worker count (the median is kept)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench-iterative"), "where the datasets are generated (cached)")
	out := flag.String("out", "bench/results/iterative.json", "results file")
	img := flag.String("img", "docs/img", "figures directory")
	flag.Parse()
	ctx := context.Background()
	res := results{CPUs: runtime.NumCPU(), Config: map[string]any{"points_per_worker": *perWorker, "dim": *dim, "k": *k,
		"iterations": *iters, "labeled_per_worker": *lrPerWorker, "features": *features, "workers": *workers}}

	// The backend: worker processes of this binary, warm across runs.
	var backend backends.Backend
	pcfg := process.DefaultConfig()
	pcfg.Args = nil
	pcfg.Concurrency = *workers
	if b, err := process.New(pcfg); err == nil {
		defer b.Close()
		backend, res.Backend = b, "process"
	} else {
		res.Backend, res.BackendNote = "local", fmt.Sprintf("the process backend could not start (%v); using the local backend", err)
		fmt.Println("NOTE:", res.BackendNote)
	}
	runOpts := func() []gale.RunOption {
		if backend == nil {
			return nil
		}
		return []gale.RunOption{gale.WithBackend(res.Backend, backend)}
	}

	// Datasets: parts of perWorker points; n workers read the first n.
	maxW := *workers
	pointsDir := filepath.Join(*dir, fmt.Sprintf("points-%d-%d-%d-%d", *perWorker, maxW, *dim, *k))
	pcfgData := dataset.PointsConfig{Count: *perWorker * int64(maxW), Dim: *dim, K: *k, Parts: maxW}
	if err := generate(ctx, pointsDir, func(any) error {
		st, err := gale.OpenStore(ctx, pointsDir, nil)
		if err != nil {
			return err
		}
		return dataset.WritePoints(ctx, st, pcfgData)
	}); err != nil {
		return err
	}
	labeledDir := filepath.Join(*dir, fmt.Sprintf("labeled-%d-%d-%d", *lrPerWorker, maxW, *features))
	lcfg := dataset.LabeledConfig{Count: *lrPerWorker * int64(maxW), Features: *features, Parts: maxW}
	if err := generate(ctx, labeledDir, func(any) error {
		st, err := gale.OpenStore(ctx, labeledDir, nil)
		if err != nil {
			return err
		}
		return dataset.WriteLabeled(ctx, st, lcfg)
	}); err != nil {
		return err
	}
	firstParts := func(dir string, n int) []string {
		var ps []string
		for i := range n {
			ps = append(ps, filepath.Join(dir, dataset.PartName(i)))
		}
		return ps
	}

	// 1. Shared vs stages at the full worker count, local as the reference.
	fmt.Printf("k-means: %d points × %d coordinates, K = %d, %d rounds, %d workers, %s backend\n",
		pcfgData.Count, *dim, *k, *iters, maxW, res.Backend)
	var kmRef kmeans.Result
	for _, mode := range []string{kmeans.ModeLocal, kmeans.ModeShared, kmeans.ModeStages} {
		r, err := kmeans.Run(ctx, kmeans.Config{Inputs: firstParts(pointsDir, maxW), K: *k, Iterations: *iters,
			Workers: maxW, Mode: mode, RunOptions: runOpts()})
		if err != nil {
			return fmt.Errorf("k-means %s: %w", mode, err)
		}
		if mode == kmeans.ModeLocal {
			kmRef = r
		}
		mr := modeRun{Job: "kmeans", Mode: mode, Workers: maxW, Points: r.Points, Rounds: r.Rounds, RoundMS: ms(r.PerRound()),
			JobMS: ms(r.Job), MaxRelDiff: max(maxRelDiff(r.Centers, kmRef.Centers), maxRelDiff(r.Costs, kmRef.Costs))}
		mr.ComputeShare, mr.DSOShare, mr.BarrierShare, mr.LoadMS = shares(r.Timings)
		res.KMeans = append(res.KMeans, mr)
		fmt.Printf("  %-7s %9.2f ms/round  job %8.0f ms  answer within %.1e of local\n", mode, mr.RoundMS, mr.JobMS, mr.MaxRelDiff)
	}
	res.KMeansGap = res.KMeans[2].RoundMS / res.KMeans[1].RoundMS
	fmt.Printf("  stages / shared per round: %.1fx (target >= 3x)\n", res.KMeansGap)

	fmt.Printf("logistic regression: %d points × %d features, %d rounds, %d workers\n", lcfg.Count, *features, *iters, maxW)
	var lrRef logreg.Result
	for _, mode := range []string{logreg.ModeLocal, logreg.ModeShared, logreg.ModeStages} {
		r, err := logreg.Run(ctx, logreg.Config{Inputs: firstParts(labeledDir, maxW), Iterations: *iters, Step: 1,
			Workers: maxW, Mode: mode, RunOptions: runOpts()})
		if err != nil {
			return fmt.Errorf("logreg %s: %w", mode, err)
		}
		if mode == logreg.ModeLocal {
			lrRef = r
		}
		mr := modeRun{Job: "logreg", Mode: mode, Workers: maxW, Points: r.Points, Rounds: r.Rounds, RoundMS: ms(r.PerRound()),
			JobMS: ms(r.Job), MaxRelDiff: max(maxRelDiff(r.Weights, lrRef.Weights), maxRelDiff(r.Losses, lrRef.Losses))}
		mr.ComputeShare, mr.DSOShare, mr.BarrierShare, mr.LoadMS = shares(r.Timings)
		res.LogReg = append(res.LogReg, mr)
		fmt.Printf("  %-7s %9.2f ms/round  job %8.0f ms  answer within %.1e of local\n", mode, mr.RoundMS, mr.JobMS, mr.MaxRelDiff)
	}
	res.LogRegGap = res.LogReg[2].RoundMS / res.LogReg[1].RoundMS
	fmt.Printf("  stages / shared per round: %.1fx\n", res.LogRegGap)

	// 2. Scale-up: n workers on n parts.
	fmt.Printf("k-means scale-up, shared mode, %d points per worker (%d CPUs), median of %d runs\n", *perWorker, res.CPUs, *repeat)
	for n := 1; n <= maxW; n *= 2 {
		var tries []modeRun
		for range max(*repeat, 1) {
			r, err := kmeans.Run(ctx, kmeans.Config{Inputs: firstParts(pointsDir, n), K: *k, Iterations: *iters,
				Workers: n, Mode: kmeans.ModeShared, RunOptions: runOpts()})
			if err != nil {
				return fmt.Errorf("scale-up n=%d: %w", n, err)
			}
			mr := modeRun{Job: "kmeans", Mode: kmeans.ModeShared, Workers: n, Points: r.Points, Rounds: r.Rounds,
				RoundMS: ms(r.PerRound()), JobMS: ms(r.Job)}
			mr.ComputeShare, mr.DSOShare, mr.BarrierShare, mr.LoadMS = shares(r.Timings)
			tries = append(tries, mr)
		}
		slices.SortFunc(tries, func(a, b modeRun) int { return cmp.Compare(a.RoundMS, b.RoundMS) })
		mr := tries[len(tries)/2]
		res.ScaleUp = append(res.ScaleUp, mr)
		ratio := res.ScaleUp[0].RoundMS / mr.RoundMS
		res.ScaleUpRatio = append(res.ScaleUpRatio, ratio)
		fmt.Printf("  n=%d  %9.2f ms/round  T1/Tn %.2f (cores allow %.2f)  compute %.0f%%  shared objects %.0f%%  barrier %.0f%%\n",
			n, mr.RoundMS, ratio, coreBound(n, res.CPUs), 100*mr.ComputeShare, 100*mr.DSOShare, 100*mr.BarrierShare)
	}

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", *out)
	return plots(res, *img)
}

// coreBound is the best T1/Tn the machine allows when each of n workers
// needs a core and there are cpus: 1 up to cpus workers, cpus/n beyond.
func coreBound(n, cpus int) float64 { return math.Min(1, float64(cpus)/float64(n)) }
