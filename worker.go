package gale

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/engine"
)

// WorkerEnv is the environment variable that starts a program as a Gale
// worker; its value names how the worker talks to its backend ("process"
// for the process backend, which sets it in every worker it starts).
const WorkerEnv = process.WorkerEnv

// WorkerFlag is the command-line form of WorkerEnv: "--gale-worker" (the
// process protocol) or "--gale-worker=MODE" anywhere in the arguments. It
// is for launchers that can only set arguments; a program whose own flag
// parsing would reject it must call ServeWorkerIfRequested before parsing.
const WorkerFlag = "--gale-worker"

// workerEntry is the worker side of one backend's protocol.
type workerEntry struct {
	// detect reports whether the platform started this process as a
	// worker of this kind (AWS_LAMBDA_RUNTIME_API set, say); nil means the
	// mode is chosen only through WorkerEnv or WorkerFlag.
	detect func() bool
	serve  func(context.Context, backends.Handler) error
}

// workerEntries maps worker modes to their entries. It is a name table
// filled by init functions of this package (one file per backend,
// worker_<mode>.go), in the manner of database/sql's drivers.
var workerEntries = map[string]workerEntry{
	process.WorkerEnvValue: {serve: process.ServeInherited},
}

// registerWorkerEntry adds a worker mode; registering a mode twice is a
// programming error.
func registerWorkerEntry(mode string, detect func() bool, serve func(context.Context, backends.Handler) error) {
	if _, dup := workerEntries[mode]; dup {
		panic("gale: worker mode " + mode + " registered twice")
	}
	workerEntries[mode] = workerEntry{detect: detect, serve: serve}
}

// WorkerMode reports how this process was started as a Gale worker: the
// value of WorkerEnv, else of WorkerFlag, else the mode whose platform
// signature is in the environment (a FaaS runtime's variables), or "" if
// it is not a worker and runs its driver as usual.
func WorkerMode() string {
	if m := os.Getenv(WorkerEnv); m != "" {
		return m
	}
	for _, a := range os.Args[1:] {
		if a == WorkerFlag {
			return process.WorkerEnvValue
		}
		if m, ok := strings.CutPrefix(a, WorkerFlag+"="); ok {
			return m
		}
	}
	modes := make([]string, 0, len(workerEntries))
	for m := range workerEntries {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	for _, m := range modes {
		if e := workerEntries[m]; e.detect != nil && e.detect() {
			return m
		}
	}
	// A platform this binary does not link started it: ServeWorker says so.
	return unlinkedWorkerMode()
}

// WorkerOption adds to what a worker serves.
type WorkerOption func(*engine.Mux)

// WorkerHandler makes the worker route payloads of the given kind to h;
// for example threads.Kind to threads.Handler(reg) for cloud threads.
func WorkerHandler(kind string, h backends.Handler) WorkerOption {
	return func(m *engine.Mux) { m.Register(kind, h) }
}

// NewWorkerMux returns the worker's router: this program's stage worker
// (NewWorker) for engine.StageTaskKind, plus the handlers opts add.
func NewWorkerMux(opts ...WorkerOption) (*engine.Mux, error) {
	w, err := NewWorker()
	if err != nil {
		return nil, err
	}
	m := engine.NewMux()
	m.Register(engine.StageTaskKind, w.Handle)
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// ServeWorker serves tasks the way WorkerMode says this process was
// started, until its backend tells it to stop or goes away (it returns
// nil then) or ctx is done. It fails at once if the process was not
// started as a worker or names an unknown mode. Everything the tasks use
// (kernels registered by building the pipeline, Register calls,
// WorkerHandler functions) must be in place before it is called.
func ServeWorker(ctx context.Context, opts ...WorkerOption) error {
	mode := WorkerMode()
	entry, ok := workerEntries[mode]
	if !ok {
		known := make([]string, 0, len(workerEntries))
		for k := range workerEntries {
			known = append(known, k)
		}
		sort.Strings(known)
		if mode == "" {
			return fmt.Errorf("gale: this process was not started as a worker (%s is not set)", WorkerEnv)
		}
		for _, c := range cloudParts {
			if c.name == mode {
				return notLinked(c, "serving the platform that started this process")
			}
		}
		return fmt.Errorf("gale: unknown worker mode %q (from %s or %s); known: %s", mode, WorkerEnv, WorkerFlag, strings.Join(known, ", "))
	}
	m, err := NewWorkerMux(opts...)
	if err != nil {
		return err
	}
	return entry.serve(ctx, m.Handle)
}

// ServeWorkerIfRequested returns at once in a program started normally.
// In a program started as a worker it serves tasks (ServeWorker with a
// background context) and then ends the process: with status 0 when the
// backend stops it, else with status 1 after printing the error. Call it
// early in main, after everything the tasks use is registered, when the
// worker should not reach the driver's pipeline construction or flag
// parsing; otherwise gale.Run does the same where the driver would run
// the job.
func ServeWorkerIfRequested(opts ...WorkerOption) {
	if WorkerMode() == "" {
		return
	}
	serveAndExit(context.Background(), opts...)
}

// serveAndExit serves as a worker and ends the process. Ending it is the
// worker entry's contract, as with lambda.Start: the code after the
// driver's Run must not run in a worker, and a worker has nothing to
// return to.
func serveAndExit(ctx context.Context, opts ...WorkerOption) {
	if err := ServeWorker(ctx, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "gale worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
