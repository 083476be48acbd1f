package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/probe"
)

// probeFlags are the flags of `gale probe` and `gale probe compare`.
type probeFlags struct {
	backend     string
	invocations int
	task        string
	duration    time.Duration
	memory      int
	warm        int
	async       bool
	jsonPath    string
	plots       string
	concurrency int
	seed        uint64
	overLimit   bool
	resultStore string
}

func (f *probeFlags) register(cmd *cobra.Command, withBackend bool) {
	fl := cmd.Flags()
	if withBackend {
		fl.StringVar(&f.backend, "backend", "local", "backend to probe: local, process, or sim:aws, sim:azure, sim:gcp, sim:ibm")
	}
	fl.IntVarP(&f.invocations, "invocations", "n", 200, "concurrent invocations (1000 with --async unless given)")
	fl.StringVar(&f.task, "task", "compute", "task: sleep, or compute (Monte Carlo π sized to --duration on one full CPU)")
	fl.DurationVar(&f.duration, "duration", time.Second, "task duration")
	fl.IntVar(&f.memory, "memory", 0, "function memory in MiB (default: the platform's; not configurable on local and process)")
	fl.IntVar(&f.warm, "warm", 0, "warm-up invocations run first, so about this many instances are warm")
	fl.BoolVar(&f.async, "async", false, "large-scale run: invocations fired asynchronously, results returned through object storage, simplified timeline")
	fl.StringVar(&f.resultStore, "result-store", "", "--async: where functions put their results, a directory or store URL they can reach (default: a new temporary directory)")
	fl.StringVar(&f.jsonPath, "json", "", "write the metrics and the trace as JSON to this file")
	fl.StringVar(&f.plots, "plots", "", "write the figures (PNG and SVG) into this directory")
	fl.IntVar(&f.concurrency, "concurrency", 0, "local and process: instances at most (default: --invocations for local, up to 64 for process)")
	fl.Uint64Var(&f.seed, "seed", 1, "sim: random seed of the model")
	fl.BoolVar(&f.overLimit, "over-limit", false, "send even if --invocations exceeds the backend's concurrency limit, to observe throttling")
}

func (f *probeFlags) config() (probe.Config, error) {
	task, err := probe.ParseTask(f.task)
	if err != nil {
		return probe.Config{}, usageError{err}
	}
	if f.duration <= 0 {
		return probe.Config{}, usageError{errors.New("--duration must be positive")}
	}
	return probe.Config{Invocations: f.invocations, Task: task, Duration: f.duration, MemoryMiB: f.memory,
		Warm: f.warm, Async: f.async, AllowOverLimit: f.overLimit, ResultStore: f.resultStore,
		OpenStore: func(ctx context.Context, url string) (objstore.Store, error) { return gale.OpenStore(ctx, url, nil) }}, nil
}

// asyncDefaults applies what --async implies: 1000 invocations unless
// --invocations says otherwise, and a temporary result store unless
// --result-store names one. The returned function removes the store it
// made.
// errPlotsNotLinked is the error for --plots in a slim gale built
// without gale_plots (see plots_off.go).
var errPlotsNotLinked = errors.New("--plots: this gale is a slim build, which leaves out the probe's figures (gonum/plot)")

// checkPlots refuses --plots, before anything runs, in a gale that cannot
// draw.
func (f *probeFlags) checkPlots() error {
	if f.plots != "" && !plotsLinked {
		return usageError{errPlotsNotLinked}
	}
	return nil
}

func (f *probeFlags) asyncDefaults(cmd *cobra.Command) (func(), error) {
	if !f.async {
		return func() {}, nil
	}
	if !cmd.Flags().Changed("invocations") {
		f.invocations = 1000
	}
	if f.resultStore != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "gale-probe-results-")
	if err != nil {
		return nil, err
	}
	f.resultStore = dir
	return func() { os.RemoveAll(dir) }, nil
}

