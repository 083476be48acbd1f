// Package kernel is the seam between Gale's typed pipeline API and its
// type-erased engine.
//
// The root package gale implements the typed kernels of every transform with
// generics (a Map over func(In) Out, a combiner over KV[K, V], a text sink
// over T) and registers each under a stable name derived from the user's
// function and element types. The engine's worker runtime looks kernels up by
// those names in a task descriptor and wires them together through the
// interfaces below, passing typed emit functions (func(T)) as values of type
// any: one type assertion per stage and task, none per record.
//
// A Registry is a name registry in the manner of database/sql's drivers: the
// program that builds a pipeline registers kernels, and the same program
// binary, started as a worker, registers them again the same way before it
// serves tasks.
//
// This package may import only the standard library. It starts no
// goroutines.
package kernel

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Narrow is a kernel of a per-element transform (map, flat map, filter).
type Narrow interface {
	// Build returns the transform's input emit function, a func(In), that
	// calls next, a func(Out), for every output element.
	Build(next any) (any, error)
}

// ParamNarrow is a narrow kernel configured per use: the same function
// applied with different parameters (MapWith). Params travel in the task
// descriptor, so a worker need not reproduce them.
type ParamNarrow interface {
	// BuildWith is Build with the node's encoded parameters.
	BuildWith(next any, params []byte) (any, error)
}

// SideNarrow is the kernel of a narrow transform that reads side inputs:
// collections materialized whole before the transform's stage runs.
type SideNarrow interface {
	// BuildSides is Build with the materialized side inputs, in the
	// node's order, each as its SideView's Materialize returned it.
	BuildSides(next any, sides []any) (any, error)
}

// SideView turns the encoded records of a side input into the value the
// reading transforms receive (a slice, a map, a single element). The
// value is shared by the tasks of a worker and must not be modified.
type SideView interface {
	// Materialize decodes the records in data (the objects the side
	// input's sink wrote, in order) and returns the side value.
	Materialize(data [][]byte) (any, error)
}

// FileLiner is implemented by element kernels; the one of a text source
// read with file names (gale.ReadTextWithFilename) adapts its input.
type FileLiner interface {
	// FileLines returns a func(string) that calls next, the source's
	// func(T), with each line paired with file, the name of its file.
	FileLines(next any, file string) (any, error)
}

// FileReader is the kernel of a source that parses whole files (CSV,
// JSON lines): a file is one task, so records may span lines and errors
// can name the file's line.
type FileReader interface {
	// ReadFile parses r, the contents of the file named file, and calls
	// next, a func(T), for each record; it returns how many it emitted.
	// Errors name the file and line.
	ReadFile(ctx context.Context, file string, r io.Reader, next any) (int64, error)
}

// LineParser is implemented by FileReader kernels whose records are single
// lines (JSON lines): their files are split into byte-range chunks at line
// boundaries, as text is, one task each, and the engine numbers the lines
// of an error. ParseLines returns a function that parses one line (without
// its terminator) and feeds the record to next, the source's func(T); its
// error names neither file nor line, which the engine adds.
type LineParser interface {
	ParseLines(next any) (func(line string) error, error)
}

// RangeReader is implemented by FileReader kernels that parse a byte range
// of an uncompressed file (CSV): their files are split into chunks at line
// boundaries, one task each. ReadRange parses the records that start in
// [off, off+n) of file, read by r from byte off-1 (from 0 when off is 0)
// to the end of the object; head opens the file from its start (a chunk's
// header), and linesBefore counts the lines that start before off, for an
// error's line number. It returns how many records it emitted to next,
// the source's func(T); errors name the file and line.
type RangeReader interface {
	ReadRange(ctx context.Context, file string, r io.Reader, off, n int64,
		head func() (io.ReadCloser, error), linesBefore func() (int64, error), next any) (int64, error)
}

// TaskInfo describes the running task to kernels that need it (iterate
// workers); the worker runtime puts it in the task's context.
type TaskInfo struct {
	Stage, Task, Attempt, Tasks int
	// DSOServers and DSOToken reach the job's shared-object servers.
	DSOServers []string
	DSOToken   string
}

type taskInfoKey struct{}

// WithTaskInfo returns ctx carrying info.
func WithTaskInfo(ctx context.Context, info TaskInfo) context.Context {
	return context.WithValue(ctx, taskInfoKey{}, info)
}

// TaskInfoFrom returns the TaskInfo in ctx.
func TaskInfoFrom(ctx context.Context) (TaskInfo, bool) {
	info, ok := ctx.Value(taskInfoKey{}).(TaskInfo)
	return info, ok
}

