package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/planner"
)

// Job is a compiled pipeline ready to run.
type Job struct {
	// ID names the job in object keys, logs and reports.
	ID string
	// Plan is the physical plan.
	Plan *planner.Plan
	// Inputs holds, for each source node, one input per split (task).
	Inputs map[int][]InputSpec
	// Sinks holds, for each sink node, where its output goes.
	Sinks map[int]Sink
	// Temp is the URL of the job's temporary store. The caller creates and
	// removes it.
	Temp string
	// StoreOptions configure store clients in workers (S3 endpoint, ...).
	StoreOptions map[string]string
	// WorkerMemory is each task's budget for buffered records (default
	// DefaultWorkerMemory); SpillDir is where sorts spill on workers.
	WorkerMemory int64
	SpillDir     string
	// DSO reaches shared-object servers for iterate workers.
	DSO *DSOConfig
	// Glider reaches the Glider cluster of glider shuffles.
	Glider *GliderConfig
	// GliderFilters holds, for each Filter node the plan lowered onto
	// Glider filter actions (Stage.GliderFilter), its registered line
	// predicate and argument.
	GliderFilters map[int]GliderFilter
}

// Sink describes one sink's destination.
type Sink struct {
	// Format is "text" or "raw" (part files committed to URL), or
	// "records" (encoded records kept in the temporary store for the
	// caller).
	Format string
	// URL is a text sink's output directory.
	URL string
	// Overwrite allows replacing existing output.
	Overwrite bool
}

// published reports whether the sink's output is committed to its URL.
func (s Sink) published() bool { return s.Format != "records" }

