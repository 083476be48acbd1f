package galerunner

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/beam/internal/worker"
	"github.com/galeproject/gale/engine"
	"google.golang.org/protobuf/proto"
)

// Run runs a portable Beam pipeline on Gale and returns its result. It
// rejects a pipeline that uses unsupported features before any task
// starts, with an error wrapping ErrUnsupported that lists them.
func Run(ctx context.Context, pipeline *pipepb.Pipeline, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	plan, err := stages.Build(pipeline, stages.Options{Partitions: cfg.Partitions})
	if err != nil {
		return nil, fmt.Errorf("galerunner: %w", err)
	}
	if cfg.JobID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.JobID = "beam-" + hex.EncodeToString(b)
	}
	d := &driver{cfg: cfg, plan: plan, winners: map[*engine.TaskResult]*worker.Result{}}
	if cfg.Temp == "" {
		dir, err := os.MkdirTemp("", "gale-"+cfg.JobID+"-")
		if err != nil {
			return nil, fmt.Errorf("galerunner: creating temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		d.temp = dir
	} else {
		d.temp = cfg.Temp + "/" + cfg.JobID
		defer d.removeTemp(context.WithoutCancel(ctx))
	}
	backend := cfg.Backend
	if backend == nil {
		w, err := worker.New(worker.Config{OpenStore: openStore})
		if err != nil {
			return nil, err
		}
		lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: cfg.Workers})
		if err != nil {
			return nil, err
		}
		defer lb.Close()
		backend = lb
	}
	d.backend = backend
	if err := d.prepare(); err != nil {
		return nil, err
	}
	graph := d.graph()
	d.report = engine.NewReport(cfg.JobID, cfg.BackendName, graph)
	d.events = engine.NewEventLog(cfg.JobID, cfg.Events, cfg.Monitor, func(err error) {
		d.report.Warn("writing job events failed, the event log is incomplete: " + err.Error())
	})
	// The engine's driver loop runs the tasks: retries, backups of
	// stragglers, deadlines, interruption, events, progress and the
	// report's bookkeeping are the engine's.
	loop, err := engine.NewLoop(engine.LoopConfig{Job: cfg.JobID, Graph: graph, Plan: planInfo(plan),
		Backend: backend, BackendName: cfg.BackendName, Concurrency: cfg.Workers, MaxAttempts: cfg.MaxAttempts,
		TaskTimeout: cfg.TaskTimeout, Speculation: cfg.Speculation, Clock: cfg.Clock, Report: d.report,
		Events: d.events, Progress: cfg.Progress, Payload: d.task, Result: d.result,
		TimeoutFix: "raise the task timeout (galerunner.Config.TaskTimeout, --gale_task_timeout)"})
	if err != nil {
		return nil, fmt.Errorf("galerunner: %w", err)
	}
	d.sched = loop.Scheduler()
	err = loop.Run(ctx)
	loop.Finish(err)
	res := &Result{Report: d.report, metrics: d.userMetrics()}
	for _, st := range plan.Stages {
		res.Stages = append(res.Stages, st.Name)
	}
	if cfg.Report != nil {
		d.report.Print(cfg.Report)
		printMetrics(cfg.Report, res.metrics, pipeline.GetComponents().GetTransforms())
	}
	if err != nil {
		return res, fmt.Errorf("galerunner: job %s: %w", cfg.JobID, err)
	}
	return res, nil
}

type driver struct {
	cfg         Config
	plan        *stages.Plan
	backend     backends.Backend
	temp        string
	descriptors [][]byte
	logSeverity int // Task.LogSeverity
	sched       *engine.Scheduler
	report      *engine.Report
	events      *engine.EventLog // nil when nothing watches the job's events

	mu      sync.Mutex // guards winners, written by attempts' goroutines
	winners map[*engine.TaskResult]*worker.Result
}

func (d *driver) prepare() error {
	d.logSeverity = worker.MinSeverity(context.Background())
	for _, st := range d.plan.Stages {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(st.Descriptor)
		if err != nil {
			return fmt.Errorf("galerunner: encoding stage %d: %w", st.ID, err)
		}
		d.descriptors = append(d.descriptors, b)
	}
	return nil
}

