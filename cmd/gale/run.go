package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/cache"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// jobFlags are the flags every `gale run` job shares.
type jobFlags struct {
	backend     string
	workers     int
	partitions  int
	chunk       int64
	maxAttempts int
	overwrite   bool
	events      string
	reportJSON  string
	uncommitted bool
	quiet       bool
	shuffle     string
	hint        string
	taskTimeout time.Duration
	speculation string
	ui          uiFlags // the dashboard (ui.go)
}

func (f *jobFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.backend, "backend", "local", "backend that runs the tasks (see gale backends): local, process, ...")
	fl.IntVar(&f.workers, "workers", 0, "tasks run at once (default: number of CPUs)")
	fl.IntVar(&f.partitions, "partitions", 0, "partitions of every shuffle (default: chosen by the planner)")
	fl.Var(sizeValue{&f.chunk}, "chunk-size", "size of input chunks, one task each (default 64MiB)")
	fl.IntVar(&f.maxAttempts, "max-attempts", 3, "attempts per task before the job fails")
	fl.DurationVar(&f.taskTimeout, "task-timeout", 0, "abandon and retry an attempt running this long (default: the backend's function timeout, else 15m; negative: none)")
	fl.StringVar(&f.speculation, "speculation", "on", "backup attempts for straggling tasks: on or off")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace existing output")
	fl.StringVar(&f.events, "events", "", "write job events as JSON lines to this file")
	fl.StringVar(&f.reportJSON, "report-json", "", "write the job report as JSON to this file")
	fl.BoolVar(&f.uncommitted, "read-uncommitted", false, "read input folders that look like uncommitted job outputs (part files, no _SUCCESS)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress display")
	fl.StringVar(&f.hint, "hint", "", "size the job from a probe: sim:aws|azure|gcp|ibm, or the JSON file of gale probe --json (caps concurrency, warns of wide stages)")
	fl.StringVar(&f.shuffle, "shuffle", gale.DataShipping, "shuffle strategy: data-shipping (objects in storage), glider (merge and sort actions) or auto (the planner chooses per shuffle; gale plan says why)")
	f.ui.register(cmd)
}

// check reports a usage error in the flags, before any work is done.
func (f *jobFlags) check() error {
	if !knownBackend(f.backend) {
		return unknownBackend(f.backend)
	}
	if f.workers < 0 || f.partitions < 0 || f.chunk < 0 || f.maxAttempts < 1 {
		return usageError{fmt.Errorf("--workers, --partitions and --chunk-size must not be negative, --max-attempts at least 1")}
	}
	if f.speculation != "on" && f.speculation != "off" {
		return usageError{fmt.Errorf("--speculation %q: want on or off", f.speculation)}
	}
	if f.shuffle != gale.DataShipping && f.shuffle != gale.GliderShuffle && f.shuffle != gale.AutoShuffle {
		return usageError{fmt.Errorf("--shuffle %q: want %s, %s or %s", f.shuffle, gale.DataShipping, gale.GliderShuffle, gale.AutoShuffle)}
	}
	// A report that cannot be written must stop the job before it runs,
	// not after it committed its output.
	if f.reportJSON != "" {
		if err := checkWritable(f.reportJSON); err != nil {
			return fmt.Errorf("--report-json %s: %w", f.reportJSON, err)
		}
	}
	if f.events != "" {
		if err := checkWritable(f.events); err != nil {
			return fmt.Errorf("--events %s: %w", f.events, err)
		}
	}
	return nil
}

// checkWritable reports why a file could not be written at path: its
// directory is missing or not writable, or it exists and is not a
// writable regular file. It changes nothing.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return errors.New("is a directory; name a file")
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("cannot be written: %w", err)
		}
		return f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".gale-check-*")
	if err != nil {
		return fmt.Errorf("cannot be created in %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// options turns the flags into run options. The returned closer finishes
// the events file and stops the backend, and must be called after the run.
func (f *jobFlags) options(stderr io.Writer) ([]gale.RunOption, func() error, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	opts := []gale.RunOption{gale.Workers(f.workers), gale.Partitions(f.partitions), gale.MaxAttempts(f.maxAttempts),
		gale.Overwrite(f.overwrite), gale.ShuffleStrategy(f.shuffle), gale.TaskTimeout(f.taskTimeout),
		gale.ReadUncommitted(f.uncommitted)}
	if f.speculation == "off" {
		opts = append(opts, gale.NoSpeculation())
	}
	if f.hint != "" {
		h, err := hintFlag(context.Background(), f.hint)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, h)
	}
	var closers []func() error
	closer := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	b, cfg, err := openBackend(context.Background(), f.backend, backendEnv{Workers: f.workers, Stderr: stderr})
	if err != nil {
		return nil, nil, err
	}
	if b != nil {
		opts = append(opts, gale.WithBackend(f.backend, b))
		closers = append(closers, b.Close)
	}
	opts = append(opts, storeOptions(cfg)...)
	if f.chunk > 0 {
		opts = append(opts, gale.ChunkSize(f.chunk))
	}
	if !f.quiet {
		opts = append(opts, gale.WithProgress(newProgress(stderr)))
	}
	uiOpt, err := f.ui.option(stderr)
	if err != nil {
		closer()
		return nil, nil, err
	}
	if uiOpt != nil {
		opts = append(opts, uiOpt)
	}
	if f.events != "" {
		ev, err := os.Create(f.events)
		if err != nil {
			closer()
			return nil, nil, err
		}
		opts = append(opts, gale.EventsTo(ev))
		closers = append(closers, ev.Close)
	}
	return opts, closer, nil
}

// newProcessBackend returns a process backend whose workers are this
// binary running the hidden worker subcommand, workers of them at most
// (default: the number of CPUs), their output going to stderr.
func newProcessBackend(workers int, stderr io.Writer) (*process.Backend, error) {
	cfg := process.DefaultConfig()
	if cfg.Path == "" {
		return nil, fmt.Errorf("--backend process: cannot locate the gale binary to start workers from")
	}
	cfg.Args = []string{workerCmdName}
	if workers > 0 {
		cfg.Concurrency = workers
	}
	cfg.Output = stderr
	return process.New(cfg)
}

// minBarColumns is the narrowest terminal progress bars are drawn on; a
// narrower one (some report 0 columns) gets log lines, which wrap.
const minBarColumns = 40

// newProgress shows bars on a terminal at least minBarColumns wide and log
// lines elsewhere.
func newProgress(w io.Writer) engine.Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= minBarColumns {
			return newBars(f)
		}
	}
	return &engine.LineProgress{W: w}
}