// Config configures a job run.
type Config struct {
	// Backend runs the tasks. Required.
	Backend backends.Backend
	// BackendName names the backend in reports.
	BackendName string
	// Concurrency bounds the attempts in flight. Default 1.
	Concurrency int
	// MaxAttempts bounds the attempts per task. Default 3.
	MaxAttempts int
	// OpenStore opens stores on the driver. Required.
	OpenStore StoreOpener
	// Progress receives progress updates; nil for none.
	Progress Progress
	// Events receives one JSON object per line for each job, stage and
	// task event; nil for none.
	Events io.Writer
	// Monitor receives the same events live (a dashboard); nil for none.
	Monitor Monitor
	// TaskTimeout abandons an attempt that runs this long and retries the
	// task. Zero: the backend's function timeout (plus a tenth and a
	// second for the answer to arrive), or DefaultTaskTimeout where the
	// backend publishes none; negative: no fixed limit.
	TaskTimeout time.Duration
	// Speculation configures backup attempts for stragglers and the
	// deadline derived from a stage's task durations (deadlines.go);
	// zero fields take DefaultSpeculation's values.
	Speculation Speculation
	// Clock is the driver's time source; nil for the system clock, or
	// for the backend itself if it is a Simulator that is also a Clock
	// (backends/sim), so that deadlines and backups run in its simulated
	// time.
	Clock Clock
	// TickInterval is how often the scheduler learns that time passed.
	// Default DefaultTickInterval.
	TickInterval time.Duration
	// CommitTimeout bounds the commit of the job's output and the cleanup
	// after it, which run to their end even when the job's context is
	// cancelled (a signal then waits for the commit, which is atomic
	// anyway). Default DefaultCommitTimeout.
	CommitTimeout time.Duration
	// CommitHook, if not nil, is called before each step of the commit
	// protocol that is not a store call (writing and removing job records,
	// renaming directories); an error stops the job there as if its
	// process died: nothing after it runs, cleanup included. Crash-point
	// tests set it (store calls they intercept through OpenStore).
	CommitHook func(step string) error
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Backend == nil {
		errs = append(errs, errors.New("engine: Config.Backend is required"))
	}
	if c.OpenStore == nil {
		errs = append(errs, errors.New("engine: Config.OpenStore is required"))
	}
	if c.Concurrency < 0 || c.MaxAttempts < 0 {
		errs = append(errs, errors.New("engine: Config.Concurrency and MaxAttempts must not be negative"))
	}
	if c.TickInterval < 0 || c.CommitTimeout < 0 {
		errs = append(errs, errors.New("engine: Config.TickInterval and CommitTimeout must not be negative"))
	}
	if err := c.Speculation.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// inlineLimit is the largest records input sent inside a descriptor;
// larger ones travel through the temporary store.
const inlineLimit = 32 << 10

// Run runs job to completion and commits its output. On failure no output
// of the job becomes visible and existing output is left as it was. If
// ctx ends first, the job is interrupted, not failed: see ErrInterrupted.
func Run(ctx context.Context, cfg Config, job *Job) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	traits := backends.TraitsOf(cfg.Backend)
	for _, sh := range job.Plan.Shuffles {
		if sh.Iterate && traits.MaxGang > 0 && sh.Partitions > traits.MaxGang {
			name := cfg.BackendName
			if name == "" {
				name = traits.Name
			}
			return nil, fmt.Errorf("engine: %s (%s) has %d workers that wait for each other, so all must run at once, "+
				"but backend %s runs at most %d such tasks together (a simulated platform's clock stands still while a task runs); "+
				"run the job on local, process or a cloud backend",
				job.Plan.Logical.Nodes[sh.Node].Label, job.Plan.Logical.Nodes[sh.Node].Loc, sh.Partitions, name, traits.MaxGang)
		}
		if sh.Iterate && sh.Partitions > cfg.Concurrency {
			return nil, fmt.Errorf("engine: %s has %d workers that synchronize with each other, so all must run at once, "+
				"but the job runs at most %d tasks at once; raise the concurrency (--workers) or lower the iterate workers",
				job.Plan.Logical.Nodes[sh.Node].Label, sh.Partitions, cfg.Concurrency)
		}
		if sh.Iterate && job.DSO == nil {
			return nil, fmt.Errorf("engine: %s needs shared-object servers (gale.WithDSO)", job.Plan.Logical.Nodes[sh.Node].Label)
		}
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	// The job is live (its staging areas are left alone by other jobs and
	// gale gc) until Run returns.
	defer jobStarted(job.ID)()
	d := &driver{cfg: cfg, job: job, report: newReport(job, cfg.BackendName)}
	d.events = NewEventLog(job.ID, cfg.Events, cfg.Monitor, func(err error) {
		// The job's output does not depend on its event log: the job goes
		// on, and the report says the log is incomplete.
		d.report.Warn("writing job events failed, the event log is incomplete: " + err.Error())
	})
	if err := d.prepare(ctx); err != nil {
		d.closeGlider()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("job %s %w", job.ID, interrupted(ctx))
		}
		return nil, err
	}
	defer d.closeGlider()
	stopHeartbeat := d.startHeartbeat()
	err := d.run(ctx)
	// The commit and the cleanup run to their end whatever happens to ctx:
	// stopping them halfway would leave what a crash leaves.
	cctx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), cfg.CommitTimeout)
	if err == nil {
		err = d.checkInputs(ctx) // inputcheck.go
	}
	if err == nil {
		// The commit runs under cctx: an interrupt during it waits for it
		// (it is atomic anyway), so it never stops halfway.
		err = d.commit(cctx)
	}
	stopHeartbeat()
	d.cleanup(cctx)
	cancelCommit()
	if d.loop != nil {
		d.loop.Finish(err)
	} else {
		d.report.End = time.Now()
		d.events.JobEnd(d.report, err, nil)
		if cfg.Progress != nil {
			cfg.Progress.Finish(d.report, err)
		}
	}
	if err != nil && d.loop != nil && err == d.loop.Interruption() {
		return d.report, fmt.Errorf("job %s %w", job.ID, err)
	}
	if err != nil {
		return d.report, fmt.Errorf("job %s: %w", job.ID, err)
	}
	return d.report, nil
}

// ErrInterrupted is wrapped by the error of a job whose context ended
// (it was cancelled: Ctrl-C, SIGTERM, the caller's cancel; or its
// deadline passed) before the job finished. Such a job is stopped, not
// failed: no task is retried after the context ends, attempts in flight
// are cancelled, nothing is committed, and the error also wraps the
// context's cause (errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds). A job a task's failure had already
// failed keeps that failure.
var ErrInterrupted = errors.New("engine: job interrupted")

// interruptedError is a job's interruption: it reads as its cause and
// matches ErrInterrupted. It wraps the context's error and, when the context was given one, its
// cause (a signal, the caller's reason).
type interruptedError struct{ ctxErr, cause error }

func (e *interruptedError) Error() string { return "interrupted: " + e.cause.Error() }

func (e *interruptedError) Unwrap() []error {
	if e.cause == e.ctxErr {
		return []error{e.ctxErr}
	}
	return []error{e.cause, e.ctxErr}
}

func (e *interruptedError) Is(target error) bool { return target == ErrInterrupted }

// interrupted returns the interruption of a job whose context ctx ended.
func interrupted(ctx context.Context) error {
	ctxErr := ctx.Err()
	if ctxErr == nil {
		ctxErr = context.Canceled
	}
	cause := context.Cause(ctx)
	if cause == nil {
		cause = ctxErr
	}
	return &interruptedError{ctxErr: ctxErr, cause: cause}
}

