package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/shuffle"
	"github.com/galeproject/gale/shuffle/objects"
)

// StoreOpener opens the object store at url with the given client options.
type StoreOpener func(ctx context.Context, url string, options map[string]string) (objstore.Store, error)

// WorkerConfig configures a worker runtime.
type WorkerConfig struct {
	// Registry holds the kernels tasks name. Default: kernel.Default.
	Registry *kernel.Registry
	// OpenStore opens stores named in descriptors. Required.
	OpenStore StoreOpener
	// Instance identifies this worker instance in results; default: a
	// random id drawn when the worker is created.
	Instance string
}

// Worker runs stage tasks. Its Handle method is a backends.Handler. A
// Worker is safe for concurrent use; it caches open stores.
type Worker struct {
	reg      *kernel.Registry
	instance string
	warm     atomic.Bool

	stores  *StoreCache
	gliders gliderClients
	sides   sideCache
}

// Close releases the worker's connections (Glider clients).
func (w *Worker) Close() error { return w.gliders.close() }

// NewWorker returns a worker runtime.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.OpenStore == nil {
		return nil, errors.New("engine: WorkerConfig.OpenStore is required")
	}
	if cfg.Registry == nil {
		cfg.Registry = kernel.Default
	}
	if cfg.Instance == "" {
		cfg.Instance = "worker-" + randomID(6)
	}
	return &Worker{reg: cfg.Registry, instance: cfg.Instance, stores: NewStoreCache(cfg.OpenStore)}, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func (w *Worker) store(ctx context.Context, url string, opts map[string]string) (objstore.Store, error) {
	return w.stores.Open(ctx, url, opts)
}

// StoreCache opens each store URL once and hands out the same store
// afterwards, so the tasks a warm worker runs share their connections. It
// is safe for concurrent use. The first opening's options stand for the
// URL (a job's tasks all carry the same ones).
type StoreCache struct {
	open StoreOpener

	mu     sync.Mutex
	stores map[string]objstore.Store
}

// NewStoreCache returns a cache that opens stores with open.
func NewStoreCache(open StoreOpener) *StoreCache {
	return &StoreCache{open: open, stores: map[string]objstore.Store{}}
}

