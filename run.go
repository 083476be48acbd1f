package gale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/probe"
)

// Report describes a finished (or failed) job; see engine.Report.
type Report = engine.Report

// ErrInterrupted is wrapped by Run's error when the context ended before
// the job finished (Ctrl-C in a program that cancels it, a cancel, a
// deadline): the job was stopped, not failed. No task is retried after
// that, nothing is committed, and errors.Is also matches the context's
// error (context.Canceled, context.DeadlineExceeded).
var ErrInterrupted = engine.ErrInterrupted

// RunOption configures Run.
type RunOption func(*runConfig)

type runConfig struct {
	backend     backends.Backend
	backendName string
	workers     int
	partitions  int
	// maxShuffleReads is MaxShuffleReads; 0: the planner's default.
	maxShuffleReads int64
	chunk           int64
	maxAttempts     int
	temp            string
	overwrite       bool
	// readUncommitted reads inputs that look like uncommitted outputs
	// (ReadUncommitted, committed.go).
	readUncommitted bool

	// Crash-point tests (commit_internal_test.go) see the driver's store
	// calls and commit steps through these; nil otherwise.
	wrapStore    func(objstore.Store) objstore.Store
	commitHook   func(step string) error
	progress     engine.Progress
	events       io.Writer
	noLift       bool
	storeOptions map[string]string
	jobID        string
	workerMemory int64
	spillDir     string
	dso          *dsoConfig
	shuffle      string
	glider       *gliderUse  // UseGlider (glider_strategy.go)
	hint         *probe.Hint // WithHint (hint.go)
	hintCap      string      // the warning of the cap the hint applied

	taskTimeout time.Duration      // TaskTimeout
	speculation engine.Speculation // WithSpeculation, NoSpeculation
	clock       engine.Clock       // WithClock

	monitors []engine.Monitor // WithMonitor (dashboard.go)
	uiAddr   *string          // WithUI
}

// WorkerMemory sets each task's memory budget in bytes (default 512 MiB,
// like a small function): a sort, group or join partition larger than about
// half of it is sorted in runs spilled to local disk and merged, a join
// key's right values past a quarter of it spill too, and a text line longer
// than the budget fails the task. The budget must be at least 8 KiB (a
// smaller one is most likely a unit mistake).
func WorkerMemory(bytes int64) RunOption { return func(c *runConfig) { c.workerMemory = bytes } }

// SpillDir sets where tasks spill sorted runs and join values (default:
// the worker's temporary directory).
func SpillDir(dir string) RunOption { return func(c *runConfig) { c.spillDir = dir } }

// WithBackend runs the tasks on b instead of the embedded local backend.
// The caller keeps ownership of b (Run does not close it). name labels the
// backend in reports.
func WithBackend(name string, b backends.Backend) RunOption {
	return func(c *runConfig) { c.backend, c.backendName = b, name }
}

// Workers sets how many tasks run at once (default: the number of CPUs
// for the local backend, else the backend's concurrency limit).
func Workers(n int) RunOption { return func(c *runConfig) { c.workers = n } }

// Partitions fixes the partition count of every shuffle.
func Partitions(n int) RunOption { return func(c *runConfig) { c.partitions = n } }

// MaxShuffleReads bounds the ranged reads of each data-shipping shuffle:
// M map tasks' outputs read by N reduce tasks cost M×N requests to the
// temporary store. Above the bound, each reduce task reads a run of
// contiguous partitions of every map output with one request, and the
// output has one part per reduce task (`gale plan` and the report say
// so). Default 100,000; negative: no bound. A sort whose SortPartitions
// fixes its parts is never coalesced.
func MaxShuffleReads(n int64) RunOption { return func(c *runConfig) { c.maxShuffleReads = n } }

// ChunkSize sets the size of the byte-range chunks ReadText splits files
// into; each chunk is one task. By default Gale picks a size between 4 MiB
// and 64 MiB that gives every worker about four tasks (so one slow task does
// not hold the stage back), as long as chunks stay that large.
func ChunkSize(bytes int64) RunOption { return func(c *runConfig) { c.chunk = bytes } }

// MaxAttempts sets how many times a task is tried before the job fails
// (default 3).
func MaxAttempts(n int) RunOption { return func(c *runConfig) { c.maxAttempts = n } }

