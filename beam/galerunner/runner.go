package galerunner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	beamruntime "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/dustin/go-humanize"
	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/beam/internal/worker"
	"github.com/galeproject/gale/engine"
)

// Name is the runner's name: --runner=gale.
const Name = "gale"

// Kind is the payload kind of Beam stage tasks on a Gale worker.
const Kind = worker.Kind

// ErrUnsupported is wrapped by the error of a pipeline that uses features
// Gale does not run; the message lists every one of them.
var ErrUnsupported = stages.ErrUnsupported

// Flags. Beam runners are chosen and configured through flags (the SDK's
// own jobopts are package-level flags too), so the runner defines its
// options the same way; Run takes a Config instead.
var (
	flagBackend    = flag.String("gale_backend", "local", "Gale backend for --runner=gale: local (goroutines in this process), process (worker processes of this binary), aws, gcp, azure or ibm (configured in Gale's config file, see --gale_config), or a simulated platform sim:aws|azure|gcp|ibm (runs here, predicts the platform's makespan and cost)")
	flagConfig     = flag.String("gale_config", "", "Gale's config file for the cloud backends and object-store options, as gale run reads it (default: $GALE_CONFIG, else ~/.gale/config.yaml)")
	flagWorkers    = flag.Int("gale_workers", 0, "tasks that run at once on Gale (default: the number of CPUs)")
	flagPartitions = flag.Int("gale_partitions", 0, "partitions of every GroupByKey and redistribution on Gale (default: --gale_workers)")
	flagTemp       = flag.String("gale_temp", "", "Gale's temporary store for data between stages, a directory or a store URL its workers reach (s3://, gs://, azblob://, cos://); default: a new directory under the system's temporary directory, for backends whose workers run on this machine")
	flagReport     = flag.Bool("gale_report", true, "print Gale's job report to standard error")
	flagUI         = &uiFlag{}
	flagUIWait     = flag.Bool("gale_ui_wait", false, "with --gale_ui, keep the dashboard up after the job ends until the program is interrupted (Ctrl-C)")
	flagEvents     = flag.String("gale_events", "", "write the job's events to this file as JSON lines (gale ui FILE shows them afterwards)")
	flagSpec       = flag.String("gale_speculation", "on", "backup attempts for straggling Gale tasks: on or off (as gale run --speculation)")
	flagTimeout    = flag.Duration("gale_task_timeout", 0, "abandon and retry a Gale task's attempt running this long (default: the backend's function timeout, else 15m; negative: none; as gale run --task-timeout)")
	flagProgress   = flag.Bool("gale_progress", true, "print the job's progress on Gale (stages started and done, and every 5s while they run) to standard error")
	flagMemory     = flag.String("gale_worker_memory", "", "memory budget of each Gale task (e.g. 512MiB, 2GiB); a GroupByKey partition whose records exceed half of it is grouped by an external sort that spills to the worker's local disk (default: the backend's configured function memory, else 512MiB)")
)

func init() {
	flag.Var(flagUI, "gale_ui", "serve a live dashboard of the job on loopback, printing its URL (--gale_ui alone: a free port on 127.0.0.1; --gale_ui=HOST:PORT)")
	beam.RegisterRunner(Name, Execute)
	beamruntime.RegisterInit(ServeWorkerIfRequested)
	// Messages DoFns log go to the driver's log, naming their task, on
	// every backend (see worker.InstallLogger).
	worker.InstallLogger()
}

// InstallLogger puts the runner's Beam logger in place, which it does
// when the program starts: messages DoFns log with their context (log.
// Infof(ctx, ...), x/debug's Print*) go with their task's result to the
// driver's log, naming the stage and task, on every backend. Call it
// again if something else replaced the Beam logger since (log.SetLogger;
// Prism's in-process worker does when a pipeline runs on Prism).
func InstallLogger() { worker.InstallLogger() }

// WorkerOption makes a Gale worker serve Beam stage tasks; pass it to
// gale.ServeWorker or gale.ServeWorkerIfRequested in programs that serve
// both Gale and Beam tasks.
func WorkerOption() gale.WorkerOption {
	w, err := worker.New(worker.Config{OpenStore: openStore})
	if err != nil {
		panic(err) // OpenStore is set: a programming error
	}
	return gale.WorkerHandler(Kind, w.Handle)
}

// ServeWorkerIfRequested returns at once in a program started normally.
// In a program started as a Gale worker (gale.WorkerMode), it serves Gale
// and Beam tasks until the backend stops the worker, then ends the
// process. beam.Init calls it through an init hook, so a Beam program's
// worker never builds or runs the pipeline itself.
func ServeWorkerIfRequested() {
	if gale.WorkerMode() == "" {
		return
	}
	gale.ServeWorkerIfRequested(WorkerOption())
}