// graph returns the plan's stages as the engine's scheduler sees them.
func (d *driver) graph() engine.TaskGraph {
	var g engine.TaskGraph
	for _, st := range d.plan.Stages {
		g.Stages = append(g.Stages, engine.GraphStage{Tasks: st.Tasks, Deps: st.Deps, Label: st.Name})
	}
	return g
}

// result reads a Beam stage task's answer; the engine keeps what it needs
// (times, instance, metrics), the driver the rest (outputs, Beam metrics).
func (d *driver) result(ctx context.Context, a engine.Invoke, id string, res backends.Result) (*engine.TaskResult, error) {
	var r worker.Result
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		return nil, fmt.Errorf("galerunner: task %s returned a malformed result: %w", id, err)
	}
	if r.Version != worker.Version {
		return nil, fmt.Errorf("galerunner: task %s returned result version %d, want %d", id, r.Version, worker.Version)
	}
	if r.Instance == "" {
		r.Instance = res.Invocation.Instance
	}
	d.printLogs(ctx, a, &r)
	er := &engine.TaskResult{Version: engine.SpecVersion, Start: r.Start, End: r.End, Instance: r.Instance, Cold: r.Cold, Metrics: r.Metrics}
	d.mu.Lock()
	d.winners[er] = &r
	d.mu.Unlock()
	return er, nil
}

// printLogs writes what an attempt's code logged to the driver's Beam
// log, each message naming its stage and task.
func (d *driver) printLogs(ctx context.Context, a engine.Invoke, r *worker.Result) {
	if len(r.Logs) == 0 && r.LogsDropped == 0 {
		return
	}
	label := fmt.Sprintf("[stage %d task %d] ", a.Stage, a.Task)
	if a.Attempt > 1 {
		label = fmt.Sprintf("[stage %d task %d attempt %d] ", a.Stage, a.Task, a.Attempt)
	}
	ctx = context.WithoutCancel(ctx)
	for _, e := range r.Logs {
		log.Output(ctx, log.Severity(e.Severity), 0, label+e.Message)
	}
	if r.LogsDropped > 0 {
		log.Output(ctx, log.SevWarn, 0, fmt.Sprintf("%s%d more log message(s) dropped: a task returns at most 1 MiB of them", label, r.LogsDropped))
	}
}

// winner returns the winning result of a task.
func (d *driver) winner(stage, task int) *worker.Result {
	er := d.sched.Winner(engine.TaskRef{Stage: stage, Task: task})
	if er == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.winners[er]
}

// segments returns partition part (all partitions when part < 0) of every
// producer's output into edge e.
func (d *driver) segments(e *stages.Edge, part int) ([]engine.Segment, error) {
	var segs []engine.Segment
	for _, ps := range e.Producers {
		for t := range d.plan.Stages[ps].Tasks {
			w := d.winner(ps, t)
			if w == nil {
				return nil, fmt.Errorf("galerunner: stage %d task %d has no result for edge %d", ps, t, e.ID)
			}
			for _, o := range w.Outputs {
				if o.Edge != e.ID {
					continue
				}
				for i, p := range o.Parts {
					if part >= 0 && i != part {
						continue
					}
					segs = append(segs, engine.Segment{Key: o.Key, Off: p.Off, Len: p.Len})
				}
				if part >= len(o.Parts) {
					return nil, fmt.Errorf("galerunner: edge %d output %s has %d partitions, want %d", e.ID, o.Key, len(o.Parts), e.Partitions)
				}
			}
		}
	}
	return segs, nil
}