// newProbeBackend builds the backend a probe names. Every check that can
// fail (unknown backend, memory size, credentials) happens here, before
// any invocation is sent.
func newProbeBackend(name string, f *probeFlags, stderr io.Writer) (backends.Backend, error) {
	want := max(f.invocations, f.warm)
	switch {
	case name == "local" || name == "process":
		if f.memory != 0 {
			return nil, usageError{fmt.Errorf("--memory: the %s backend does not configure memory; drop the flag", name)}
		}
		if name == "local" {
			n := f.concurrency
			if n == 0 {
				n = want
			}
			return local.New(local.Config{Handler: probe.Handler(), Concurrency: n})
		}
		n := f.concurrency
		if n == 0 {
			n = min(want, 64)
		}
		return newProcessBackend(n, stderr) // its workers serve probe.Kind (gale worker)
	case strings.HasPrefix(name, "sim:"):
		cfg, err := sim.DefaultConfig(strings.TrimPrefix(name, "sim:"))
		if err != nil {
			return nil, usageError{err}
		}
		cfg.MemoryMiB, cfg.Seed = f.memory, f.seed
		b, err := sim.New(cfg)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	}
	if knownBackend(name) {
		// A cloud backend: built from its config section like for gale
		// run; its functions serve probe tasks (gale worker does).
		b, _, err := openBackend(context.Background(), name, backendEnv{Workers: f.concurrency, Stderr: stderr})
		return b, err
	}
	switch name {
	case "aws", "azure", "gcp", "ibm":
		return nil, usageError{fmt.Errorf("backend %q: %s; to see how the platform behaves, probe its model: --backend sim:%s",
			name, cloudStatus(name), name)}
	}
	return nil, unknownBackend(name)
}

// cloudStatus says why a cloud backend cannot be probed from here.
func cloudStatus(name string) string {
	creds := map[string][]string{
		"aws":   {"AWS_ACCESS_KEY_ID", "AWS_PROFILE"},
		"azure": {"AZURE_CLIENT_ID", "AZURE_FUNCTIONS_KEY"},
		"gcp":   {"GOOGLE_APPLICATION_CREDENTIALS"},
		"ibm":   {"__OW_API_KEY", "IBM_CLOUD_API_KEY"},
	}[name]
	for _, env := range creds {
		if os.Getenv(env) != "" {
			return "this build has no client for its functions yet (credentials found in " + env + ")"
		}
	}
	return "no credentials found (set " + strings.Join(creds, " or ") + ") and this build has no client for its functions yet"
}

// probeOne runs one probe and returns its trace; an interrupted run
// returns the partial trace with the error.
func probeOne(ctx context.Context, name string, f *probeFlags, stderr io.Writer) (*probe.Trace, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	b, err := newProbeBackend(name, f, stderr)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if err := cfg.Validate(backends.TraitsOf(b)); err != nil {
		return nil, usageError{fmt.Errorf("%w\n(--concurrency raises the limit of local and process; --over-limit sends anyway)", err)}
	}
	return probe.Run(ctx, b, cfg)
}

// probeOutput is the JSON written by --json: the metrics' fields at the
// top level, then the trace.
type probeOutput struct {
	probe.Metrics
	Trace *probe.Trace `json:"trace"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func plotPrefix(backend string) string { return "probe-" + strings.ReplaceAll(backend, ":", "-") }

func newProbeCmd() *cobra.Command {
	var f probeFlags
	cmd := &cobra.Command{
		Use:   "probe --backend B [--invocations N] [--task sleep|compute] [--duration 1s] [--memory M] [--warm W] [--async]",
		Short: "Measure the parallelism a backend delivers (cold starts, parallel degree, failures)",
		Long: `Probe runs N concurrent invocations of a sleep or compute task on a backend and
reports cold starts, completion time, parallel degree (the most instances busy
at once), instances used, failures and the spread of in-function durations, as
in chapter 3 of "Towards Enhanced State Management for Serverless Computation".
Ctrl-C stops the run and reports what was measured so far.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkPlots(); err != nil {
				return err
			}
			cleanup, err := f.asyncDefaults(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			tr, err := probeOne(cmd.Context(), f.backend, &f, cmd.ErrOrStderr())
			if tr == nil {
				return err
			}
			m := probe.Analyze(tr)
			m.Print(cmd.OutOrStdout())
			if f.jsonPath != "" {
				if werr := writeJSON(f.jsonPath, probeOutput{m, tr}); werr != nil {
					return errors.Join(err, werr)
				}
			}
			if f.plots != "" {
				paths, perr := plotRun(f.plots, plotPrefix(tr.Backend), tr)
				if perr != nil {
					return errors.Join(err, perr)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d figures to %s\n", len(paths), f.plots)
			}
			return err
		},
	}
	f.register(cmd, true)
	cmd.AddCommand(newProbeCompareCmd())
	return cmd
}