type driver struct {
	cfg     Config
	job     *Job
	sched   *Scheduler
	report  *Report
	temp    objstore.Store
	staging map[int]*staging    // per text sink node
	splits  map[int]*sortSplits // per sort shuffle, once its samplers are done (splits.go)
	glider  *gliderJob          // the glider strategy's driver side, if used
	sides   map[int]SideSpec    // per side input's sink node, once its writers are done (sideSpec)
	// shuffles holds, per data-shipping shuffle, where its partitions lie
	// in the winning map outputs (shuffleindex.go); the winners' own
	// partition lists are dropped once indexed.
	shuffles map[int]*shuffleIndex

	loop *Loop // runs the tasks, once prepare is done (loop.go)

	events *EventLog // nil when nothing watches the job's events
}

// staging is where a text sink's attempts write before the commit.
type staging struct {
	url   string // store URL of the staging area
	final string // the output URL
	local string // for file outputs, the staging and final directories
	dir   string
	store objstore.Store // the staging area
	out   objstore.Store // object-store outputs: the output
	// record is the job record: a file beside a local output, a key in
	// out for an object-store output.
	record    string
	committed bool // the output was switched to this job's
	// attemptsPrefix is the sink key prefix of the tasks' outputs in
	// store, where url is the attempts directory itself (local outputs);
	// empty where the tasks' keys carry it (object stores).
	attemptsPrefix string
}

func (d *driver) prepare(ctx context.Context) error {
	var err error
	d.temp, err = d.cfg.OpenStore(ctx, d.job.Temp, d.job.StoreOptions)
	if err != nil {
		return err
	}
	// A job record in the temporary store lets CleanTemp remove it if
	// this process is killed; cleanup removes it.
	if err := d.temp.Put(ctx, jobRecordKey, bytes.NewReader(newJobRecord(d.job.ID).encode())); err != nil {
		return fmt.Errorf("engine: writing to the temporary store %s: %w", d.job.Temp, err)
	}
	// Refuse existing output before anything runs.
	d.staging = map[int]*staging{}
	var errs []error
	for node, s := range d.job.Sinks {
		if !s.published() {
			continue
		}
		st, err := d.newStaging(ctx, node, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.staging[node] = st
	}
	if err := errors.Join(errs...); err != nil {
		d.cleanup(context.Background())
		return err
	}
	if err := d.prepareGlider(ctx); err != nil {
		d.cleanup(context.Background())
		return err
	}
	// Large records inputs travel through the temporary store.
	for node, ins := range d.job.Inputs {
		for i := range ins {
			in := &ins[i]
			if in.Kind == InputRecords && len(in.Inline) > inlineLimit {
				key := fmt.Sprintf("inputs/n%d-s%d", node, i)
				if err := d.temp.Put(ctx, key, strings.NewReader(string(in.Inline))); err != nil {
					return fmt.Errorf("engine: staging input: %w", err)
				}
				in.URL, in.Key, in.Inline = d.job.Temp, key, nil
			}
		}
	}
	return nil
}

// localPath returns the filesystem path of a file URL or bare path.
func localPath(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw, true
	}
	if u.Scheme == "file" {
		return u.Path, true
	}
	return "", false
}

