package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/shuffle/objects"
	"google.golang.org/protobuf/proto"
)

// StoreOpener opens the object store at url with client options.
type StoreOpener = engine.StoreOpener

// Config configures a Worker.
type Config struct {
	// OpenStore opens the temporary store named in tasks. Required.
	OpenStore StoreOpener
	// Instance identifies this worker in results; default: random.
	Instance string
	// SpillDir is the local directory under which a task that groups by
	// sorting creates its private spill directory, and one for its hot
	// keys' value files (both removed when the task ends). Default:
	// os.TempDir(), /tmp on a function platform.
	SpillDir string
}

// Worker runs Beam stage tasks. It is safe for concurrent use.
type Worker struct {
	instance string
	spillDir string
	warm     atomic.Bool
	// flushBytes is how many bytes of partial accumulators a sink holds
	// before merging them (combineFlushBytes; smaller in tests).
	flushBytes int

	stores *engine.StoreCache
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.OpenStore == nil {
		return nil, errors.New("worker: Config.OpenStore is required")
	}
	if cfg.Instance == "" {
		cfg.Instance = "beam-worker-" + randomID(6)
	}
	return &Worker{instance: cfg.Instance, spillDir: cfg.SpillDir, flushBytes: combineFlushBytes, stores: engine.NewStoreCache(cfg.OpenStore)}, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func (w *Worker) store(ctx context.Context, url string, opts map[string]string) (objstore.Store, error) {
	return w.stores.Open(ctx, url, opts)
}

// Handle runs one serialized Task and returns its serialized Result. It
// is a backends.Handler.
func (w *Worker) Handle(ctx context.Context, payload []byte) ([]byte, error) {
	var t Task
	if err := json.Unmarshal(payload, &t); err != nil {
		return nil, fmt.Errorf("worker: malformed Beam task descriptor: %w", err)
	}
	if t.Kind != Kind {
		return nil, fmt.Errorf("worker: task descriptor kind %q, want %q", t.Kind, Kind)
	}
	if t.Version != Version {
		return nil, fmt.Errorf("worker: Beam task descriptor version %d, this worker speaks version %d; "+
			"build the worker from the same Gale version as the driver", t.Version, Version)
	}
	res, err := w.Run(ctx, &t)
	if err != nil {
		return nil, fmt.Errorf("job %s stage %d task %d attempt %d: %w", t.Job, t.Stage, t.Task, t.Attempt, err)
	}
	return json.Marshal(res)
}

// Run runs one task.
func (w *Worker) Run(ctx context.Context, t *Task) (res *Result, err error) {
	res = &Result{Version: Version, Start: time.Now(), Instance: w.instance, Cold: !w.warm.Swap(true)}
	tl := &taskLog{min: log.Severity(t.LogSeverity)}
	ctx = withTaskLog(ctx, tl)
	defer func() {
		if err != nil {
			if tail := tl.tail(failedLogLines); tail != "" {
				err = fmt.Errorf("%w\nthe task's last log messages:%s", err, tail)
			}
			return
		}
		res.Logs, res.LogsDropped = tl.result()
	}()
	var desc fnpb.ProcessBundleDescriptor
	if err := proto.Unmarshal(t.Descriptor, &desc); err != nil {
		return nil, fmt.Errorf("worker: malformed ProcessBundleDescriptor: %w", err)
	}
	coders := graphx.NewCoderUnmarshaller(desc.GetCoders())
	release, err := optionsGate.acquire(ctx, t.Options)
	if err != nil {
		return nil, err
	}
	defer release()
	temp, err := w.store(ctx, t.Temp, t.StoreOptions)
	if err != nil {
		return nil, err
	}
	m := &res.Metrics
	var readMu sync.Mutex // the feeder and lazily loaded side inputs count reads
	readSeg := func(s engine.Segment) ([]byte, error) {
		b, err := objects.Read(ctx, temp, s)
		if err != nil {
			return nil, err
		}
		readMu.Lock()
		m.Requests++
		m.ShuffleBytesRead += s.Len
		readMu.Unlock()
		return b, nil
	}
	readSegs := func(segs []engine.Segment) ([][]byte, error) {
		out := make([][]byte, 0, len(segs))
		for _, s := range segs {
			if s.Len == 0 {
				continue
			}
			b, err := readSeg(s)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	}

	dm := &dataManager{source: t.Input.Transform, sinks: map[string]*sinkWriter{}}
	var combiners []*combiner
	defer func() {
		for _, s := range dm.sinks {
			s.abort()
		}
		for _, c := range combiners {
			if derr := c.down(ctx); derr != nil && err == nil {
				err = fmt.Errorf("worker: tearing down a merge plan of stage %d: %w", t.Stage, derr)
			}
		}
	}()
	for _, o := range t.Outputs {
		c, err := coders.Coder(o.Coder)
		if err != nil {
			return nil, fmt.Errorf("worker: coder of %s: %w", o.Transform, err)
		}
		var comb *combiner
		if o.Kind == EdgeGroup && !o.Merging && !o.Timestamps && !o.Epochs {
			if comb, err = newCombiner(&desc, o.Transform); err != nil {
				return nil, err
			}
			if comb != nil {
				combiners = append(combiners, comb)
			}
		}
		s, err := newSinkWriter(ctx, o, c, t.Task, comb)
		if err != nil {
			return nil, err
		}
		s.flushBytes = w.flushBytes
		dm.sinks[o.Transform] = s
	}
	// Large groups' values, read by the plan through sr: removed after
	// the plan and its feeder have stopped.
	files := &iterableFiles{parent: w.spillDir}
	defer func() {
		if rerr := files.remove(); rerr != nil && err == nil {
			res, err = nil, rerr
		}
	}()
	sr := &stateReader{sides: map[string]*sideData{}, iterables: files}
	var sideMu sync.Mutex // side inputs load lazily, possibly from several transforms
	for _, s := range t.Sides {
		c, err := coders.Coder(s.Coder)
		if err != nil {
			return nil, fmt.Errorf("worker: coder of side input %s of %s: %w", s.Local, s.Transform, err)
		}
		segs := s.Segments
		sr.sides[s.Transform+"/"+s.Local] = newSideData(func() ([][]byte, error) {
			sideMu.Lock()
			defer sideMu.Unlock()
			return readSegs(segs)
		}, c, s.Multimap)
	}
	srcCoder, err := sourceCoder(&desc, coders, t.Input.Transform)
	if err != nil {
		return nil, err
	}
	mem := t.MemoryBytes
	if mem <= 0 {
		mem = DefaultMemoryBytes
	}
	var recordsIn atomic.Int64
	// drive runs the plan's bundles: one over the input, then the work
	// splittable DoFns deferred (resume.go), or for a keyed input batches
	// of keys and their timers (keyed.go).
	drive := func(bundle bundleFunc) error {
		if err := bundle(dm.feed); err != nil {
			return err
		}
		return resume(ctx, dm, bundle)
	}
	if t.Input.TestStream != nil {
		// One bundle per element event of the TestStream, each tagging
		// what it writes with its epoch (replay.go).
		evs, err := testStreamBundles(t.Input.TestStream, srcCoder)
		if err != nil {
			return nil, err
		}
		drive = func(bundle bundleFunc) error {
			for _, ev := range evs {
				dm.epoch = ev.epoch
				recordsIn.Add(ev.n)
				err := bundle(func(ctx context.Context, ch chan<- exec.Elements) error {
					ck := &chunker{ch: ch, transform: t.Input.Transform}
					if err := ck.add(ctx, ev.elems); err != nil {
						return err
					}
					return ck.flush(ctx)
				})
				if err != nil {
					return err
				}
			}
			return resume(ctx, dm, bundle)
		}
	}
	if t.Input.Edge == EdgeKeyed {
		q, err := newTimerQueue(&desc, coders)
		if err != nil {
			return nil, err
		}
		state := newUserState(files, mem/4)
		defer state.reset()
		sr.state = state
		segs := t.Input.Segments
		read := func() ([]byte, error) {
			for len(segs) > 0 && segs[0].Len == 0 {
				segs = segs[1:]
			}
			if len(segs) == 0 {
				return nil, nil
			}
			s := segs[0]
			segs = segs[1:]
			return readSeg(s)
		}
		lim := keyedLimits{group: groupLimits{memory: mem / 2, dir: w.spillDir, files: files},
			batchBytes: mem / 8, stateBytes: state.bytes, stateLimit: mem / 8}
		chunks := make(chan keyedChunk, 4)
		pctx, pcancel := context.WithCancel(ctx)
		produced := make(chan error, 1)
		// The producer is owned by the task: stopped and joined below.
		go func() {
			st, err := feedKeyed(pctx, read, lim, chunks)
			recordsIn.Add(st.records)
			readMu.Lock()
			m.SpillRuns, m.SpillBytes = st.spillRuns, st.spillBytes
			readMu.Unlock()
			produced <- err
		}()
		stopped := false
		stop := func() error {
			if stopped {
				return nil
			}
			stopped = true
			pcancel()
			for range chunks {
			}
			if err := <-produced; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		}
		defer stop()
		drive = func(bundle bundleFunc) error {
			if err := runKeyed(ctx, chunks, q, dm, state, bundle); err != nil {
				return err
			}
			return stop()
		}
	}
	dm.feed = func(ctx context.Context, ch chan<- exec.Elements) error {
		ck := &chunker{ch: ch, transform: t.Input.Transform}
		switch {
		case t.Input.Impulse:
			elem, err := impulseElement(srcCoder)
			if err != nil {
				return err
			}
			recordsIn.Add(1)
			if err := ck.add(ctx, elem); err != nil {
				return err
			}
			return ck.flush(ctx)
		case t.Input.Edge == EdgeGroup:
			segs := t.Input.Segments
			read := func() ([]byte, error) {
				for len(segs) > 0 && segs[0].Len == 0 {
					segs = segs[1:]
				}
				if len(segs) == 0 {
					return nil, nil
				}
				s := segs[0]
				segs = segs[1:]
				return readSeg(s)
			}
			lay := valueLayout{merging: t.Input.Merging, timestamps: t.Input.Timestamps, outputTime: pipepb.OutputTime_Enum(t.Input.OutputTime)}
			if t.Input.Replay != nil {
				st, err := feedReplay(ctx, read, srcCoder, ck, lay, t.Input.Replay, mem/2)
				recordsIn.Add(st.records)
				return err
			}
			st, err := feedGrouped(ctx, read, srcCoder, ck, groupLimits{memory: mem / 2, dir: w.spillDir, files: files}, lay)
			recordsIn.Add(st.records)
			readMu.Lock()
			m.SpillRuns, m.SpillBytes = st.spillRuns, st.spillBytes
			readMu.Unlock()
			return err
		case t.Input.Edge == EdgeRedistribute:
			segs, err := readSegs(t.Input.Segments)
			if err != nil {
				return err
			}
			n, err := feedElements(ctx, segs, ck)
			recordsIn.Add(n)
			return err
		}
		return fmt.Errorf("worker: unknown input edge %q", t.Input.Edge)
	}

	// commit writes the task's outputs to the temporary store; bundle
	// finalization callbacks run after it (execute).
	commit := func() error {
		m.RecordsIn = recordsIn.Load()
		return w.writeOutputs(ctx, t, dm, temp, res)
	}
	if err := w.execute(ctx, t, &desc, dm, sr, res, drive, commit); err != nil {
		return nil, err
	}
	res.End = time.Now()
	return res, nil
}

// writeOutputs closes the task's DataSinks and writes each one's
// partitions to the temporary store as one object.
func (w *Worker) writeOutputs(ctx context.Context, t *Task, dm *dataManager, temp objstore.Store, res *Result) error {
	m := &res.Metrics
	for _, o := range t.Outputs {
		s := dm.sinks[o.Transform]
		if err := s.Close(); err != nil {
			return err
		}
		key := fmt.Sprintf("beam-e%d/s%d-t%d-a%d-%s", o.Edge, t.Stage, t.Task, t.Attempt, randomID(4))
		obj, err := objects.Write(ctx, temp, key, s.parts)
		if err != nil {
			return err
		}
		m.Requests++
		m.ShuffleBytesWritten += obj.Size()
		out := OutputResult{Transform: o.Transform, Edge: o.Edge, Key: key, Parts: obj.Ranges}
		m.RecordsOut += s.records
		res.Outputs = append(res.Outputs, out)
	}
	return nil
}

// bundleFunc runs one bundle of a task's plan whose DataSource feed
// feeds.
type bundleFunc func(feed func(ctx context.Context, ch chan<- exec.Elements) error) error

// execute runs the stage's plan over the task's input, in the bundles
// drive runs, commits the task's outputs, runs the bundle finalization
// callbacks the DoFns registered (their output is durable now, as Beam
// requires), and collects the user metrics. A panic in user code fails
// the task; so does a failing finalization callback (a retry runs the
// task again, so a finalizer sees its work at least once).
func (w *Worker) execute(ctx context.Context, t *Task, desc *fnpb.ProcessBundleDescriptor, dm *dataManager, sr *stateReader, res *Result,
	drive func(bundleFunc) error, commit func() error) (err error) {
	plan, err := exec.UnmarshalPlan(desc, nil)
	if err != nil {
		return fmt.Errorf("worker: building the execution plan of stage %d: %w", t.Stage, err)
	}
	inst := fmt.Sprintf("%s-s%d-t%d-a%d", t.Job, t.Stage, t.Task, t.Attempt)
	bctx := metrics.SetBundleID(ctx, inst)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("worker: user code panicked: %v\n%s", r, debug.Stack())
		}
		if ferr := dm.wait(); ferr != nil && err == nil {
			err = ferr
		}
		if derr := plan.Down(ctx); derr != nil && err == nil {
			err = fmt.Errorf("worker: tearing down stage %d: %w", t.Stage, derr)
		}
	}()
	bundles := 0
	bundle := func(feed func(ctx context.Context, ch chan<- exec.Elements) error) error {
		dm.feed = feed
		bundles++
		if err := plan.Execute(bctx, fmt.Sprintf("%s-b%d", inst, bundles), exec.DataContext{Data: dm, State: sr}); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if ferr := dm.wait(); ferr != nil {
			return ferr
		}
		for _, cp := range plan.Checkpoint() {
			at := time.Now().Add(cp.Reapply)
			for _, r := range cp.SR.RS {
				dm.residuals = append(dm.residuals, residual{at: at, elem: r})
			}
		}
		return nil
	}
	if err := drive(bundle); err != nil {
		return err
	}
	if len(dm.residuals) > 0 {
		return fmt.Errorf("worker: stage %d: a stateful ParDo's stage returned %d residual(s) of a splittable DoFn, "+
			"which Gale does not resume", t.Stage, len(dm.residuals))
	}
	if err := commit(); err != nil {
		return err
	}
	if err := plan.Finalize(); err != nil {
		return fmt.Errorf("worker: stage %d: a bundle finalization callback failed after the task's output was written: %w", t.Stage, err)
	}
	res.User = userMetrics(bctx)
	return nil
}