// TaskTimeout sets how long an attempt may run before it is abandoned
// (cancelled where the backend can, ignored where it cannot) and the task
// retried. By default it is the backend's function timeout, or 15 minutes
// (engine.DefaultTaskTimeout) on backends that have none; a negative d
// sets no fixed limit (the limit derived from a stage's task durations,
// engine.Speculation, still applies).
func TaskTimeout(d time.Duration) RunOption { return func(c *runConfig) { c.taskTimeout = d } }

// WithSpeculation sets how stragglers get backup attempts and when a task
// is deemed hung from its stage's durations (engine.Speculation; zero
// fields keep their defaults). Backups are on by default.
func WithSpeculation(s engine.Speculation) RunOption { return func(c *runConfig) { c.speculation = s } }

// NoSpeculation turns backup attempts off (--speculation=off on the gale
// command line).
func NoSpeculation() RunOption { return func(c *runConfig) { c.speculation.Off = true } }

// WithClock runs the job's deadlines and backups on clock instead of the
// system clock (tests move an enginetest.FakeClock by hand).
func WithClock(clock engine.Clock) RunOption { return func(c *runConfig) { c.clock = clock } }

// TempStore sets where shuffle data and uncommitted outputs live (a local
// directory or object-store URL, default a new directory under the
// system's temporary directory). The job deletes what it wrote there.
func TempStore(url string) RunOption { return func(c *runConfig) { c.temp = url } }

// Overwrite lets WriteText replace existing output.
func Overwrite(ok bool) RunOption { return func(c *runConfig) { c.overwrite = ok } }

// WithProgress reports progress to p.
func WithProgress(p engine.Progress) RunOption { return func(c *runConfig) { c.progress = p } }

// EventsTo writes the job's events (job, stage and task starts and ends
// with their metrics) as JSON lines to w.
func EventsTo(w io.Writer) RunOption { return func(c *runConfig) { c.events = w } }

// NoCombinerLifting makes combines shuffle every value instead of partial
// aggregates (for comparisons; the result is the same).
func NoCombinerLifting() RunOption { return func(c *runConfig) { c.noLift = true } }

// StoreOptions configures object-store clients, on the driver and in
// workers: "s3.endpoint", "s3.region", "s3.path_style" ("true"),
// "s3.profile".
func StoreOptions(opts map[string]string) RunOption {
	return func(c *runConfig) { c.storeOptions = opts }
}

// JobID sets the job's ID (default: random).
func JobID(id string) RunOption { return func(c *runConfig) { c.jobID = id } }

// OpenStore opens the object store at rawURL (a local path, file://,
// s3://bucket/prefix) with the given client options, as Gale's driver and
// workers do.
func OpenStore(ctx context.Context, rawURL string, opts map[string]string) (objstore.Store, error) {
	r, err := resolverFor(opts)
	if err != nil {
		return nil, err
	}
	return r.Open(ctx, rawURL)
}

var resolvers sync.Map // canonical options -> *objstore.Resolver (a cache)

// storeScheme is an object-store URL scheme Gale can open: its options'
// prefix in StoreOptions ("s3." for s3.endpoint) and how to build its
// opener from them.
type storeScheme struct {
	prefix string
	keys   []string
	opener func(opts map[string]string) (objstore.Opener, error)
}

// storeSchemes is a name table filled by init functions of this package,
// one file per store (store_s3.go, ...).
var storeSchemes = map[string]storeScheme{}

// registerStoreScheme adds an object-store scheme whose options are
// prefix+key for each key; registering a scheme twice is a programming
// error.
func registerStoreScheme(scheme, prefix string, keys []string, opener func(opts map[string]string) (objstore.Opener, error)) {
	if _, dup := storeSchemes[scheme]; dup {
		panic("gale: store scheme " + scheme + " registered twice")
	}
	storeSchemes[scheme] = storeScheme{prefix: prefix, keys: keys, opener: opener}
}