// Execute runs a Beam pipeline on Gale with the options from the
// --gale_* flags. It is the runner beam.Run calls for --runner=gale.
// Everything that can be checked before a task runs is: unsupported
// features of the pipeline, the backend's configuration (OpenBackend), and
// a temporary store the backend's workers can reach.
func Execute(ctx context.Context, p *beam.Pipeline) (beam.PipelineResult, error) {
	ServeWorkerIfRequested() // a worker whose program never called beam.Init
	// As every Beam runner does: the program's flags become its pipeline
	// options, which Run sends to every task (Config.PipelineOptions).
	beam.PipelineOptions.LoadOptionsFromFlags(nil)
	f := runnerFlags{backend: *flagBackend, config: *flagConfig, workers: *flagWorkers, partitions: *flagPartitions,
		temp: *flagTemp, ui: flagUI.addr, uiWait: *flagUIWait, events: *flagEvents}
	var err error
	if f.memory, err = parseMemory(*flagMemory); err != nil {
		return nil, err
	}
	if *flagReport {
		f.report = os.Stderr
	}
	switch *flagSpec {
	case "on":
	case "off":
		f.speculationOff = true
	default:
		return nil, fmt.Errorf("galerunner: --gale_speculation=%q: want on or off", *flagSpec)
	}
	f.taskTimeout = *flagTimeout
	if *flagProgress {
		f.progress = &engine.LineProgress{W: os.Stderr}
	}
	res, err := execute(ctx, p, f)
	if res == nil {
		return nil, err // not a typed nil in the interface
	}
	return res, err
}

// parseMemory reads --gale_worker_memory: "" is 0 (the default).
func parseMemory(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, fmt.Errorf("galerunner: --gale_worker_memory=%q is not a positive size such as 512MiB or 2GiB", v)
	}
	return int64(n), nil
}

// runnerFlags are the values of the --gale_* flags.
type runnerFlags struct {
	backend, config, temp string
	workers, partitions   int
	memory                int64
	report                io.Writer
	ui, events            string // "" for none
	uiWait                bool
	speculationOff        bool
	taskTimeout           time.Duration
	progress              engine.Progress // nil for none
}

