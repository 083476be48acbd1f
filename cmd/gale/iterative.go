package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
	"github.com/galeproject/gale/examples/logreg"
	"github.com/galeproject/gale/internal/cache"
)

// Iterative jobs: `gale run kmeans`, `gale run logreg`, and their data
// generators `gale gen points`, `gale gen labeled`.

// defaultIterWorkers is the workers of an iterative job without --workers.
const defaultIterWorkers = 4

func newRunKMeansCmd() *cobra.Command {
	var jf jobFlags
	var cfg kmeans.Config
	var points int64
	cmd := &cobra.Command{
		Use:   "kmeans [--k K] [--dim D --points N | --input PATHS] [--workers W] [--iterations I] [--mode shared|stages|local]",
		Short: "Cluster points with k-means on shared objects (or one job per round, or on this machine)",
		Long: `Cluster points with Lloyd's k-means. Without --input, a reproducible dataset of
--points points with --dim coordinates around --k centers is generated (and
cached) in Gale's cache directory.

Modes: shared (default) runs one stage of long-running workers that keep the
centroids in a shared object merged on the DSO server and meet at a barrier
every round; stages runs each round as a separate job that re-reads the
input; local runs on this machine only, as the reference.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			if cfg.K < 1 {
				return usageError{errors.New("kmeans: --k must be at least 1")}
			}
			if len(cfg.Inputs) > 0 && !cmd.Flags().Changed("dim") {
				cfg.Dim = 0 // any width, the same in every point
			}
			cfg.Workers = jf.iterWorkers()
			if len(cfg.DSOServers) > 0 && cfg.DSOToken == "" {
				cfg.DSOToken = os.Getenv("GALE_DSO_TOKEN")
			}
			gen := func(st objstore.Store) error {
				return dataset.WritePoints(ctx, st, dataset.PointsConfig{Count: points, Dim: cfg.Dim, K: cfg.K,
					Parts: int(min(int64(cfg.Workers), points))})
			}
			setup := iterSetup{
				job: "kmeans", inputs: &cfg.Inputs, generable: cfg.Dim >= 1 && points >= 1, genFlags: "--dim and --points",
				cache: fmt.Sprintf("gale-points-%d-%d-%d", points, cfg.Dim, cfg.K), gen: gen,
				validate: func() error { return cfg.Validate() }, local: cfg.Mode == kmeans.ModeLocal,
			}
			opts, finish, err := setup.prepare(cmd, &jf)
			if err != nil {
				return err
			}
			defer finishInto(&err, finish)
			cfg.RunOptions = opts
			res, err := kmeans.Run(ctx, cfg)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "k-means, mode %s: %d points × %d coordinates, K = %d, %d workers, %d rounds\n",
				res.Mode, res.Points, res.Dim, res.K, cfg.Workers, res.Rounds)
			for r, c := range res.Costs {
				fmt.Fprintf(w, "  round %3d  cost %.6g\n", r, c)
			}
			if res.K*res.Dim <= 60 {
				for c := range res.K {
					fmt.Fprintf(w, "  centroid %d: %.5g\n", c, res.Centers[c*res.Dim:(c+1)*res.Dim])
				}
			}
			printTiming(w, res.Validate, res.Job, res.PerRound(), res.Timings)
			return nil
		},
	}
	jf.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&cfg.K, "k", 8, "number of clusters")
	fl.IntVar(&cfg.Dim, "dim", 4, "coordinates per point of generated data; with --input, the width every point must have if given")
	fl.Int64Var(&points, "points", 100_000, "points to generate when there is no --input")
	fl.IntVar(&cfg.Iterations, "iterations", 10, "rounds at most")
	fl.Float64Var(&cfg.Tolerance, "tolerance", 0, "stop once a round lowers the cost by at most this fraction (0: run every round)")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the initial centroids' choice")
	fl.StringVar(&cfg.Mode, "mode", kmeans.ModeShared, "shared, stages or local")
	fl.StringSliceVar(&cfg.Inputs, "input", nil, "input files, directories, globs or store URLs (comma-separated or repeated)")
	fl.StringSliceVar(&cfg.DSOServers, "dso", nil, "shared-object servers for --mode shared (gale dso serve; a cluster keeps the model replicated); default: one embedded in this process")
	fl.StringVar(&cfg.DSOToken, "dso-token", "", "the --dso servers' token (or GALE_DSO_TOKEN)")
	addFaultFlag(cmd, &cfg.Fault)
	return cmd
}

func newRunLogRegCmd() *cobra.Command {
	var jf jobFlags
	var cfg logreg.Config
	var points int64
	cmd := &cobra.Command{
		Use:   "logreg [--features F --points N | --input PATHS] [--workers W] [--iterations I] [--step S] [--mode shared|stages|local]",
		Short: "Train logistic regression by gradient descent on a shared weights object (or one job per round, or locally)",
		Long: `Train a logistic regression model by plain gradient descent with a fixed step,
printing the log-loss of every round. Without --input, a reproducible labeled
dataset of --points points with --features features is generated (and
cached) in Gale's cache directory. Modes as for kmeans.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			cfg.Workers = jf.iterWorkers()
			gen := func(st objstore.Store) error {
				return dataset.WriteLabeled(ctx, st, dataset.LabeledConfig{Count: points, Features: cfg.Features,
					Parts: int(min(int64(cfg.Workers), points))})
			}
			setup := iterSetup{
				job: "logreg", inputs: &cfg.Inputs, generable: cfg.Features >= 1 && points >= 1, genFlags: "--features and --points",
				cache: fmt.Sprintf("gale-labeled-%d-%d", points, cfg.Features), gen: gen,
				validate: func() error { return cfg.Validate() }, local: cfg.Mode == logreg.ModeLocal,
			}
			opts, finish, err := setup.prepare(cmd, &jf)
			if err != nil {
				return err
			}
			defer finishInto(&err, finish)
			cfg.RunOptions = opts
			res, err := logreg.Run(ctx, cfg)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "logistic regression, mode %s: %d points × %d features, step %g, %d workers, %d rounds\n",
				res.Mode, res.Points, res.Features, cfg.Step, cfg.Workers, res.Rounds)
			for r, l := range res.Losses {
				fmt.Fprintf(w, "  round %3d  log-loss %.6f\n", r, l)
			}
			printTiming(w, res.Validate, res.Job, res.PerRound(), res.Timings)
			return nil
		},
	}
	jf.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&cfg.Features, "features", 100, "features per point (generated data; checked against --input if set)")
	fl.Int64Var(&points, "points", 100_000, "points to generate when there is no --input")
	fl.IntVar(&cfg.Iterations, "iterations", 10, "gradient steps")
	fl.Float64Var(&cfg.Step, "step", 1, "gradient step size")
	fl.StringVar(&cfg.Mode, "mode", logreg.ModeShared, "shared, stages or local")
	fl.StringSliceVar(&cfg.Inputs, "input", nil, "input files, directories, globs or store URLs (comma-separated or repeated)")
	addFaultFlag(cmd, &cfg.Fault)
	return cmd
}