func newProbeCompareCmd() *cobra.Command {
	var f probeFlags
	cmd := &cobra.Command{
		Use:   "compare BACKEND... [--plots DIR]",
		Short: "Probe several backends with the same run and compare them side by side",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkPlots(); err != nil {
				return err
			}
			cleanup, err := f.asyncDefaults(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			// Build every backend first, so a bad name or memory size fails
			// before any invocation is sent anywhere.
			for _, name := range args {
				b, err := newProbeBackend(name, &f, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				cfg, cerr := f.config()
				if cerr == nil {
					cerr = cfg.Validate(backends.TraitsOf(b))
				}
				b.Close()
				if cerr != nil {
					return usageError{fmt.Errorf("%s: %w", name, cerr)}
				}
			}
			var trs []*probe.Trace
			var ms []probe.Metrics
			var runErr error
			for _, name := range args {
				tr, err := probeOne(cmd.Context(), name, &f, cmd.ErrOrStderr())
				if tr != nil {
					trs = append(trs, tr)
					ms = append(ms, probe.Analyze(tr))
				}
				if err != nil {
					runErr = err
					break
				}
			}
			probe.PrintComparison(cmd.OutOrStdout(), ms)
			if f.jsonPath != "" {
				out := make([]probeOutput, len(ms))
				for i := range ms {
					out[i] = probeOutput{ms[i], trs[i]}
				}
				if err := writeJSON(f.jsonPath, out); err != nil {
					return errors.Join(runErr, err)
				}
			}
			if f.plots != "" && len(trs) > 0 {
				n := 0
				for _, tr := range trs {
					paths, err := plotRun(f.plots, plotPrefix(tr.Backend), tr)
					n += len(paths)
					if err != nil {
						return errors.Join(runErr, err)
					}
				}
				paths, err := plotCompare(f.plots, "probe-compare", trs)
				if err != nil {
					return errors.Join(runErr, err)
				}
				n += len(paths)
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d figures to %s (comparison: %s)\n", n, f.plots,
					filepath.Join(f.plots, "probe-compare.png"))
			}
			return runErr
		},
	}
	f.register(cmd, false)
	return cmd
}

// hintFlag turns --hint into a run option: "sim:NAME" probes that
// simulated platform with the thesis's 200 × 1 s compute run in
// simulated time (sim.HintFor); anything else names the JSON file
// `gale probe --json` wrote, whose metrics give the hint
// (probe.Recommend).
func hintFlag(ctx context.Context, spec string) (gale.RunOption, error) {
	if name, ok := strings.CutPrefix(spec, "sim:"); ok {
		h, err := sim.HintFor(ctx, name, 200)
		if err != nil {
			return nil, usageError{fmt.Errorf("--hint %s: %w", spec, err)}
		}
		return gale.WithHint(h), nil
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, usageError{fmt.Errorf("--hint: %w; give sim:aws|azure|gcp|ibm or the JSON file of gale probe --json", err)}
	}
	var m probe.Metrics
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, usageError{fmt.Errorf("--hint %s: %w; want the JSON object gale probe --json writes", spec, err)}
	}
	if m.Invocations == 0 || m.Backend == "" {
		return nil, usageError{fmt.Errorf("--hint %s: no probe metrics in the file (no backend or invocations); want the JSON object gale probe --json writes (gale probe compare writes a list)", spec)}
	}
	return gale.WithHint(probe.Recommend(m)), nil
}