func execute(ctx context.Context, p *beam.Pipeline, f runnerFlags) (*Result, error) {
	pipeline, err := Marshal(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := stages.Check(pipeline); err != nil {
		return nil, fmt.Errorf("galerunner: %w", err)
	}
	ob, err := OpenBackend(ctx, BackendConfig{Name: f.backend, ConfigFile: f.config, Workers: f.workers})
	if err != nil {
		return nil, err
	}
	defer ob.Close()
	if f.temp == "" && !ob.WorkersHere {
		return nil, fmt.Errorf("%w: --gale_backend %s runs its workers on its platform, which cannot reach a local temporary directory: "+
			"set --gale_temp to a store they reach (s3://bucket/prefix, gs://, azblob://, cos://; client options in the storage section of Gale's config file)",
			ErrNotConfigured, ob.Name)
	}
	cfg := Config{Backend: ob.Backend, BackendName: ob.Name, Workers: f.workers, Partitions: f.partitions,
		Temp: f.temp, StoreOptions: ob.StoreOptions, WorkerMemory: f.memory, Report: f.report,
		TaskTimeout: f.taskTimeout, Speculation: engine.Speculation{Off: f.speculationOff}, Progress: f.progress}
	// The event file and the dashboard are opened before any task runs, so
	// a path or address that does not work fails the job before it starts.
	if f.events != "" {
		ev, err := os.Create(f.events)
		if err != nil {
			return nil, fmt.Errorf("galerunner: --gale_events: %w", err)
		}
		defer ev.Close()
		cfg.Events = ev
	}
	if f.ui != "" {
		stop, err := serveUI(ctx, f.ui, f.uiWait, &cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	return Run(ctx, pipeline, cfg)
}

// Marshal builds p and returns its portable pipeline proto.
func Marshal(ctx context.Context, p *beam.Pipeline) (*pipepb.Pipeline, error) {
	edges, _, err := p.Build()
	if err != nil {
		return nil, fmt.Errorf("galerunner: invalid pipeline: %w", err)
	}
	env, err := graphx.CreateEnvironment(ctx, "beam:env:default:v1", func(context.Context) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("galerunner: pipeline environment: %w", err)
	}
	pipeline, err := graphx.Marshal(edges, &graphx.Options{Environment: env})
	if err != nil {
		return nil, fmt.Errorf("galerunner: marshalling the pipeline: %w", err)
	}
	return pipeline, nil
}

// Config configures Run.
type Config struct {
	// Backend runs the tasks; nil runs them on goroutines in this process
	// (the local backend). The caller keeps ownership of a Backend it
	// passes. Its workers must serve Kind (WorkerOption).
	Backend backends.Backend
	// BackendName names the backend in the report. Default "local".
	BackendName string
	// Workers bounds the tasks in flight. Default: the number of CPUs, or
	// the backend's concurrency limit when it reports one.
	Workers int
	// Partitions is the partition count of every group and redistribute
	// edge. Default: Workers.
	Partitions int
	// WorkerMemory is each task's memory budget in bytes. A GroupByKey
	// task holds its partition's records in a hash table while they take
	// at most half of it, and groups them by an external sort that spills
	// to the worker's local disk past that. Default: the backend's
	// memory per instance when it reports one (backends.Traits.MemoryMiB,
	// e.g. a Lambda function's configured memory), else
	// worker.DefaultMemoryBytes (512 MiB, Gale's default worker memory).
	WorkerMemory int64
	// MaxAttempts bounds the attempts per task. Default 3.
	MaxAttempts int
	// TaskTimeout abandons an attempt that runs this long and retries the
	// task, as engine.Config.TaskTimeout: zero for the backend's function
	// timeout (plus a tenth and a second), else engine.DefaultTaskTimeout;
	// negative for no fixed limit.
	TaskTimeout time.Duration
	// Speculation configures backup attempts for straggling tasks, as
	// engine.Config.Speculation (Off: true disables them). Two defaults
	// differ from the engine's, because a Beam element is not a unit of
	// work (one element can be a whole file's restriction, and a
	// redistribution of a few elements leaves partitions empty): tasks
	// that read nothing do not count toward a stage's median
	// (IgnoreEmpty is always set), and the adaptive deadline derived from
	// that median is off unless TimeoutMultiplier is set (positive).
	Speculation engine.Speculation
	// Clock is the driver's time source (deadlines and backups); nil for
	// the system clock. Tests pass a fake one.
	Clock engine.Clock
	// Progress, when set, receives the job's progress as it runs, as gale
	// run shows it (engine.LineProgress writes log lines).
	Progress engine.Progress
	// Temp is the temporary store's URL (a directory or object-store
	// prefix). Default: a new directory under the system's temporary
	// directory, removed when the job ends.
	Temp string
	// StoreOptions configure object-store clients (see gale.StoreOptions).
	StoreOptions map[string]string
	// PipelineOptions are the values DoFns read with
	// beam.PipelineOptions.Get on every worker. Nil: the program's
	// beam.PipelineOptions when Run starts (Execute first loads them from
	// the command line's flags, as Beam's runners do).
	PipelineOptions map[string]string
	// JobID names the job. Default: random.
	JobID string
	// Report, when set, receives the job report when the job ends.
	Report io.Writer
	// Events, when set, receives the job's events as JSON lines, the
	// same events gale run --events writes (docs/engine.md), which gale ui
	// shows afterwards.
	Events io.Writer
	// Monitor, when set, receives the same events live: a ui.Server shows
	// the job on its dashboard.
	Monitor engine.Monitor
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("galerunner: Config.Workers must not be negative, got %d", c.Workers))
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("galerunner: Config.Partitions must not be negative, got %d", c.Partitions))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("galerunner: Config.MaxAttempts must not be negative, got %d", c.MaxAttempts))
	}
	if c.WorkerMemory < 0 {
		errs = append(errs, fmt.Errorf("galerunner: Config.WorkerMemory must not be negative, got %d", c.WorkerMemory))
	}
	if err := c.Speculation.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("galerunner: %w", err))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
		if c.Backend != nil {
			if t := backends.TraitsOf(c.Backend); t.MaxConcurrency > 0 {
				c.Workers = t.MaxConcurrency
			}
		}
	}
	if c.Partitions == 0 {
		c.Partitions = c.Workers
	}
	if c.WorkerMemory == 0 {
		c.WorkerMemory = worker.DefaultMemoryBytes
		if c.Backend != nil {
			if t := backends.TraitsOf(c.Backend); t.MemoryMiB > 0 {
				c.WorkerMemory = int64(t.MemoryMiB) << 20
			}
		}
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	c.Speculation.IgnoreEmpty = true
	if c.Speculation.TimeoutMultiplier == 0 {
		c.Speculation.TimeoutMultiplier = -1
	}
	if c.BackendName == "" {
		c.BackendName = "local"
	}
	if c.PipelineOptions == nil {
		c.PipelineOptions = beam.PipelineOptions.Export().Options
	}
	return c
}

// Result is a finished Beam job on Gale. It is a beam.PipelineResult.
type Result struct {
	// Report is Gale's job report: per stage, tasks, retries, wall time,
	// records and shuffle bytes.
	Report *engine.Report
	// Stages names each stage.
	Stages  []string
	metrics *metrics.Results
}

// Metrics returns the Beam metrics (counters and distributions) of the
// winning attempts of every task.
func (r *Result) Metrics() metrics.Results { return *r.metrics }

// JobID returns the Gale job's ID.
func (r *Result) JobID() string { return r.Report.JobID }

var _ beam.PipelineResult = (*Result)(nil)