// iterWorkers returns --workers, or an iterative job's default.
func (jf *jobFlags) iterWorkers() int {
	if jf.workers == 0 {
		jf.workers = defaultIterWorkers
	}
	return jf.workers
}

// iterSetup is what `gale run kmeans` and `gale run logreg` do alike before
// running: generate (or reuse) a dataset when no --input is given, validate
// the job's configuration, and open the run options unless the job runs
// locally.
type iterSetup struct {
	job       string    // the command, for messages
	inputs    *[]string // the job's Inputs, filled with the dataset when empty
	generable bool      // the generator's flags are set
	genFlags  string    // the generator's flags, for messages
	cache     string    // the cached dataset's directory name
	gen       func(objstore.Store) error
	validate  func() error // the job configuration's Validate, run after inputs are filled
	local     bool         // the job runs on this machine only: no run options
}

// prepare runs the setup and returns the run options and a function that
// releases them (finishInto).
func (s iterSetup) prepare(cmd *cobra.Command, jf *jobFlags) ([]gale.RunOption, func() error, error) {
	if !s.local {
		if err := jf.check(); err != nil {
			return nil, nil, err // before generating a dataset
		}
	}
	if len(*s.inputs) == 0 {
		if !s.generable {
			return nil, nil, usageError{fmt.Errorf("%s: give --input PATHS, or %s to generate data", s.job, s.genFlags)}
		}
		dir, err := cachedData(cmd.Context(), cmd.ErrOrStderr(), s.cache, s.gen)
		if err != nil {
			return nil, nil, err
		}
		*s.inputs = []string{dir}
	}
	if err := s.validate(); err != nil {
		return nil, nil, usageError{err}
	}
	if s.local {
		return nil, func() error { return nil }, nil
	}
	return jf.options(cmd.ErrOrStderr())
}

// finishInto calls finish and reports its error in *err unless *err
// already holds one.
func finishInto(err *error, finish func() error) {
	if cerr := finish(); *err == nil && cerr != nil {
		*err = fmt.Errorf("finishing the run: %w", cerr)
	}
}

// addFaultFlag adds the hidden --fault WORKER:ROUND:POINT flag, which
// makes one worker fail its first attempt (to watch a restart).
func addFaultFlag(cmd *cobra.Command, f *rounds.Fault) {
	cmd.Flags().Var(faultValue{f}, "fault", "make worker W fail once at round R, at POINT (before-merge, after-merge, after-barrier): W:R:POINT")
	_ = cmd.Flags().MarkHidden("fault")
}

type faultValue struct{ f *rounds.Fault }

func (v faultValue) String() string {
	if v.f == nil || v.f.At == "" {
		return ""
	}
	return fmt.Sprintf("%d:%d:%s", v.f.Worker, v.f.Round, v.f.At)
}