func (d *driver) newStaging(ctx context.Context, node int, s Sink) (*staging, error) {
	label := d.job.Plan.Logical.Nodes[node].Label
	rec := newJobRecord(d.job.ID).encode()
	if p, ok := localPath(s.URL); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		// What dead jobs left is removed first: it never blocks a run.
		if _, err := cleanLocal(abs, time.Now()); err != nil {
			return nil, fmt.Errorf("%s: %w (gale gc %s retries; remove the files by hand if it fails too)", label, err, abs)
		}
		if fi, err := os.Stat(abs); err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s: output %s exists and is not a directory", label, abs)
			}
			ents, _ := os.ReadDir(abs)
			if len(ents) > 0 && !s.Overwrite {
				return nil, fmt.Errorf("%s: output directory %s already holds files; choose another path, "+
					"or let the job replace it with the run option gale.Overwrite(true) (--overwrite on the gale command line)", label, abs)
			}
			if len(ents) > 0 {
				if err := checkOverwritableDir(label, abs); err != nil {
					return nil, err
				}
			}
		}
		dir := localStagingDir(abs, d.job.ID)
		// Tasks write into the staging area's attempts directory, opened
		// as an existing directory: once the commit has removed it, a
		// task still running (a platform's duplicate delivery, late or
		// during the commit) fails instead of re-creating it, so nothing
		// it writes can reach the output.
		st := &staging{url: objstore.ExistingDirURL(filepath.Join(dir, attemptsDir)), final: abs, local: abs, dir: dir,
			record: dir + localRecordSuffix, attemptsPrefix: attemptsDir + "/"}
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, fmt.Errorf("%s: creating the output's parent directory: %w", label, err)
		}
		if err := d.step("write job record " + st.record); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(st.record, rec); err != nil {
			return nil, fmt.Errorf("%s: writing the job record beside output %s: %w", label, abs, err)
		}
		st.store, err = d.cfg.OpenStore(ctx, dir, d.job.StoreOptions)
		if err == nil {
			if err = os.Mkdir(filepath.Join(dir, attemptsDir), 0o755); err != nil {
				err = fmt.Errorf("%s: creating the staging directory %s: %w", label, dir, err)
			}
		}
		return st, err
	}
	out, err := d.cfg.OpenStore(ctx, s.URL, d.job.StoreOptions)
	if err != nil {
		return nil, err
	}
	_, state, err := cleanObjects(ctx, out, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: checking output %s: %w (gale gc %s retries)", label, s.URL, err, s.URL)
	}
	if data := state.dataKeys(); len(data) > 0 && !s.Overwrite {
		live := make([]string, 0, len(state.live))
		for j := range state.live {
			live = append(live, j)
		}
		sort.Strings(live)
		also := ""
		if len(live) > 0 {
			also = fmt.Sprintf(" (job %s is writing it now)", strings.Join(live, ", "))
		}
		return nil, fmt.Errorf("%s: output %s already holds objects%s; choose another path, "+
			"or let the job replace it with the run option gale.Overwrite(true) (--overwrite on the gale command line)", label, s.URL, also)
	}
	if len(state.dataKeys()) > 0 {
		if err := checkOverwritableStore(ctx, label, out); err != nil {
			return nil, err
		}
	}
	prefix := stagingPrefix(d.job.ID)
	st := &staging{url: strings.TrimSuffix(s.URL, "/") + "/" + strings.TrimSuffix(prefix, "/"), final: s.URL, out: out,
		record: prefix + jobRecordKey}
	if err := out.Put(ctx, st.record, bytes.NewReader(rec)); err != nil {
		return nil, fmt.Errorf("%s: writing the job record into output %s: %w", label, s.URL, err)
	}
	st.store, err = d.cfg.OpenStore(ctx, st.url, d.job.StoreOptions)
	return st, err
}

// run runs the job's tasks through a driver loop (loop.go).
func (d *driver) run(ctx context.Context) error {
	l, err := NewLoop(LoopConfig{Job: d.job.ID, Graph: PlanGraph(d.job.Plan), Plan: DescribePlan(d.job.Plan),
		Backend: d.cfg.Backend, BackendName: d.cfg.BackendName, Concurrency: d.cfg.Concurrency, MaxAttempts: d.cfg.MaxAttempts,
		TaskTimeout: d.cfg.TaskTimeout, Speculation: d.cfg.Speculation, Clock: d.cfg.Clock, TickInterval: d.cfg.TickInterval,
		Report: d.report, Events: d.events, Progress: d.cfg.Progress,
		StageReady: d.stageReady, Payload: d.spec, Result: d.result, Won: d.indexShuffles})
	if err != nil {
		return err
	}
	d.loop, d.sched = l, l.Scheduler()
	return l.Run(ctx)
}

// result reads a stage task's answer.
func (d *driver) result(_ context.Context, a Invoke, id string, res backends.Result) (*TaskResult, error) {
	var r TaskResult
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		return nil, fmt.Errorf("engine: task %s returned a malformed result: %w", id, err)
	}
	if r.Version != SpecVersion {
		return nil, fmt.Errorf("engine: task %s returned result version %d, want %d", id, r.Version, SpecVersion)
	}
	if res.Invocation.Instance != "" {
		// The platform's view of its instances wins over the worker's: an
		// in-process worker (local, sim) serves every simulated instance,
		// and only the backend knows which one ran the task and whether it
		// started cold.
		r.Instance, r.Cold = res.Invocation.Instance, res.Invocation.Cold
	}
	if err := d.checkShuffles(TaskSucceeded{TaskRef: a.TaskRef, Attempt: a.Attempt, Result: &r}); err != nil {
		return nil, err
	}
	return &r, nil
}