func (f *jobFlags) finish(cmd *cobra.Command, report *gale.Report) error {
	report.Print(cmd.OutOrStdout())
	if f.reportJSON == "" {
		return nil
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(f.reportJSON, append(b, '\n'), 0o644)
}

func newRunCmd() *cobra.Command {
	run := &cobra.Command{Use: "run JOB", Short: "Run a sample job"}
	run.AddCommand(newRunWordCountCmd(), newRunSortCmd(), newRunPiCmd(), newRunMandelbrotCmd(), newRunSantaCmd(),
		newRunKMeansCmd(), newRunLogRegCmd(), newRunBeamWordCountCmd())
	return run
}

// sampleSize is the default size of the corpus word count generates when
// it is given no input (--sample-size).
const sampleSize = 64 << 20

// sampleCorpus returns the generated sample corpus of size bytes, creating
// it once in Gale's cache directory (it is reproducible: a cached copy is
// the same bytes).
func sampleCorpus(ctx context.Context, stderr io.Writer, size int64) (string, error) {
	if size <= 0 {
		return "", usageError{fmt.Errorf("--sample-size must be positive")}
	}
	cfg := textgen.DefaultConfig()
	cfg.Size = size
	return cache.Corpus(ctx, cfg, stderr)
}

func newRunWordCountCmd() *cobra.Command {
	var jf jobFlags
	var inputs []string
	var output string
	var top int
	var sample int64 = sampleSize
	cmd := &cobra.Command{
		Use:   "wordcount [--input PATHS] [--output DIR]",
		Short: "Count the words of text files (a generated sample corpus by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			if err := jf.check(); err != nil {
				return err // before generating a sample
			}
			if len(inputs) == 0 {
				path, err := sampleCorpus(ctx, stderr, sample)
				if err != nil {
					return err
				}
				inputs = []string{path}
			}
			var defaultOutput bool
			if output == "" {
				dir, err := cache.Output("wordcount")
				if err != nil {
					return err
				}
				output, defaultOutput = dir, true
			}
			opts, finish, err := jf.options(stderr)
			if err != nil {
				return err
			}
			if defaultOutput {
				// The last default run's output is replaced, not
				// kept beside this one.
				opts = append(opts, gale.Overwrite(true))
			}
			p := gale.NewPipeline()
			wordcount.Build(p, inputs, output)
			report, err := gale.Run(ctx, p, opts...)
			if cerr := finish(); err == nil && cerr != nil {
				err = fmt.Errorf("finishing the run: %w", cerr)
			}
			if err != nil {
				return err
			}
			if err := jf.finish(cmd, report); err != nil {
				return err
			}
			if top > 0 {
				return printTop(cmd.OutOrStdout(), output, top)
			}
			return nil
		},
	}
	jf.register(cmd)
	cmd.Flags().StringSliceVar(&inputs, "input", nil, "input files, directories, globs or s3:// prefixes (comma-separated or repeated)")
	cmd.Flags().StringVar(&output, "output", "", "output directory (default: out/wordcount in Gale's cache directory, replaced by the next run without --output)")
	cmd.Flags().IntVar(&top, "top", 10, "print the most frequent words (0: none)")
	cmd.Flags().Var(sizeValue{&sample}, "sample-size", "size of the sample corpus generated when there is no --input")
	return cmd
}

// printTop prints the n most frequent words of a local word count output.
func printTop(w io.Writer, dir string, n int) error {
	counts, err := wordref.ReadCountDir(dir)
	if errors.Is(err, wordref.ErrNoParts) {
		return nil // not a local directory: nothing to show
	}
	if err != nil {
		return err
	}
	type wc struct {
		w string
		c int64
	}
	all := make([]wc, 0, len(counts))
	for k, v := range counts {
		all = append(all, wc{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].c > all[j].c || all[i].c == all[j].c && all[i].w < all[j].w })
	fmt.Fprintf(w, "%d distinct words; most frequent:\n", len(all))
	for i := 0; i < n && i < len(all); i++ {
		fmt.Fprintf(w, "  %-20s %s\n", all[i].w, strconv.FormatInt(all[i].c, 10))
	}
	return nil
}