func resolverFor(opts map[string]string) (*objstore.Resolver, error) {
	var known []string
	valid := map[string]bool{}
	for _, sc := range storeSchemes {
		for _, k := range sc.keys {
			valid[sc.prefix+k] = true
			known = append(known, sc.prefix+k)
		}
	}
	sort.Strings(known)
	for k := range opts {
		if !valid[k] {
			if err := unlinkedStoreOption(k); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("gale: unknown store option %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	keys := make([]string, 0, len(opts))
	for k, v := range opts {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	key := strings.Join(keys, "\x00")
	if r, ok := resolvers.Load(key); ok {
		return r.(*objstore.Resolver), nil
	}
	r := objstore.NewResolver()
	schemes := make([]string, 0, len(storeSchemes))
	for name := range storeSchemes {
		schemes = append(schemes, name)
	}
	sort.Strings(schemes)
	for _, name := range schemes {
		sc := storeSchemes[name]
		sub := map[string]string{}
		for k, v := range opts {
			if rest, ok := strings.CutPrefix(k, sc.prefix); ok {
				sub[rest] = v
			}
		}
		o, err := sc.opener(sub)
		if err != nil {
			return nil, err
		}
		r.Register(name, o)
	}
	registerUnlinkedSchemes(r)
	actual, _ := resolvers.LoadOrStore(key, r)
	return actual.(*objstore.Resolver), nil
}

// NewWorker returns the worker runtime that runs this program's stage
// tasks; backends that run workers in-process (local) or in worker
// processes of this binary call its Handle method.
func NewWorker() (*engine.Worker, error) {
	return engine.NewWorker(engine.WorkerConfig{OpenStore: OpenStore})
}

// Run plans and runs the pipeline, and returns its report. The context
// cancels the job; a failed or cancelled job leaves no output visible and
// any previous output untouched.
//
// In a process started as a Gale worker (see WorkerMode), Run does not run
// the job and does not return: having built the pipeline, the program has
// registered the kernels the driver's tasks name, so Run serves tasks
// until the backend stops the worker, then ends the process
// (ServeWorkerIfRequested).
func Run(ctx context.Context, p *Pipeline, opts ...RunOption) (*Report, error) {
	if WorkerMode() != "" {
		serveAndExit(ctx)
	}
	cfg, err := newRunConfig(opts)
	if err != nil {
		return nil, err
	}
	job, err := prepare(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	return execute(ctx, p, cfg, job)
}

// Explain resolves the pipeline's inputs, compiles it with the given
// options and returns the physical plan as text, without running it.
func Explain(ctx context.Context, p *Pipeline, opts ...RunOption) (string, error) {
	cfg, err := newRunConfig(opts)
	if err != nil {
		return "", err
	}
	job, err := prepare(ctx, p, cfg)
	if err != nil {
		return "", err
	}
	return job.Plan.Explain(), nil
}

func newRunConfig(opts []RunOption) (runConfig, error) {
	cfg := runConfig{maxAttempts: 3}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.chunk < 0 {
		return cfg, fmt.Errorf("gale: ChunkSize must be positive, got %d", cfg.chunk)
	}
	if cfg.chunk > 0 && cfg.chunk < minChunkSize {
		return cfg, fmt.Errorf("gale: ChunkSize %d bytes is below the minimum of %d bytes: every chunk is a task, "+
			"so tiny chunks make a job of mostly per-task overhead (--chunk-size takes units: 64KiB, 4MiB)", cfg.chunk, minChunkSize)
	}
	switch cfg.shuffle {
	case "", DataShipping, GliderShuffle, AutoShuffle:
	default:
		return cfg, fmt.Errorf("gale: unknown shuffle strategy %q (want %s, %s or %s)", cfg.shuffle, DataShipping, GliderShuffle, AutoShuffle)
	}
	if cfg.workerMemory < 0 {
		return cfg, fmt.Errorf("gale: WorkerMemory must be positive, got %d", cfg.workerMemory)
	}
	if cfg.workerMemory > 0 && cfg.workerMemory < minWorkerMemory {
		return cfg, fmt.Errorf("gale: WorkerMemory %d bytes is below the minimum of %d bytes, less than a task's own buffers "+
			"(--worker-memory takes units: 256MiB, 2GiB)", cfg.workerMemory, minWorkerMemory)
	}
	if cfg.jobID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.jobID = "job-" + hex.EncodeToString(b)
	}
	if cfg.workers <= 0 {
		cfg.workers = runtime.GOMAXPROCS(0)
		if cfg.backend != nil {
			if t := backends.TraitsOf(cfg.backend); t.MaxConcurrency > 0 {
				cfg.workers = t.MaxConcurrency
			}
		}
	}
	cfg.hintCap = cfg.applyHint()
	_, err := resolverFor(cfg.storeOptions)
	return cfg, err
}

// prepare resolves and sizes the sources and compiles the plan.
func prepare(ctx context.Context, p *Pipeline, cfg runConfig) (*engine.Job, error) {
	if err := p.Err(); err != nil {
		return nil, err
	}
	job := &engine.Job{ID: cfg.jobID, Inputs: map[int][]engine.InputSpec{}, Sinks: map[int]engine.Sink{},
		StoreOptions: cfg.storeOptions, WorkerMemory: cfg.workerMemory, SpillDir: cfg.spillDir}
	if cfg.dso != nil {
		job.DSO = &engine.DSOConfig{Servers: cfg.dso.servers, Token: cfg.dso.token}
	}
	logical := planner.Logical{}
	var errs []error
	var reads []readInputs // to keep outputs apart from inputs
	var sinks []*node
	for _, n := range p.nodes {
		pn := n.Node
		pn.Inputs = append([]int(nil), n.Inputs...)
		switch {
		case n.text != nil:
			var files []inputFile
			for _, pat := range n.text.patterns {
				fs, err := expandText(ctx, OpenStore, cfg.storeOptions, pat, cfg.readUncommitted)
				if err == nil {
					fs, err = withCodecs(fs)
				}
				if err != nil {
					errs = append(errs, &InputError{Transform: n.Label, Loc: n.Loc, Err: err})
					continue
				}
				files = append(files, fs...)
			}
			var ins []engine.InputSpec
			chunk, why := chunkSize(cfg, files)
			if n.text.recordSize > 0 {
				var err error
				if ins, err = recordSplits(files, chunk, n.text.recordSize); err != nil {
					errs = append(errs, &InputError{Transform: n.Label, Loc: n.Loc, Err: err})
				}
			} else if n.text.fileKernel != "" {
				ins = fileSplits(files, n.text.fileKernel, chunk, n.text.lines) // fileio.go
				if !n.text.lines {
					why = "one task per file"
				}
			} else if n.text.named {
				ins = namedTextSplits(files, chunk)
			} else {
				ins = textSplits(files, chunk)
			}
			if len(ins) > max(maxSourceTasks, len(files)) {
				errs = append(errs, &InputError{Transform: n.Label, Loc: n.Loc, Err: fmt.Errorf(
					"%d files in chunks of %d bytes make %d tasks, more than %d; "+
						"raise the chunk size (--chunk-size, gale.ChunkSize) to at least %d bytes",
					len(files), chunk, len(ins), maxSourceTasks, minChunkFor(files))})
			}
			reads = append(reads, readInputs{n: n, patterns: n.text.patterns, files: files})
			job.Inputs[n.ID] = ins
			pn.Splits = max(len(ins), 1)
			pn.SplitsWhy = why
			pn.SourceBytes = 0
			for _, f := range files {
				pn.SourceBytes += f.size
			}
		case n.slice != nil:
			ins := sliceSplits(n.slice, cfg.workers)
			job.Inputs[n.ID] = ins
			pn.Splits = len(ins)
		case n.gen != nil:
			ins := genSplits(n.gen, cfg.workers)
			job.Inputs[n.ID] = ins
			pn.Splits = len(ins)
			// The planner sizes shuffles from source bytes; a generator's
			// elements are taken as 16 bytes each.
			pn.SourceBytes = n.gen.n * generatedElementBytes
		case n.sink != nil:
			job.Sinks[n.ID] = engine.Sink{Format: n.sink.format, URL: n.sink.path, Overwrite: cfg.overwrite}
			if n.sink.path != "" {
				sinks = append(sinks, n)
			}
		}
		logical.Nodes = append(logical.Nodes, pn)
	}
	errs = append(errs, checkOutputsApart(reads, sinks))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	mem := cfg.workerMemory
	if mem == 0 {
		mem = engine.DefaultWorkerMemory
	}
	// A sort partition is what one task's sorter holds in memory: half the
	// budget, and never less than the sorter's own floor, so a small budget
	// does not multiply the tasks.
	popts := planner.Options{Parallelism: cfg.workers, Partitions: cfg.partitions, MaxShuffleReads: cfg.maxShuffleReads,
		NoLift: cfg.noLift, SortPartitionBytes: max(mem/2, minSortPartition), Glider: cfg.shuffle == GliderShuffle}
	if cfg.shuffle == AutoShuffle {
		popts.GliderAuto = true
		popts.Glider, popts.GliderUnavailable = gliderReachable(cfg) // glider_strategy.go
	}
	if popts.Glider {
		gliderPlanOptions(ctx, p, cfg, job, &popts) // glider_strategy.go
	}
	plan, err := planner.Compile(logical, popts)
	// Stages fused from unrelated transforms can read each other's side
	// inputs; each reader activated in turn starts a stage of its own.
	for _, rs := range p.reshuffles {
		if !errors.Is(err, planner.ErrSideCycle) {
			break
		}
		rs.activate(logical.Nodes)
		plan, err = planner.Compile(logical, popts)
	}
	if err != nil {
		return nil, err
	}
	job.Plan = plan
	return job, nil
}

// execute runs a prepared job and brings Collect results back.
func execute(ctx context.Context, p *Pipeline, cfg runConfig, job *engine.Job) (*Report, error) {
	// What killed jobs of earlier processes left in this machine's
	// temporary and spill directories goes first (CleanTemp removes only
	// what belongs to dead processes).
	var swept []error
	for _, dir := range []string{os.TempDir(), cfg.spillDir} {
		if dir != "" {
			if _, err := engine.CleanTemp(dir); err != nil {
				swept = append(swept, err)
			}
		}
	}
	// The temporary store.
	if cfg.temp == "" {
		dir, err := os.MkdirTemp("", "gale-"+cfg.jobID+"-")
		if err != nil {
			return nil, fmt.Errorf("gale: creating temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		// Tasks open it as an existing directory, so one that runs after
		// the job ended (a platform's late duplicate) does not re-create it.
		job.Temp = objstore.ExistingDirURL(dir)
	} else {
		job.Temp = joinURL(cfg.temp, cfg.jobID)
		defer removeTemp(context.WithoutCancel(ctx), job.Temp, cfg.storeOptions)
	}

	for _, sh := range job.Plan.Shuffles {
		if sh.Glider {
			stop, err := startGlider(ctx, p, cfg, job)
			if err != nil {
				return nil, err
			}
			defer stop()
			break
		}
	}

	backend, name := cfg.backend, cfg.backendName
	if backend == nil {
		w, err := NewWorker()
		if err != nil {
			return nil, err
		}
		defer w.Close()
		lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: cfg.workers})
		if err != nil {
			return nil, err
		}
		defer lb.Close()
		backend, name = lb, "local"
	}
	for _, n := range p.nodes {
		if n.collects != nil {
			n.collects.reset()
		}
	}
	monitor, stopUI, err := cfg.monitor(ctx, job.ID) // dashboard.go
	if err != nil {
		return nil, err
	}
	defer stopUI()
	open := engine.StoreOpener(OpenStore)
	if cfg.wrapStore != nil {
		open = func(ctx context.Context, rawURL string, opts map[string]string) (objstore.Store, error) {
			st, err := OpenStore(ctx, rawURL, opts)
			if err != nil {
				return nil, err
			}
			return cfg.wrapStore(st), nil
		}
	}
	report, err := engine.Run(ctx, engine.Config{Backend: backend, BackendName: name, Concurrency: cfg.workers,
		MaxAttempts: cfg.maxAttempts, OpenStore: open, CommitHook: cfg.commitHook, Progress: cfg.progress, Events: cfg.events,
		Monitor: monitor, TaskTimeout: cfg.taskTimeout, Speculation: cfg.speculation, Clock: cfg.clock}, job)
	if report != nil {
		report.Warnings = append(hintWarnings(cfg, job.Plan), report.Warnings...)
		for _, err := range swept {
			report.Warnings = append(report.Warnings, "removing what killed jobs left failed (gale gc retries): "+err.Error())
		}
	}
	if err != nil {
		return report, err
	}
	// Bring Collect results back to the driver.
	if len(report.Collected) > 0 {
		temp, err := OpenStore(ctx, job.Temp, cfg.storeOptions)
		if err != nil {
			return report, err
		}
		for node, keys := range report.Collected {
			if p.nodes[node].collects == nil {
				continue // a side input's records, read by its transforms
			}
			for _, k := range keys {
				data, err := readObject(ctx, temp, k)
				if err != nil {
					return report, err
				}
				if err := p.nodes[node].collects.decode(data); err != nil {
					return report, fmt.Errorf("gale: decoding collected %s: %w", k, err)
				}
			}
		}
	}
	return report, nil
}

func readObject(ctx context.Context, st objstore.Store, key string) ([]byte, error) {
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func joinURL(base, elem string) string {
	if u, err := url.Parse(base); err == nil && u.Scheme != "" {
		return base + "/" + elem
	}
	return base + string(os.PathSeparator) + elem
}

// removeTemp deletes everything the job left in a user-given temporary
// store.
func removeTemp(ctx context.Context, temp string, opts map[string]string) {
	st, err := OpenStore(ctx, temp, opts)
	if err != nil {
		return
	}
	objs, err := objstore.ListAll(ctx, st, "")
	if err != nil {
		return
	}
	for _, o := range objs {
		_ = st.Delete(ctx, o.Key)
	}
}

// generatedElementBytes is the size the planner assumes for a generated
// element.
const generatedElementBytes = 16

// sliceSplits divides encoded elements into about 4 splits per worker.
func sliceSplits(s *sliceSource, workers int) []engine.InputSpec {
	n := len(s.offsets) - 1
	parts := max(min(n, 4*workers), 1)
	ins := make([]engine.InputSpec, 0, parts)
	for i := range parts {
		lo, hi := n*i/parts, n*(i+1)/parts
		ins = append(ins, engine.InputSpec{Kind: engine.InputRecords, Inline: s.data[s.offsets[lo]:s.offsets[hi]]})
	}
	return ins
}

// genSplits divides a generator's indices into about 4 splits per worker.
func genSplits(g *genSource, workers int) []engine.InputSpec {
	parts := max(min(g.n, int64(4*workers)), 1)
	ins := make([]engine.InputSpec, 0, parts)
	for i := range parts {
		ins = append(ins, engine.InputSpec{Kind: engine.InputGenerate, Kernel: g.kernel, Lo: g.n * i / parts, Hi: g.n * (i + 1) / parts})
	}
	return ins
}

// Limits that keep a job's task count and per-task memory sane whatever
// the options.
const (
	minChunkSize     = 512
	minWorkerMemory  = 8 << 10
	minSortPartition = 1 << 20 // the smallest buffer of a sort task's sorter (sort.go)
	maxSourceTasks   = 100_000
)

// chunkSize returns the configured chunk size, or the planner's choice
// (planner.ChooseChunk) from the input's size, the workers, a function's
// memory (the worker memory budget, else the backend's memory per
// instance) and the probe's shortest worthwhile task (WithHint): about four
// chunks per worker, within [4 MiB, 64 MiB] and at most a quarter of the
// memory (a map task may buffer its chunk's shuffle output), but large
// enough that no source has more than maxSourceTasks chunks. It also says
// why.
func chunkSize(cfg runConfig, files []inputFile) (int64, string) {
	if cfg.chunk > 0 {
		return cfg.chunk, fmt.Sprintf("chunks of %s set for the job (--chunk-size, gale.ChunkSize)", planner.FormatBytes(cfg.chunk))
	}
	in := planner.ChunkInputs{Files: len(files), Concurrency: cfg.workers, MemoryBytes: cfg.workerMemory, MaxTasks: maxSourceTasks}
	for _, f := range files {
		in.InputBytes += f.size
	}
	if in.MemoryBytes == 0 && cfg.backend != nil {
		in.MemoryBytes = int64(backends.TraitsOf(cfg.backend).MemoryMiB) << 20
	}
	if cfg.hint != nil {
		in.MinTaskDuration = cfg.hint.MinTaskDuration
	}
	ch := planner.ChooseChunk(in)
	return ch.Bytes, ch.Why
}

// minChunkFor returns the smallest chunk size that cuts files into at most
// maxSourceTasks chunks (each file's last chunk may be short, so a chunk
// of total/(maxSourceTasks-files) is enough).
func minChunkFor(files []inputFile) int64 {
	var total int64
	for _, f := range files {
		total += f.size
	}
	room := int64(maxSourceTasks - len(files))
	if room <= 0 {
		return 1
	}
	return (total + room - 1) / room
}

// InputError is Run's error for an input of a read transform that cannot
// be resolved or split (a path that does not exist, a pattern matching
// nothing, a file not made of whole records). Several of them are joined.
type InputError struct {
	// Transform is the read transform's label, e.g. ReadText(books/*.txt),
	// and Loc where the program created it ("main.go:24").
	Transform, Loc string
	// Err says what is wrong with the input, naming it.
	Err error
}

func (e *InputError) Error() string {
	return fmt.Sprintf("gale: %s (%s): %v", e.Transform, e.Loc, e.Err)
}

// Unwrap returns e.Err.
func (e *InputError) Unwrap() error { return e.Err }