// spec builds the descriptor of one attempt.
func (d *driver) spec(a Invoke) ([]byte, error) {
	plan := d.job.Plan
	st := plan.Stages[a.Stage]
	s := TaskSpec{Kind: StageTaskKind, Version: SpecVersion, Job: d.job.ID, Stage: a.Stage, Task: a.Task,
		Attempt: a.Attempt, Roots: st.Roots, Temp: d.job.Temp, StoreOptions: d.job.StoreOptions,
		InputElem: plan.Logical.Nodes[st.Source].Elem, MemoryBytes: d.job.WorkerMemory, SpillDir: d.job.SpillDir,
		Tasks: st.Tasks, DSO: d.job.DSO, Glider: d.job.Glider}
	for _, op := range st.Ops {
		o := OpSpec{Kind: op.Kind, Node: op.Node, Kernel: op.Kernel, Elem: op.Elem, Children: op.Children,
			Shuffle: op.Shuffle, Combine: op.Combine, Params: op.Params}
		for _, sd := range op.Sides {
			side, err := d.sideSpec(sd)
			if err != nil {
				return nil, err
			}
			o.Sides = append(o.Sides, side)
		}
		switch op.Kind {
		case planner.OpSample:
			sh := plan.Shuffles[op.Shuffle]
			o.Range = true
			// About 100 keys per partition overall, at least 100 per task:
			// quantiles of such a sample land within a few percent of the
			// true ones.
			o.SampleSize = max(100, (100*sh.Partitions+st.Tasks-1)/st.Tasks)
		case planner.OpShuffleWrite:
			sh := plan.Shuffles[op.Shuffle]
			o.Partitions = sh.Partitions
			if sh.Range {
				o.Range = true
				sp := d.splits[sh.ID] // stageReady computed them
				o.Splits, o.SplitsKey = sp.inline, sp.key
			}
			o.Glider = sh.Glider
		case planner.OpSink:
			sink, ok := d.job.Sinks[op.Node]
			if !ok {
				return nil, fmt.Errorf("engine: sink node %d has no destination", op.Node)
			}
			if sink.published() {
				st := d.staging[op.Node]
				o.Sink = &SinkSpec{Format: sink.Format, URL: st.url, Prefix: attemptsDir + "/"}
				if st.attemptsPrefix != "" {
					o.Sink.Prefix = ""
				}
			} else {
				o.Sink = &SinkSpec{Format: "records", URL: d.job.Temp, Prefix: fmt.Sprintf("collect-%d/", op.Node)}
			}
		}
		s.Ops = append(s.Ops, o)
	}
	switch st.Input {
	case planner.FromSource:
		ins := d.job.Inputs[st.Source]
		if a.Task >= len(ins) {
			return nil, fmt.Errorf("engine: source %s has %d inputs for %d tasks", plan.Logical.Nodes[st.Source].Label, len(ins), st.Tasks)
		}
		s.Input = ins[a.Task]
		if st.GliderFilter {
			s.Input.GliderAction = d.glider.filters[st.ID][a.Task]
		}
	case planner.FromShuffle:
		sh := plan.Shuffles[st.Shuffle]
		s.Input = InputSpec{Kind: InputShuffle, Kernel: sh.Kernel, Combined: sh.Combined, Range: sh.Range,
			Glider: sh.Glider, Shuffle: sh.ID}
		if sh.GliderOutput {
			o := d.glider.sortOutputs[sh.ID][a.Task]
			s.Input.SortOutput = &o
		}
		if sh.Glider {
			break
		}
		// Only the segments that hold data: a reduce task's descriptor
		// grows with the map outputs that have records for it, one
		// segment per output covering the task's run of partitions.
		run := max(sh.ReadRun, 1)
		lo := a.Task * run
		hi := min(lo+run, sh.Partitions)
		if lo >= hi {
			return nil, fmt.Errorf("engine: shuffle %d: reduce task %d reads partitions [%d, %d) of %d", sh.ID, a.Task, lo, lo+run, sh.Partitions)
		}
		s.Input.Segments = d.shuffleIndex(sh).segments(lo, hi)
	}
	return json.Marshal(s)
}

// checkShuffles fails an attempt whose data-shipping shuffle outputs do
// not have their shuffles' partition counts.
func (d *driver) checkShuffles(e TaskSucceeded) error {
	for _, out := range e.Result.Shuffles {
		sh := d.job.Plan.Shuffles[out.Shuffle]
		if !sh.Glider && len(out.Parts) != sh.Partitions {
			return fmt.Errorf("engine: stage %d task %d attempt %d: shuffle %d output %s has %d partitions, want %d",
				e.Stage, e.Task, e.Attempt, sh.ID, out.Key, len(out.Parts), sh.Partitions)
		}
	}
	return nil
}

// indexShuffles adds a winning attempt's data-shipping shuffle outputs to
// the shuffles' indexes and drops their partition lists from the result.
func (d *driver) indexShuffles(e TaskSucceeded) {
	plan := d.job.Plan
	for i, out := range e.Result.Shuffles {
		sh := plan.Shuffles[out.Shuffle]
		if sh.Glider {
			continue
		}
		// The task's rank among the shuffle's producers: stages in the
		// order the plan lists them, tasks in order within each.
		var rank int64
		for _, ps := range sh.Producers {
			if ps == e.Stage {
				rank += int64(e.Task)
				break
			}
			rank += int64(plan.Stages[ps].Tasks)
		}
		d.shuffleIndex(sh).add(rank, out)
		e.Result.Shuffles[i].Parts = nil
	}
}