// task builds the descriptor of one attempt. It runs on the engine's
// driver loop (LoopConfig.Payload): it reads winners and does no I/O.
func (d *driver) task(a engine.Invoke) ([]byte, error) {
	st := d.plan.Stages[a.Stage]
	t := worker.Task{Kind: worker.Kind, Version: worker.Version, Job: d.cfg.JobID, Stage: a.Stage, Task: a.Task, Attempt: a.Attempt,
		Descriptor: d.descriptors[a.Stage], MemoryBytes: d.cfg.WorkerMemory, Temp: d.temp, StoreOptions: d.cfg.StoreOptions,
		Options: d.cfg.PipelineOptions, LogSeverity: d.logSeverity}
	t.Input = worker.Input{Transform: st.Input.Transform, Impulse: st.Input.Impulse, TestStream: st.Input.TestStream}
	if !st.Input.Root() {
		e := d.plan.Edges[st.Input.Edge]
		t.Input.Edge = edgeKind(e.Kind)
		t.Input.Merging, t.Input.Timestamps, t.Input.OutputTime, t.Input.Replay = e.Merging, e.Timestamps, int(e.OutputTime), e.Replay
		segs, err := d.segments(e, a.Task)
		if err != nil {
			return nil, err
		}
		t.Input.Segments = segs
	}
	for _, o := range st.Outputs {
		e := d.plan.Edges[o.Edge]
		t.Outputs = append(t.Outputs, worker.Output{Transform: o.Transform, Edge: o.Edge, Kind: edgeKind(e.Kind),
			Partitions: e.Partitions, Coder: o.Coder, Merging: e.Merging, Timestamps: e.Timestamps, Epochs: e.Replay != nil && e.Replay.Epochs})
	}
	for _, s := range st.Sides {
		segs, err := d.segments(d.plan.Edges[s.Edge], -1)
		if err != nil {
			return nil, err
		}
		t.Sides = append(t.Sides, worker.Side{Transform: s.Transform, Local: s.Local, Multimap: s.Multimap, Coder: s.Coder, Segments: segs})
	}
	return json.Marshal(t)
}

func edgeKind(k stages.EdgeKind) string {
	switch k {
	case stages.Group:
		return worker.EdgeGroup
	case stages.Side:
		return worker.EdgeSide
	case stages.Keyed:
		return worker.EdgeKeyed
	}
	return worker.EdgeRedistribute
}

// printMetrics adds the pipeline's Beam metrics to the job report: one
// line per counter and distribution, by step, namespace and name, steps
// named by their transforms' unique names.
func printMetrics(w io.Writer, m *metrics.Results, transforms map[string]*pipepb.PTransform) {
	q := m.AllMetrics()
	cs, ds := q.Counters(), q.Distributions()
	if len(cs) == 0 && len(ds) == 0 {
		return
	}
	fmt.Fprintln(w, "  Beam metrics:")
	less := func(a, b metrics.StepKey) int {
		return cmp.Or(cmp.Compare(a.Step, b.Step), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	}
	slices.SortFunc(cs, func(a, b metrics.CounterResult) int { return less(a.Key, b.Key) })
	slices.SortFunc(ds, func(a, b metrics.DistributionResult) int { return less(a.Key, b.Key) })
	step := func(id string) string {
		if n := transforms[id].GetUniqueName(); n != "" {
			return n
		}
		return id
	}
	for _, c := range cs {
		fmt.Fprintf(w, "    counter %s.%s (%s): %d\n", c.Key.Namespace, c.Key.Name, step(c.Key.Step), c.Result())
	}
	for _, d := range ds {
		v := d.Result()
		fmt.Fprintf(w, "    distribution %s.%s (%s): count %d, sum %d, min %d, max %d\n", d.Key.Namespace, d.Key.Name, step(d.Key.Step), v.Count, v.Sum, v.Min, v.Max)
	}
}

// userMetrics merges the Beam metrics of every winning attempt.
func (d *driver) userMetrics() *metrics.Results {
	counters := map[metrics.StepKey]int64{}
	dists := map[metrics.StepKey]metrics.DistributionValue{}
	for _, st := range d.plan.Stages {
		for t := range st.Tasks {
			w := d.winner(st.ID, t)
			if w == nil {
				continue
			}
			for _, m := range w.User {
				k := metrics.StepKey{Step: m.Step, Namespace: m.Namespace, Name: m.Name}
				switch m.Kind {
				case "counter":
					counters[k] += m.Value
				case "distribution":
					v, ok := dists[k]
					if !ok {
						v = metrics.DistributionValue{Min: m.Min, Max: m.Max}
					}
					v.Count += m.Count
					v.Sum += m.Sum
					v.Min = min(v.Min, m.Min)
					v.Max = max(v.Max, m.Max)
					dists[k] = v
				}
			}
		}
	}
	return metrics.NewResults(metrics.MergeCounters(counters, counters), metrics.MergeDistributions(dists, dists), nil, nil, nil)
}

// removeTemp deletes what the job left in a user-given temporary store.
func (d *driver) removeTemp(ctx context.Context) {
	st, err := openStore(ctx, d.temp, d.cfg.StoreOptions)
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