// Elem is a kernel bound to one element type T.
type Elem interface {
	// Fanout returns a func(T) that calls every func(T) in nexts.
	Fanout(nexts []any) (any, error)
	// TextSink returns a sink that writes each element as one line of text.
	TextSink(w io.Writer) Sink
	// RecordSink returns a sink that writes encoded records.
	RecordSink(w io.Writer) Sink
	// RawSink returns a sink that writes each element's bytes as they are,
	// for string and byte-slice elements (fixed-size binary records).
	RawSink(w io.Writer) (Sink, error)
	// DecodeRecords decodes the records a RecordSink wrote and calls next,
	// a func(T), for each.
	DecodeRecords(data []byte, next any) (int64, error)
}

// Sink consumes elements and writes them.
type Sink interface {
	// Emit returns the func(T) to feed.
	Emit() any
	// Close flushes buffered output and reports the first write error.
	Close() error
	// Records and Bytes report what was written so far.
	Records() int64
	Bytes() int64
}

// Generator is the kernel of a generator source.
type Generator interface {
	// Generate calls next, a func(T), for indices lo..hi-1.
	Generate(ctx context.Context, lo, hi int64, next any) error
}

// Keyed is the kernel of a shuffle edge over KV[K, V] elements (GroupByKey,
// CombinePerKey).
type Keyed interface {
	// Writer returns the map-side writer that partitions its input into
	// parts partitions. With combine set (and a combiner present) it
	// aggregates values per key before writing (combiner lifting).
	Writer(parts int, combine bool) (ShuffleWriter, error)
	// Reduce reads the shuffled records of one partition, given as the
	// concatenation of the segments map tasks wrote for it, groups or
	// combines them by key and calls next with each result in the order of
	// the keys' encodings. combined tells whether the segments hold
	// partial aggregates.
	Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error)
}

// StreamReducer is implemented by keyed kernels that reduce a partition
// under a memory budget (GroupByKey, the joins): the engine hands them the
// partition's segments as readers instead of reading them into memory, and
// they sort the records by key in runs spilled to cfg.TempDir beyond
// cfg.MemoryBytes, so only one key's values (a join: only one side's) are
// held at a time. The engine calls it for records that are not partial
// aggregates; Reduce remains the fallback for in-memory segments.
type StreamReducer interface {
	ReduceStream(ctx context.Context, segments []io.Reader, cfg SortConfig, next any) (int64, error)
}

// Merger is implemented by keyed kernels whose partial aggregates can be
// merged in their encoded form, so an ephemeral store (Glider's merge
// actions) can combine them as they stream in.
type Merger interface {
	// MergeEncoded merges two encoded accumulators into a new encoded one;
	// a nil a means there is no accumulator yet (the result is b's copy).
	// It must not keep a or b.
	MergeEncoded(a, b []byte) ([]byte, error)
}

// SizeHinter is implemented by shuffle writers that buffer what they are
// fed and can size their buffers up front: the engine tells them how many
// input bytes the task reads, before the first element. A writer takes it
// as a hint (the stage's operations may shrink or grow the data).
type SizeHinter interface {
	SizeHint(inputBytes int64)
}

// LineBorrower is implemented by shuffle writers whose func(string) keeps
// no part of the string past the call (a writer that copies what it keeps).
// A task whose text input feeds only such a writer lends it each line from
// its read buffer instead of allocating a string per line; the string is
// only valid during the call. Writers that do not implement it receive
// strings they may keep.
type LineBorrower interface {
	// BorrowsLines marks the writer; it is never called.
	BorrowsLines()
}

// ShuffleWriter is the map side of a shuffle edge.
type ShuffleWriter interface {
	// Emit returns the func(KV[K, V]) to feed.
	Emit() any
	// Finish returns the encoded records of each partition.
	Finish() ([][]byte, error)
	// Records reports how many input elements were fed.
	Records() int64
}

// Registry maps kernel names to kernels. It is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	kernels  map[string]any
	families map[string]func(config string) (any, error)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{kernels: map[string]any{}, families: map[string]func(string) (any, error){}}
}

// Default is the registry the gale package registers into.
var Default = NewRegistry()

// Put registers k under name. Registering the same name again is allowed
// only with an equivalent kernel (construction code runs again in workers);
// the first registration wins.
func (r *Registry) Put(name string, k any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kernels[name]; !ok {
		r.kernels[name] = k
	}
}