// sourceCoder returns the windowed-value coder of the DataSource.
func sourceCoder(desc *fnpb.ProcessBundleDescriptor, coders *graphx.CoderUnmarshaller, id string) (*coder.Coder, error) {
	tr, ok := desc.GetTransforms()[id]
	if !ok {
		return nil, fmt.Errorf("worker: descriptor has no data source %s", id)
	}
	var port fnpb.RemoteGrpcPort
	if err := proto.Unmarshal(tr.GetSpec().GetPayload(), &port); err != nil {
		return nil, fmt.Errorf("worker: data source %s: %w", id, err)
	}
	c, err := coders.Coder(port.GetCoderId())
	if err != nil {
		return nil, fmt.Errorf("worker: data source %s coder: %w", id, err)
	}
	if !coder.IsW(c) {
		return nil, fmt.Errorf("worker: data source %s has unwindowed coder %v", id, c)
	}
	return c, nil
}

// userMetrics returns the counters and distributions of the bundle.
func userMetrics(ctx context.Context) []UserMetric {
	q := metrics.ResultsExtractor(ctx).AllMetrics()
	var out []UserMetric
	for _, c := range q.Counters() {
		out = append(out, UserMetric{Step: c.Key.Step, Namespace: c.Key.Namespace, Name: c.Key.Name, Kind: "counter", Value: c.Result()})
	}
	for _, d := range q.Distributions() {
		v := d.Result()
		out = append(out, UserMetric{Step: d.Key.Step, Namespace: d.Key.Namespace, Name: d.Key.Name, Kind: "distribution",
			Count: v.Count, Sum: v.Sum, Min: v.Min, Max: v.Max})
	}
	return out
}