func (v faultValue) Set(s string) error {
	var f rounds.Fault
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("want WORKER:ROUND:POINT, got %q", s)
	}
	if _, err := fmt.Sscan(parts[0], &f.Worker); err != nil {
		return fmt.Errorf("worker %q: %v", parts[0], err)
	}
	if _, err := fmt.Sscan(parts[1], &f.Round); err != nil {
		return fmt.Errorf("round %q: %v", parts[1], err)
	}
	f.At = parts[2]
	if err := f.Validate(); err != nil {
		return err
	}
	*v.f = f
	return nil
}

func (faultValue) Type() string { return "W:R:POINT" }

func printTiming(w io.Writer, validate, job, perRound time.Duration, timings []rounds.Timing) {
	fmt.Fprintf(w, "validation %s, job %s, %s per round\n", validate.Round(time.Millisecond), job.Round(time.Millisecond),
		perRound.Round(10*time.Microsecond))
	if len(timings) == 0 {
		return
	}
	var loop, comp, dso, bar time.Duration
	restarts := 0
	for _, t := range timings {
		loop += t.Loop
		comp += t.Compute
		dso += t.DSO
		bar += t.Barrier
		if t.Attempt > 1 {
			restarts++
		}
	}
	if loop > 0 {
		fmt.Fprintf(w, "worker time in the rounds: compute %.0f%%, shared objects %.0f%%, barrier %.0f%%\n",
			100*comp.Seconds()/loop.Seconds(), 100*dso.Seconds()/loop.Seconds(), 100*bar.Seconds()/loop.Seconds())
	}
	if restarts > 0 {
		fmt.Fprintf(w, "%d worker restart(s); each resumed from the shared iteration counter\n", restarts)
	}
}

// cachedData returns the directory name in Gale's cache of samples
// holding a generated dataset, generating it first unless a complete copy
// is there.
func cachedData(ctx context.Context, stderr io.Writer, name string, gen func(st objstore.Store) error) (string, error) {
	return cache.Dataset(name, stderr, func(dir string) error {
		st, err := gale.OpenStore(ctx, dir, nil)
		if err != nil {
			return err
		}
		return gen(st)
	})
}

// openOut opens the generators' output store, creating a local directory.
func openOut(ctx context.Context, out string) (objstore.Store, error) {
	if u, err := url.Parse(out); err != nil || u.Scheme == "" || u.Scheme == "file" || len(u.Scheme) == 1 {
		p := out
		if err == nil && u.Scheme == "file" {
			p = u.Path
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	return gale.OpenStore(ctx, out, nil)
}

func newGenPointsCmd() *cobra.Command {
	var cfg dataset.PointsConfig
	var out string
	cmd := &cobra.Command{
		Use:   "points --count N --dim D --k K --out DIR [--parts P]",
		Short: "Write reproducible clustered points (k-means data) as partitioned text files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("gen points: --out DIR is required")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			st, err := openOut(cmd.Context(), out)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := dataset.WritePoints(cmd.Context(), st, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d points × %d coordinates around %d centers to %s (%d files) in %s\n",
				cfg.Count, cfg.Dim, cfg.K, st, max(cfg.Parts, 1), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&cfg.Count, "count", 0, "number of points")
	fl.IntVar(&cfg.Dim, "dim", 0, "coordinates per point")
	fl.IntVar(&cfg.K, "k", 0, "number of clusters")
	fl.Float64Var(&cfg.Scale, "scale", 10, "standard deviation of the centers' coordinates (the noise's is 1)")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "random seed; the same flags give the same bytes")
	fl.IntVar(&cfg.Parts, "parts", 1, "number of files")
	fl.StringVar(&out, "out", "", "output directory or store URL (each file written atomically)")
	return cmd
}

func newGenLabeledCmd() *cobra.Command {
	var cfg dataset.LabeledConfig
	var out string
	cmd := &cobra.Command{
		Use:   "labeled --count N --features F --out DIR [--parts P]",
		Short: "Write reproducible labeled points (logistic regression data) as partitioned text files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("gen labeled: --out DIR is required")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			st, err := openOut(cmd.Context(), out)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := dataset.WriteLabeled(cmd.Context(), st, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d labeled points × %d features to %s (%d files) in %s\n",
				cfg.Count, cfg.Features, st, max(cfg.Parts, 1), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&cfg.Count, "count", 0, "number of points")
	fl.IntVar(&cfg.Features, "features", 100, "features per point")
	fl.Float64Var(&cfg.Sharpness, "sharpness", 3, "scale of the hidden margin: larger is more separable")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "random seed; the same flags give the same bytes")
	fl.IntVar(&cfg.Parts, "parts", 1, "number of files")
	fl.StringVar(&out, "out", "", "output directory or store URL (each file written atomically)")
	return cmd
}