// Open returns the store at url, opening it on first use.
func (c *StoreCache) Open(ctx context.Context, url string, opts map[string]string) (objstore.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stores[url]; ok {
		return s, nil
	}
	s, err := c.open(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	c.stores[url] = s
	return s, nil
}

// Handle runs one serialized task and returns its serialized result.
func (w *Worker) Handle(ctx context.Context, payload []byte) ([]byte, error) {
	spec, err := decodeSpec(payload)
	if err != nil {
		return nil, err
	}
	res, err := w.Run(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("job %s stage %d task %d attempt %d: %w", spec.Job, spec.Stage, spec.Task, spec.Attempt, err)
	}
	return json.Marshal(res)
}

// Run runs one task.
func (w *Worker) Run(ctx context.Context, spec *TaskSpec) (res *TaskResult, err error) {
	res = &TaskResult{Version: SpecVersion, Start: time.Now(), Instance: w.instance, Cold: !w.warm.Swap(true)}
	t := &task{w: w, spec: spec, res: res}
	info := kernel.TaskInfo{Stage: spec.Stage, Task: spec.Task, Attempt: spec.Attempt, Tasks: spec.Tasks}
	if spec.DSO != nil {
		info.DSOServers, info.DSOToken = spec.DSO.Servers, spec.DSO.Token
	}
	ctx = kernel.WithTaskInfo(ctx, info)
	defer func() {
		if r := recover(); r != nil {
			if a, ok := r.(kernel.Abort); ok {
				err = a.Err
			} else {
				err = fmt.Errorf("engine: user code panicked: %v\n%s", r, debug.Stack())
			}
		}
		if err != nil {
			t.abort()
			res = nil
		}
	}()
	if err := t.run(ctx); err != nil {
		return nil, err
	}
	res.End = time.Now()
	return res, nil
}

// task is one running attempt.
type task struct {
	w     *Worker
	spec  *TaskSpec
	res   *TaskResult
	emits []any
	// outputs still being written; abort cancels them.
	sinks    []*sinkRun
	shuffles []*shuffleRun
	samples  []sampleRun
}

type sinkRun struct {
	op   int
	node int
	sink kernel.Sink
	pw   *io.PipeWriter
	key  string
	done chan error
	cw   *countingWriter
}

type shuffleRun struct {
	op      int
	shuffle int
	glider  bool
	w       kernel.ShuffleWriter
	streams *actionStreams // the glider strategy's streams into actions
}

type sampleRun struct {
	s kernel.Sampler
}

func (t *task) abort() {
	for _, s := range t.shuffles {
		if s.streams != nil {
			s.streams.abort()
		}
	}
	for _, s := range t.sinks {
		s.pw.CloseWithError(errors.New("engine: task failed"))
		<-s.done
	}
	t.sinks = nil
}

func (t *task) run(ctx context.Context) error {
	spec := t.spec
	if spec.Input.SortOutput != nil {
		return t.commitSortAction(ctx)
	}
	t.emits = make([]any, len(spec.Ops))
	for i := len(spec.Ops) - 1; i >= 0; i-- {
		e, err := t.build(ctx, i)
		if err != nil {
			return err
		}
		t.emits[i] = e
	}
	roots := make([]any, len(spec.Roots))
	for i, r := range spec.Roots {
		roots[i] = t.emits[r]
	}
	in, err := t.fanout(spec.InputElem, roots)
	if err != nil {
		return err
	}
	if err := t.readInput(ctx, in); err != nil {
		return err
	}
	return t.finish(ctx)
}

func (t *task) fanout(elem string, nexts []any) (any, error) {
	if len(nexts) == 1 {
		return nexts[0], nil
	}
	ek, err := kernel.Lookup[kernel.Elem](t.w.reg, elem)
	if err != nil {
		return nil, err
	}
	return ek.Fanout(nexts)
}

func (t *task) build(ctx context.Context, i int) (any, error) {
	op := t.spec.Ops[i]
	kids := make([]any, len(op.Children))
	for j, c := range op.Children {
		kids[j] = t.emits[c]
	}
	switch op.Kind {
	case planner.OpNarrow:
		next, err := t.fanout(op.Elem, kids)
		if err != nil {
			return nil, err
		}
		if len(op.Sides) > 0 {
			sides, err := t.sideValues(ctx, op.Sides)
			if err != nil {
				return nil, err
			}
			sk, err := kernel.Lookup[kernel.SideNarrow](t.w.reg, op.Kernel)
			if err != nil {
				return nil, err
			}
			return sk.BuildSides(next, sides)
		}
		if op.Params != nil {
			pk, err := kernel.Lookup[kernel.ParamNarrow](t.w.reg, op.Kernel)
			if err != nil {
				return nil, err
			}
			return pk.BuildWith(next, op.Params)
		}
		nk, err := kernel.Lookup[kernel.Narrow](t.w.reg, op.Kernel)
		if err != nil {
			return nil, err
		}
		return nk.Build(next)
	case planner.OpFlatten:
		return t.fanout(op.Elem, kids)
	case planner.OpShuffleWrite:
		var sw kernel.ShuffleWriter
		parts := op.Partitions
		if op.Range {
			rk, err := kernel.Lookup[kernel.Ranged](t.w.reg, op.Kernel)
			if err != nil {
				return nil, err
			}
			splits, err := t.splits(ctx, op) // splits.go
			if err != nil {
				return nil, err
			}
			parts = splits.Parts
			if sw, err = rk.Writer(splits.Partition, parts, op.Glider); err != nil {
				return nil, err
			}
			if h, ok := sw.(kernel.SizeHinter); ok && t.spec.Input.Len > 0 {
				h.SizeHint(t.spec.Input.Len)
			}
		} else {
			kk, err := kernel.Lookup[kernel.Keyed](t.w.reg, op.Kernel)
			if err != nil {
				return nil, err
			}
			if sw, err = kk.Writer(op.Partitions, op.Combine); err != nil {
				return nil, err
			}
		}
		run := &shuffleRun{op: i, shuffle: op.Shuffle, glider: op.Glider, w: sw}
		if op.Glider {
			st, err := t.newActionStreams(ctx, op.Shuffle, parts)
			if err != nil {
				return nil, err
			}
			run.streams = st
			if pf, ok := sw.(PartitionFlusher); ok && st.c.ChunkSize() > 0 {
				pf.FlushTo(st.c.ChunkSize(), st.write)
			}
		}
		t.shuffles = append(t.shuffles, run)
		return sw.Emit(), nil
	case planner.OpSample:
		rk, err := kernel.Lookup[kernel.Ranged](t.w.reg, op.Kernel)
		if err != nil {
			return nil, err
		}
		seed := uint64(t.spec.Stage)<<32 | uint64(t.spec.Task)
		smp := rk.Sampler(op.SampleSize, shuffle.SampleKeyLimit, seed)
		t.samples = append(t.samples, sampleRun{smp})
		return smp.Emit(), nil
	case planner.OpSink:
		return t.openSink(ctx, i, op)
	}
	return nil, fmt.Errorf("engine: unknown op kind %d", op.Kind)
}

func (t *task) openSink(ctx context.Context, i int, op OpSpec) (any, error) {
	if op.Sink == nil {
		return nil, fmt.Errorf("engine: sink op %d has no sink spec", i)
	}
	ek, err := kernel.Lookup[kernel.Elem](t.w.reg, op.Elem)
	if err != nil {
		return nil, err
	}
	st, err := t.w.store(ctx, op.Sink.URL, t.spec.StoreOptions)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%ss%d-t%d-a%d-o%d-%s", op.Sink.Prefix, t.spec.Stage, t.spec.Task, t.spec.Attempt, i, randomID(4))
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	run := &sinkRun{op: i, node: op.Node, pw: pw, key: key, done: make(chan error, 1), cw: cw}
	switch op.Sink.Format {
	case "text":
		run.sink = ek.TextSink(cw)
	case "records":
		run.sink = ek.RecordSink(cw)
	case "raw":
		if run.sink, err = ek.RawSink(cw); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("engine: unknown sink format %q", op.Sink.Format)
	}
	// The Put goroutine is owned by this task: finish or abort waits for it.
	go func() {
		err := st.Put(ctx, key, pr)
		pr.CloseWithError(err) // unblock the writer if Put stopped early
		run.done <- err
	}()
	t.sinks = append(t.sinks, run)
	return run.sink.Emit(), nil
}

// countingWriter counts bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (t *task) read(ctx context.Context, emit any) error {
	in := t.spec.Input
	m := &t.res.Metrics
	switch in.Kind {
	case InputText:
		if in.File != "" {
			// A text source read with file names: its element kernel
			// pairs each line with in.File.
			fl, err := kernel.Lookup[kernel.FileLiner](t.w.reg, t.spec.InputElem)
			if err != nil {
				return err
			}
			if emit, err = fl.FileLines(emit, in.File); err != nil {
				return err
			}
		}
		f, ok := emit.(func(string))
		if !ok {
			return fmt.Errorf("engine: text input feeds %T, want func(string)", emit)
		}
		if in.GliderAction != "" {
			return t.readFilterAction(ctx, f)
		}
		st, err := t.inputStore(ctx)
		if err != nil {
			return err
		}
		if in.Compression != "" {
			return t.readCompressed(ctx, st, func(r io.Reader) (int64, error) {
				return readLinesMax(ctx, r, 0, math.MaxInt64, t.memory(), f)
			})
		}
		return t.readLineRange(ctx, st, in.File == "" && t.borrowsLines(), f)
	case InputFile:
		return t.readFile(ctx, emit)
	case InputFixed:
		f, ok := emit.(func([]byte))
		if !ok {
			return fmt.Errorf("engine: fixed-size records feed %T, want func([]byte)", emit)
		}
		st, err := t.inputStore(ctx)
		if err != nil {
			return err
		}
		if in.Compression != "" {
			return t.readCompressed(ctx, st, func(r io.Reader) (int64, error) {
				n, read, err := readFixed(ctx, r, in.RecordSize, 4<<20, f)
				if err != nil && read%int64(in.RecordSize) != 0 {
					err = fmt.Errorf("decompressed, it is %d bytes, not a whole number of %d-byte records: "+
						"the record at offset %d is incomplete", read, in.RecordSize, read-read%int64(in.RecordSize))
				}
				return n, err
			})
		}
		rc, err := st.Get(ctx, in.Key, in.Off, in.Len)
		if err != nil {
			return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
		}
		defer rc.Close()
		m.objectGet(1)
		n, read, err := readFixed(ctx, rc, in.RecordSize, min(in.Len, 4<<20), f)
		m.RecordsIn += n
		m.ObjectBytesRead += read
		if err != nil {
			return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
		}
		if read != in.Len {
			return fmt.Errorf("engine: %s/%s ended after %d of %d bytes at offset %d; was it changed while the job ran?",
				st, in.Key, read, in.Len, in.Off)
		}
		return nil
	case InputRecords:
		ek, err := kernel.Lookup[kernel.Elem](t.w.reg, t.spec.InputElem)
		if err != nil {
			return err
		}
		data := in.Inline
		if in.Key != "" {
			st, err := t.w.store(ctx, in.URL, t.spec.StoreOptions)
			if err != nil {
				return err
			}
			data, err = readAll(ctx, st, in.Key, 0, -1)
			if err != nil {
				return err
			}
			m.objectGet(1)
			m.ObjectBytesRead += int64(len(data))
		}
		n, err := ek.DecodeRecords(data, emit)
		m.RecordsIn += n
		return err
	case InputGenerate:
		g, err := kernel.Lookup[kernel.Generator](t.w.reg, in.Kernel)
		if err != nil {
			return err
		}
		m.RecordsIn += in.Hi - in.Lo
		return g.Generate(ctx, in.Lo, in.Hi, emit)
	case InputShuffle:
		st, err := t.w.store(ctx, t.spec.Temp, t.spec.StoreOptions)
		if err != nil {
			return err
		}
		if in.Glider {
			return t.readAction(ctx, emit)
		}
		if in.Range {
			return t.readSorted(ctx, st, emit)
		}
		kk, err := kernel.Lookup[kernel.Keyed](t.w.reg, in.Kernel)
		if err != nil {
			return err
		}
		if sr, ok := kk.(kernel.StreamReducer); ok && !in.Combined {
			return t.readStream(ctx, st, sr, emit)
		}
		segs := make([][]byte, 0, len(in.Segments))
		for _, s := range in.Segments {
			if s.Len == 0 {
				continue
			}
			b, err := objects.Read(ctx, st, s)
			if err != nil {
				return err
			}
			m.shuffleGet(1)
			m.ShuffleBytesRead += s.Len
			segs = append(segs, b)
		}
		n, err := kk.Reduce(ctx, segs, in.Combined, emit)
		m.RecordsIn += n
		return err
	}
	return fmt.Errorf("engine: unknown input kind %q", in.Kind)
}