// PutFamily registers a family of kernels configured by their names: a
// name prefix+config that is not registered itself is built by
// build(config) on its first lookup, so a worker rebuilds the kernel the
// driver named (a combiner whose configuration the driver computed at run
// time) even when its own pipeline construction configured it otherwise.
// build must be a pure function of config. The first registration of a
// prefix wins.
func (r *Registry) PutFamily(prefix string, build func(config string) (any, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.families[prefix]; !ok {
		r.families[prefix] = build
	}
}

// Get returns the kernel registered under name, building it if name
// belongs to a family.
func (r *Registry) Get(name string) (any, bool) {
	k, ok, err := r.get(name)
	return k, ok && err == nil
}

func (r *Registry) get(name string) (any, bool, error) {
	r.mu.RLock()
	k, ok := r.kernels[name]
	var build func(string) (any, error)
	var config string
	if !ok {
		// The longest matching prefix: families never nest in practice,
		// but the choice must not depend on map order.
		best := -1
		for prefix, b := range r.families {
			if len(prefix) > best && strings.HasPrefix(name, prefix) {
				best, build, config = len(prefix), b, name[len(prefix):]
			}
		}
	}
	r.mu.RUnlock()
	if ok || build == nil {
		return k, ok, nil
	}
	k, err := build(config)
	if err != nil {
		return nil, true, fmt.Errorf("kernel: building %q: %w", name, err)
	}
	r.Put(name, k)
	k, _ = r.Get(name)
	return k, true, nil
}

// Names lists the registered names in order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.kernels))
	for n := range r.kernels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the kernel under name as a T, with an error that explains
// how to register it when it is missing.
func Lookup[T any](r *Registry, name string) (T, error) {
	var zero T
	k, ok, err := r.get(name)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, fmt.Errorf("kernel: %q is not registered in this worker binary; "+
			"the worker must be the same program that built the pipeline, and functions used only "+
			"in conditional code paths must be registered in an init function with gale.Register", name)
	}
	t, ok := k.(T)
	if !ok {
		return zero, fmt.Errorf("kernel: %q is a %T, not the kind of kernel this stage needs", name, k)
	}
	return t, nil
}

// Abort is panicked by kernels to stop a stage from deep inside an emit
// chain (a failed write, a cancelled context); the worker recovers it and
// fails the task with Err.
type Abort struct{ Err error }

func (a Abort) Error() string { return a.Err.Error() }

// Ranged is the kernel of a sort: it extracts order-preserving binary keys
// from elements, samples them, range-partitions by split points, and sorts a
// partition under a memory budget.
type Ranged interface {
	// Sampler returns a sink that keeps a uniform sample of at most max
	// keys of the elements fed to it, drawn with a generator seeded by
	// seed (so a retried task samples the same keys), each cut to at most
	// maxKey bytes (a sample key only needs to order split points).
	Sampler(max, maxKey int, seed uint64) Sampler
	// Writer returns the map-side writer that sends each element to
	// partition(key) of parts partitions (range partitioning by split
	// points; partition is safe to call with a key the writer reuses
	// afterwards, and returns a value in [0, parts)). With keyed set,
	// each record is the length-prefixed key then the length-prefixed
	// payload (the record format of Glider's sort actions, which sort by
	// the key); otherwise the length-prefixed payload alone.
	Writer(partition func(key []byte) int, parts int, keyed bool) (ShuffleWriter, error)
	// EmitSorted reads keyed records that are already in key order (a
	// Glider sort action's output) and calls next with each element.
	EmitSorted(ctx context.Context, sorted io.Reader, next any) (int64, error)
	// Sort reads one partition's records from segments, sorts them by key
	// within cfg's memory budget (spilling sorted runs to cfg.TempDir and
	// merging them when they do not fit) and calls next with each element
	// in order.
	Sort(ctx context.Context, segments []io.Reader, cfg SortConfig, next any) (int64, error)
}

// Sampler is a sink that samples keys.
type Sampler interface {
	// Emit returns the func(T) to feed.
	Emit() any
	// Keys returns the sampled keys.
	Keys() [][]byte
	// Records reports how many elements were fed.
	Records() int64
}

// SortConfig is the budget of a sort task.
type SortConfig struct {
	// MemoryBytes bounds the records a task buffers in memory.
	MemoryBytes int64
	// TempDir is where sorted runs spill.
	TempDir string
	// Stats, when set, receives the sort's spill statistics.
	Stats func(runs int, spilledBytes int64)
}