// shuffleIndex returns the index of shuffle sh, creating it.
func (d *driver) shuffleIndex(sh planner.Shuffle) *shuffleIndex {
	x := d.shuffles[sh.ID]
	if x == nil {
		if d.shuffles == nil {
			d.shuffles = map[int]*shuffleIndex{}
		}
		x = newShuffleIndex(sh.Partitions)
		d.shuffles[sh.ID] = x
	}
	return x
}

// stageReady prepares, on the driver loop, what a stage's descriptors
// need once the stages it reads are done: the split points of the sort
// shuffles it writes (splits.go) and the measure of the shuffle it reads.
// What takes I/O (storing large split points, asking Glider what its
// actions hold) it returns as a function the loop runs on a goroutine of
// its own before the stage's attempts start.
func (d *driver) stageReady(stage int) func(ctx context.Context) error {
	plan := d.job.Plan
	st := plan.Stages[stage]
	var work []func(ctx context.Context) error
	for _, op := range st.Ops {
		if op.Kind == planner.OpShuffleWrite && plan.Shuffles[op.Shuffle].Range {
			if sp := d.sortSplits(plan.Shuffles[op.Shuffle]); sp.key != "" {
				work = append(work, d.storeSplits(op.Shuffle))
			}
		}
	}
	if st.Input == planner.FromShuffle {
		if f := d.measureStored(plan.Shuffles[st.Shuffle]); f != nil {
			work = append(work, f)
		}
	}
	if len(work) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		for _, f := range work {
			if err := f(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// measureStored records what a shuffle holds once its producers are done.
// A glider shuffle's measure is a request to Glider, returned as a
// function to run off the driver loop.
func (d *driver) measureStored(sh planner.Shuffle) func(ctx context.Context) error {
	record := func(n int64) {
		d.report.stored(sh.ID, n)
		d.event(map[string]any{"event": "shuffle_stored", "shuffle": sh.ID, "bytes": n})
	}
	if sh.Glider {
		return func(ctx context.Context) error {
			n, err := d.gliderStored(ctx)
			if err != nil {
				return fmt.Errorf("engine: measuring Glider's stored bytes: %w", err)
			}
			record(n)
			return nil
		}
	}
	record(d.shuffleIndex(sh).stored)
	return nil
}

// sideSpec locates the materialized side input of sink node sd, whose
// writing stages have finished (the plan makes its readers wait). A side
// input larger than half a task's memory budget is refused: every task of
// the reading stage holds it whole.
func (d *driver) sideSpec(sd int) (SideSpec, error) {
	// The writers' winners no longer change once their stages are done,
	// so the spec is computed once for all the reading tasks.
	if side, ok := d.sides[sd]; ok {
		return side, nil
	}
	n := d.job.Plan.Logical.Nodes[sd]
	side := SideSpec{Node: sd, Kernel: n.Kernel, Label: fmt.Sprintf("%s (%s)", n.Label, n.Loc)}
	for _, o := range d.sinkOutputs(sd) {
		side.Keys = append(side.Keys, o.Key)
		side.Bytes += o.Bytes
	}
	budget := d.job.WorkerMemory
	if budget <= 0 {
		budget = DefaultWorkerMemory
	}
	if side.Bytes > budget/2 {
		return side, fmt.Errorf("engine: side input %s is %d bytes encoded, more than half of a task's memory budget (%d bytes), "+
			"and every task reading it holds it whole; join the collections instead (gale.Join), or raise gale.WorkerMemory",
			side.Label, side.Bytes, budget)
	}
	if d.sides == nil {
		d.sides = map[int]SideSpec{}
	}
	d.sides[sd] = side
	return side, nil
}

// sinkOutputs returns the winning outputs of a sink node in (stage, task,
// op) order.
func (d *driver) sinkOutputs(node int) []SinkOutput {
	var outs []SinkOutput
	for _, st := range d.job.Plan.Stages {
		for t := range st.Tasks {
			w := d.sched.Winner(TaskRef{st.ID, t})
			if w == nil {
				continue
			}
			for _, o := range w.Sinks {
				if o.Node == node {
					outs = append(outs, o)
				}
			}
		}
	}
	return outs
}

// commit moves every text sink's winning attempts to part files and
// publishes them; records sinks are listed in the report for the caller.
// ctx is the commit's own context, which no signal cancels.
func (d *driver) commit(ctx context.Context) error {
	d.reportSortOutputs() // glider.go
	nodes := make([]int, 0, len(d.job.Sinks))
	for n := range d.job.Sinks {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	for _, node := range nodes {
		outs := d.sinkOutputs(node)
		sink := d.job.Sinks[node]
		if !sink.published() {
			for _, o := range outs {
				d.report.Collected[node] = append(d.report.Collected[node], o.Key)
			}
			continue
		}
		st := d.staging[node]
		var err error
		if st.local != "" {
			err = d.commitLocal(ctx, node, st, outs, sink.Overwrite)
		} else {
			err = d.commitObjects(ctx, node, st, outs, sink.Overwrite)
		}
		if err != nil {
			return err
		}
		d.report.Outputs = append(d.report.Outputs, st.final)
	}
	return nil
}

// placeParts moves (or, for Glider sort outputs, copies) the winning
// outputs to their part names in dst; from maps a winner's key in the
// staging store to its key in dst. It returns the manifest of the parts.
func (d *driver) placeParts(ctx context.Context, node int, st *staging, dst objstore.Store, outs []SinkOutput,
	from func(string) string, partJob string) (*objstore.Manifest, error) {
	m := &objstore.Manifest{Job: d.job.ID}
	for i, o := range outs {
		part := objstore.PartName(i, partJob)
		if o.Glider != "" {
			// A sort action wrote this part file in Glider (glider.go).
			if err := d.commitGliderOutput(ctx, node, dst, o, part); err != nil {
				return nil, err
			}
		} else if err := objstore.Move(ctx, dst, from(o.Key), part); err != nil {
			return nil, fmt.Errorf("engine: committing %s: %w", o.Key, err)
		}
		m.Parts = append(m.Parts, objstore.ManifestPart{Key: part})
	}
	// Sizes from one listing rather than a request per part.
	objs, err := objstore.ListAll(ctx, dst, "part-")
	if err != nil {
		return nil, fmt.Errorf("engine: committing %s: %w", st.final, err)
	}
	size := map[string]int64{}
	for _, o := range objs {
		size[o.Key] = o.Size
	}
	for i := range m.Parts {
		n, ok := size[m.Parts[i].Key]
		if !ok {
			return nil, fmt.Errorf("engine: committing %s: part %s is missing after it was placed", st.final, m.Parts[i].Key)
		}
		m.Parts[i].Size = n
	}
	return m, nil
}

// attemptsDir is the staging area's directory (key prefix) of the tasks'
// outputs.
const attemptsDir = "attempts"

// removeAllRetry is os.RemoveAll, tried again while a task still running
// creates a file in the directory as it is removed (its write then fails:
// the directory is opened by the tasks as one that must exist).
func removeAllRetry(dir string) error {
	var err error
	for range 10 {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
	}
	return err
}

// commitLocal completes the staging directory (parts and manifest) and
// swaps it with the output directory.
func (d *driver) commitLocal(ctx context.Context, node int, st *staging, outs []SinkOutput, overwrite bool) error {
	m, err := d.placeParts(ctx, node, st, st.store, outs, func(k string) string { return st.attemptsPrefix + k }, "")
	if err != nil {
		return err
	}
	// Every winner has been moved out of attempts/; what is left there
	// was written by attempts that lost (they failed or were lost after
	// writing, or ran twice) and must not be published.
	if err := d.step("remove losing attempts"); err != nil {
		return err
	}
	if err := removeAllRetry(filepath.Join(st.dir, attemptsDir)); err != nil {
		return fmt.Errorf("engine: removing losing attempts' output from %s: %w", st.dir, err)
	}
	if err := st.store.Put(ctx, objstore.SuccessKey, bytes.NewReader(m.Encode())); err != nil {
		return fmt.Errorf("engine: committing %s: %w", st.final, err)
	}
	if err := swapLocal(st, overwrite, d.step); err != nil {
		return err
	}
	st.committed = true
	return nil
}

// commitObjects moves the parts beside the output's current ones, then
// switches the output to them with one Put of its manifest, then deletes
// what the switch superseded.
func (d *driver) commitObjects(ctx context.Context, node int, st *staging, outs []SinkOutput, overwrite bool) error {
	prefix := stagingPrefix(d.job.ID)
	m, err := d.placeParts(ctx, node, st, st.out, outs, func(k string) string { return prefix + k }, d.job.ID)
	if err != nil {
		return err
	}
	if !overwrite {
		// Another job may have committed here since this one started.
		if _, err := st.out.Stat(ctx, objstore.SuccessKey); err == nil {
			return fmt.Errorf("engine: output %s was committed by another job while this one ran; "+
				"run again with gale.Overwrite(true) (--overwrite on the gale command line) to replace it", st.final)
		} else if !errors.Is(err, objstore.ErrNotExist) {
			return fmt.Errorf("engine: committing %s: %w", st.final, err)
		}
	}
	// The switch. A failed Put may still have happened (the answer was
	// lost): the manifest in place says.
	if err := st.out.Put(ctx, objstore.SuccessKey, bytes.NewReader(m.Encode())); err != nil {
		b, rerr := readAll(ctx, st.out, objstore.SuccessKey, 0, -1)
		if cur, perr := objstore.ParseManifest(b); rerr != nil || perr != nil || cur == nil || cur.Job != d.job.ID {
			return fmt.Errorf("engine: committing %s: %w", st.final, err)
		}
	}
	st.committed = true
	// Delete what the new output superseded; the output is committed
	// whatever happens here, and what is left is garbage that the next
	// job on this output, or gale gc, removes.
	state, err := readOutput(ctx, st.out, time.Now())
	if err == nil {
		var errs []error
		for _, k := range state.garbage(d.job.ID) {
			errs = append(errs, st.out.Delete(ctx, k))
		}
		if overwrite {
			// Objects that were in the output before, not Gale's.
			listed := map[string]bool{objstore.SuccessKey: true}
			for _, p := range m.Parts {
				listed[p.Key] = true
			}
			for _, k := range state.dataKeys() {
				if _, isPart := objstore.ParsePartName(k); !listed[k] && !isPart {
					errs = append(errs, st.out.Delete(ctx, k))
				}
			}
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		d.warn(fmt.Sprintf("output %s is committed, but removing the objects it replaced failed (gale gc %s removes them): %v",
			st.final, st.final, err))
	}
	return nil
}

// step calls Config.CommitHook.
func (d *driver) step(name string) error {
	if d.cfg.CommitHook == nil {
		return nil
	}
	return d.cfg.CommitHook(name)
}

// warn adds a warning to the report.
func (d *driver) warn(msg string) { d.report.Warn(msg) }

// startHeartbeat refreshes the job's records every HeartbeatInterval
// until the returned function is called; the function waits for the
// goroutine to end.
func (d *driver) startHeartbeat() (stop func()) {
	if len(d.staging) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		started := newJobRecord(d.job.ID)
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r := started
			r.Heartbeat = time.Now().UTC()
			b := r.encode()
			ctx, cancel := context.WithTimeout(context.Background(), HeartbeatInterval)
			for _, st := range d.staging {
				if st.local != "" {
					_ = writeFileAtomic(st.record, b) // a missed beat is retried next interval
				} else {
					_ = st.out.Put(ctx, st.record, bytes.NewReader(b))
				}
			}
			cancel()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// cleanup removes the staging areas — everything after a failure, what
// publishing left after a success (the previous output, on filesystems) —
// and, last, the job records. A job that failed before its switch also
// removes the parts it had moved beside the output.
func (d *driver) cleanup(ctx context.Context) {
	if d.temp != nil {
		defer func() { _ = d.temp.Delete(ctx, jobRecordKey) }() // its owner removes the rest of the store
	}
	nodes := make([]int, 0, len(d.staging))
	for n := range d.staging {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	for _, n := range nodes {
		st := d.staging[n]
		var errs []error
		if st.local != "" {
			if d.step("remove staging directory "+st.dir) != nil {
				return
			}
			errs = append(errs, os.RemoveAll(st.dir), os.RemoveAll(st.dir+localOldSuffix))
			if d.step("remove job record "+st.record) != nil {
				return
			}
			if err := os.Remove(st.record); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		} else if st.out != nil {
			objs, err := objstore.ListAll(ctx, st.out, "")
			errs = append(errs, err)
			prefix := stagingPrefix(d.job.ID)
			for _, o := range objs {
				job, isPart := objstore.ParsePartName(o.Key)
				if strings.HasPrefix(o.Key, prefix) && o.Key != st.record || isPart && job == d.job.ID && !st.committed {
					errs = append(errs, st.out.Delete(ctx, o.Key))
				}
			}
			if err := errors.Join(errs...); err == nil {
				errs = append(errs, st.out.Delete(ctx, st.record))
			}
		}
		if err := errors.Join(errs...); err != nil {
			d.warn(fmt.Sprintf("removing job %s's staging files for %s failed (the next job on this output, or gale gc %s, removes them): %v",
				d.job.ID, st.final, st.final, err))
		}
	}
}

// event emits an event of a kind EventLog has no method for.
func (d *driver) event(fields map[string]any) { d.events.Emit(fields) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