// inputStore opens the store of the task's input and checks that the
// input object is still what the job planned (checkUnchanged).
func (t *task) inputStore(ctx context.Context) (objstore.Store, error) {
	st, err := t.w.store(ctx, t.spec.Input.URL, t.spec.StoreOptions)
	if err != nil {
		return nil, err
	}
	if err := t.checkUnchanged(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// checkUnchanged refuses to read an input object that is no longer what
// it was when the job was planned (InputSpec.Expect).
func (t *task) checkUnchanged(ctx context.Context, st objstore.Store) error {
	in := t.spec.Input
	if in.Expect == nil {
		return nil
	}
	t.res.Metrics.objectGet(1)
	return checkStamp(ctx, st, in.Key, in.Expect)
}

// readCompressed reads the whole compressed object of a text or record
// input through its decompressor into read, which returns how many
// elements it emitted.
func (t *task) readCompressed(ctx context.Context, st objstore.Store, read func(io.Reader) (int64, error)) error {
	in := t.spec.Input
	m := &t.res.Metrics
	rc, err := st.Get(ctx, in.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
	}
	defer rc.Close()
	m.objectGet(1)
	cr := &countingReader{r: rc}
	dr, err := decompressor(in.Compression, cr)
	if err != nil {
		return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
	}
	defer dr.Close()
	n, err := read(dr)
	m.ObjectBytesRead += cr.n
	m.RecordsIn += n
	if err != nil {
		return fmt.Errorf("engine: reading %s/%s (%s): %w", st, in.Key, in.Compression, err)
	}
	return nil
}

// readFile parses one whole object with the input's FileReader kernel.
// openRange opens the input's byte range [Off, Off+Len) of its object,
// from the byte before it (which tells whether a line or record starts at
// Off): the range itself, then, only if its last line or record runs past
// it, the rest in small pieces, so the bytes read stay close to the
// range's size. It counts the GETs in the task's metrics.
func (t *task) openRange(ctx context.Context, st objstore.Store) (*countingReader, func() error, error) {
	in := t.spec.Input
	m := &t.res.Metrics
	start := in.Off
	if start > 0 {
		start--
	}
	end := in.Off + in.Len
	rc, err := st.Get(ctx, in.Key, start, end-start)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
	}
	m.objectGet(1)
	tail := &tailReader{head: rc, open: func() (io.ReadCloser, error) {
		m.objectGet(1)
		return st.Get(ctx, in.Key, end, -1)
	}}
	return &countingReader{r: tail}, tail.Close, nil
}

// readLineRange reads the lines that start in the input's byte range
// [Off, Off+Len) of its object and calls f with each (lent from the read
// buffer when borrow is set: see readLinesOpt).
func (t *task) readLineRange(ctx context.Context, st objstore.Store, borrow bool, f func(string)) error {
	in := t.spec.Input
	m := &t.res.Metrics
	cr, closeRange, err := t.openRange(ctx, st)
	if err != nil {
		return err
	}
	defer closeRange()
	n, err := readLinesOpt(ctx, cr, in.Off, in.Len, t.memory(), borrow, f)
	m.ObjectBytesRead += cr.n
	m.RecordsIn += n
	if err != nil {
		return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
	}
	return nil
}

// readParsedLines reads a chunk of a file of one record per line through
// the kernel's line parser; a parse error stops the task and names the
// file and the line's number in the whole file.
func (t *task) readParsedLines(ctx context.Context, st objstore.Store, lp kernel.LineParser, emit any) error {
	in := t.spec.Input
	parse, err := lp.ParseLines(emit)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idx, bad int64
	var perr error
	err = t.readLineRange(ctx, st, false, func(line string) {
		if perr != nil {
			return
		}
		idx++
		if err := parse(line); err != nil {
			perr, bad = err, idx
			cancel() // stop reading the chunk
		}
	})
	if perr == nil {
		return err
	}
	// The error path alone counts the lines before the chunk.
	before, cerr := linesBefore(context.WithoutCancel(ctx), st, in.Key, in.Off)
	if cerr != nil {
		return fmt.Errorf("%s: line %d of the chunk at byte %d: %v", in.File, bad, in.Off, perr)
	}
	return fmt.Errorf("%s:%d: %v", in.File, before+bad, perr)
}

// readFileRange reads the input's byte range of its object through the
// kernel's range reader: the range and, if its last record runs past it,
// the rest of the object in small pieces.
func (t *task) readFileRange(ctx context.Context, st objstore.Store, rr kernel.RangeReader, emit any) error {
	in := t.spec.Input
	m := &t.res.Metrics
	cr, closeRange, err := t.openRange(ctx, st)
	if err != nil {
		return err
	}
	defer closeRange()
	head := func() (io.ReadCloser, error) {
		m.objectGet(1)
		return st.Get(ctx, in.Key, 0, -1)
	}
	before := func() (int64, error) { return linesBefore(ctx, st, in.Key, in.Off) }
	n, err := rr.ReadRange(ctx, in.File, cr, in.Off, in.Len, head, before, emit)
	m.ObjectBytesRead += cr.n
	m.RecordsIn += n
	return err // the kernel's errors name the file and line
}

// linesBefore counts the lines of object key that start before byte off.
func linesBefore(ctx context.Context, st objstore.Store, key string, off int64) (int64, error) {
	if off == 0 {
		return 0, nil
	}
	rc, err := st.Get(ctx, key, 0, off-1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n := int64(1) // the line at byte 0
	buf := make([]byte, 256<<10)
	for {
		k, err := rc.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func (t *task) readFile(ctx context.Context, emit any) error {
	in := t.spec.Input
	m := &t.res.Metrics
	fr, err := kernel.Lookup[kernel.FileReader](t.w.reg, in.Kernel)
	if err != nil {
		return err
	}
	st, err := t.inputStore(ctx)
	if err != nil {
		return err
	}
	if lp, ok := fr.(kernel.LineParser); ok && in.Compression == "" {
		return t.readParsedLines(ctx, st, lp, emit)
	}
	if rr, ok := fr.(kernel.RangeReader); ok && in.Compression == "" {
		return t.readFileRange(ctx, st, rr, emit)
	}
	if in.Compression != "" {
		return t.readCompressed(ctx, st, func(r io.Reader) (int64, error) { return fr.ReadFile(ctx, in.File, r, emit) })
	}
	rc, err := st.Get(ctx, in.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("engine: reading %s/%s: %w", st, in.Key, err)
	}
	defer rc.Close()
	m.objectGet(1)
	cr := &countingReader{r: rc}
	n, err := fr.ReadFile(ctx, in.File, cr, emit)
	m.ObjectBytesRead += cr.n
	m.RecordsIn += n
	return err // the kernel's errors name the file and line

}

// readSorted streams a sort partition's segments into the sort kernel, so
// the partition never has to fit in memory.
func (t *task) readSorted(ctx context.Context, st objstore.Store, emit any) error {
	rk, err := kernel.Lookup[kernel.Ranged](t.w.reg, t.spec.Input.Kernel)
	if err != nil {
		return err
	}
	return t.withSegments(ctx, st, func(readers []io.Reader, cfg kernel.SortConfig) (int64, error) {
		return rk.Sort(ctx, readers, cfg, emit)
	})
}

// readStream reduces a hash-partitioned shuffle input whose kernel groups
// under the task's memory budget (GroupByKey, the joins), reading the
// segments as it goes instead of all at once.
func (t *task) readStream(ctx context.Context, st objstore.Store, sr kernel.StreamReducer, emit any) error {
	return t.withSegments(ctx, st, func(readers []io.Reader, cfg kernel.SortConfig) (int64, error) {
		return sr.ReduceStream(ctx, readers, cfg, emit)
	})
}

// withSegments calls reduce with lazy readers of the task's shuffle
// segments and the task's sort budget, and records what it read.
func (t *task) withSegments(ctx context.Context, st objstore.Store, reduce func([]io.Reader, kernel.SortConfig) (int64, error)) error {
	in := t.spec.Input
	m := &t.res.Metrics
	readers := make([]io.Reader, 0, len(in.Segments))
	for _, s := range in.Segments {
		if s.Len == 0 {
			continue
		}
		r := objects.NewSegmentReader(ctx, st, s)
		r.Opened = func() { m.shuffleGet(1) }
		r.Bytes = func(n int64) { m.ShuffleBytesRead += n }
		readers = append(readers, r)
	}
	defer func() {
		for _, r := range readers {
			r.(*objects.SegmentReader).Close()
		}
	}()
	cfg := kernel.SortConfig{MemoryBytes: t.memory(), TempDir: t.spec.SpillDir,
		Stats: func(runs int, bytes int64) { m.SpillRuns, m.SpillBytes = int64(runs), bytes }}
	n, err := reduce(readers, cfg)
	m.RecordsIn += n
	return err
}

// DefaultWorkerMemory is a task's memory budget when the job sets none: the
// size of a small function.
const DefaultWorkerMemory = 512 << 20

// memory returns the task's memory budget.
func (t *task) memory() int64 {
	if t.spec.MemoryBytes > 0 {
		return t.spec.MemoryBytes
	}
	return DefaultWorkerMemory
}

func readAll(ctx context.Context, st objstore.Store, key string, off, n int64) ([]byte, error) {
	rc, err := st.Get(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("engine: reading %s/%s: %w", st, key, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if n > 0 {
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, fmt.Errorf("engine: reading %s/%s: %w", st, key, err)
	}
	return buf.Bytes(), nil
}

func (t *task) finish(ctx context.Context) error {
	m := &t.res.Metrics
	for _, s := range t.shuffles {
		parts, err := s.w.Finish()
		if err != nil {
			return err
		}
		if s.glider {
			err := s.streams.end(parts)
			m.ShuffleBytesWritten += s.streams.sent
			m.shufflePut(s.streams.ends)
			if err != nil {
				return err
			}
			m.RecordsOut += s.w.Records()
			t.res.Shuffles = append(t.res.Shuffles, ShuffleOutput{Op: s.op, Shuffle: s.shuffle})
			continue
		}
		st, err := t.w.store(ctx, t.spec.Temp, t.spec.StoreOptions)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("shuffle-%d/s%d-t%d-a%d-o%d-%s", s.shuffle, t.spec.Stage, t.spec.Task, t.spec.Attempt, s.op, randomID(4))
		obj, err := objects.Write(ctx, st, key, parts)
		if err != nil {
			return err
		}
		m.shufflePut(1)
		m.ShuffleBytesWritten += obj.Size()
		out := ShuffleOutput{Op: s.op, Shuffle: s.shuffle, Key: key, Parts: obj.Ranges}
		m.RecordsOut += s.w.Records()
		t.res.Shuffles = append(t.res.Shuffles, out)
	}
	for _, s := range t.samples {
		t.res.Samples = append(t.res.Samples, s.s.Keys()...)
		m.RecordsOut += s.s.Records()
	}
	sinks := t.sinks
	t.sinks = nil
	var errs []error
	for _, s := range sinks {
		err := s.sink.Close()
		s.pw.CloseWithError(err)
		if perr := <-s.done; perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: writing output %s: %w", s.key, err))
			continue
		}
		m.objectPut(1)
		m.ObjectBytesWritten += s.cw.n
		m.RecordsOut += s.sink.Records()
		t.res.Sinks = append(t.res.Sinks, SinkOutput{Op: s.op, Node: s.node, Key: s.key, Records: s.sink.Records(), Bytes: s.cw.n})
	}
	return errors.Join(errs...)
}

// tailReader reads head to its end, then opens the rest of the object and
// reads it at most tailPiece bytes at a time (a line that crosses the end
// of a text range usually ends within a few bytes).
type tailReader struct {
	head io.ReadCloser
	open func() (io.ReadCloser, error)
	rest io.ReadCloser
}

const tailPiece = 16 << 10

func (t *tailReader) Read(p []byte) (int, error) {
	if t.head != nil {
		n, err := t.head.Read(p)
		if err != io.EOF {
			return n, err
		}
		t.head.Close()
		t.head = nil
		if n > 0 {
			return n, nil
		}
	}
	if t.rest == nil {
		r, err := t.open()
		if err != nil {
			return 0, err
		}
		t.rest = r
	}
	if len(p) > tailPiece {
		p = p[:tailPiece]
	}
	return t.rest.Read(p)
}

func (t *tailReader) Close() error {
	if t.head != nil {
		t.head.Close()
	}
	if t.rest != nil {
		return t.rest.Close()
	}
	return nil
}

// readFixed reads size-byte records and emits each. Records are slices of
// fresh blocks of about blockBytes that are never reused, so downstream
// code may keep them.
func readFixed(ctx context.Context, r io.Reader, size int, blockBytes int64, emit func([]byte)) (n, read int64, err error) {
	if size <= 0 {
		return 0, 0, fmt.Errorf("engine: record size %d", size)
	}
	block := max(int(blockBytes)/size, 1) * size
	for {
		if err := ctx.Err(); err != nil {
			return n, read, err
		}
		buf := make([]byte, block)
		got, err := io.ReadFull(r, buf)
		read += int64(got)
		for off := 0; off+size <= got; off += size {
			emit(buf[off : off+size : off+size])
			n++
		}
		if got%size != 0 {
			return n, read, fmt.Errorf("engine: input ends inside a %d-byte record", size)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, read, nil
		}
		if err != nil {
			return n, read, err
		}
	}
}
