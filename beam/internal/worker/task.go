// Package worker runs one task of a Beam stage inside a Gale worker: it
// unmarshals the stage's ProcessBundleDescriptor into an execution plan of
// the Beam Go SDK's exec package and executes it with Gale's own data
// manager and state reader, which read the task's input partition and side
// inputs from Gale's temporary store and write each DataSink's elements
// into partitioned shuffle objects there. No Fn API gRPC service is
// involved: the SDK runs in the worker's own process.
//
// Task is the descriptor the runner's driver sends (payload kind Kind) and
// Result what a task returns. Handler returns the backends.Handler that
// serves them; the runner registers it with the worker's Mux.
//
// A group input is grouped by hashing each record's encoded key and
// window while the partition's records take at most half of the task's
// memory budget (Task.MemoryBytes); past that, by an external sort
// (shuffle/extsort) that spills sorted runs to the worker's local disk
// (Config.SpillDir) and streams each group from the merged runs (see
// spill.go); a hot key's values past a quarter of that budget go to a
// local file the plan reads as a state-backed iterable (iterables.go).
// Runs and files are removed when the task ends, however it ends.
// A DataSink fed by a lifted
// combine's precombine merges its partial accumulators before writing
// them, with the pipeline's own CombineFn run through a second small plan
// (see combiner.go), so a task writes about one accumulator per key.
//
// This package imports the Beam Go SDK, Gale's engine (for its metrics
// and store cache), objstore, shuffle (record framing, the hash
// partitioner, segment and range types), shuffle/objects (the shuffle
// object layout's writer and reader: the engine's own), shuffle/extsort,
// beam/internal/stages (a TestStream's replay description), go-humanize
// (sizes in error messages) and the standard library. Goroutines:
// per task, one feeder of the DataSource's element channel at a time (one
// per bundle) and one decoder per DataSink; a merging sink's decoder runs
// the merge plan, with its own feeder and one decoder for the merged
// output, and waits for both; a keyed input (a stateful ParDo's stage,
// keyed.go) has one producer that groups the partition and hands the
// bundles its batches of keys. The task stops and waits for all of them
// before it returns.
//
// A task may run its plan in several bundles: a keyed input's batches of
// keys and their timers (keyed.go, userstate.go), and the work splittable
// DoFns defer (resume.go); bundle finalization callbacks run after the
// task's output is written.
package worker

import (
	"time"

	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/engine"
)

// Kind is the payload kind of a Beam stage task.
const Kind = "gale.beam/v1"

// Version is the version of Task and Result; a worker refuses another.
const Version = 2

// DefaultMemoryBytes is a task's memory budget when its Task sets none:
// Gale's default worker memory, the size of a small function.
const DefaultMemoryBytes = engine.DefaultWorkerMemory

// Edge kinds, as the driver names them in a Task.
const (
	EdgeGroup        = "group"
	EdgeRedistribute = "redistribute"
	EdgeSide         = "side"
	EdgeKeyed        = "keyed"
)

// Task is the descriptor of one attempt of one task of a Beam stage.
type Task struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	Job     string `json:"job"`
	Stage   int    `json:"stage"`
	Task    int    `json:"task"`
	Attempt int    `json:"attempt"`
	// Descriptor is the stage's ProcessBundleDescriptor, proto-encoded.
	Descriptor []byte `json:"descriptor"`
	// Input feeds the stage's DataSource.
	Input Input `json:"input"`
	// Outputs routes each DataSink.
	Outputs []Output `json:"outputs,omitempty"`
	// Sides are the side inputs of the stage's transforms.
	Sides []Side `json:"sides,omitempty"`
	// MemoryBytes is the task's memory budget: the memory of the worker
	// that runs it, as the runner knows it. Grouping a group input holds
	// at most half of it in a hash table; past that the partition is
	// grouped by an external sort that spills to the worker's local disk.
	// 0 means DefaultMemoryBytes.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// Options are the job's pipeline options, which the task's DoFns read
	// through beam.PipelineOptions.
	Options map[string]string `json:"options,omitempty"`
	// LogSeverity is the lowest Beam log severity (log.Severity) the task
	// returns of what its code logs (Result.Logs); 0 keeps everything.
	LogSeverity int `json:"log_severity,omitempty"`
	// Temp is the job's temporary store, StoreOptions its client options.
	Temp         string            `json:"temp"`
	StoreOptions map[string]string `json:"store_options,omitempty"`
}

// Input is what a task reads.
type Input struct {
	// Transform is the DataSource transform's ID.
	Transform string `json:"transform"`
	// Impulse: the single empty element of a Beam Impulse.
	Impulse bool `json:"impulse,omitempty"`
	// TestStream is the payload (pipepb.TestStreamPayload) of the
	// TestStream the task replays: one bundle per element event.
	TestStream []byte `json:"test_stream,omitempty"`
	// Edge is "group" or "redistribute" otherwise; Segments are this
	// task's partition in every producer's shuffle object.
	Edge     string           `json:"edge,omitempty"`
	Segments []engine.Segment `json:"segments,omitempty"`
	// Coder is the windowed-value coder of the group edge's input
	// elements (KV<K, V>), an ID in the descriptor's coders.
	Coder string `json:"coder,omitempty"`
	// Group edges: the records carry each value's window (Merging) or
	// timestamp (Timestamps) as their Output wrote them; OutputTime is
	// the timestamp combiner of the groups (pipeline proto's OutputTime:
	// 0 or 1 end of window, 2 latest, 3 earliest in pane).
	Merging    bool `json:"merging,omitempty"`
	Timestamps bool `json:"timestamps,omitempty"`
	OutputTime int  `json:"output_time,omitempty"`
	// Replay makes a group input fire panes by its trigger and the
	// watermark (replay.go) instead of one group per window.
	Replay *stages.Replay `json:"replay,omitempty"`
}

// Output routes one DataSink.
type Output struct {
	Transform  string `json:"transform"`
	Edge       int    `json:"edge"`
	Kind       string `json:"kind"`
	Partitions int    `json:"partitions"`
	// Coder is the windowed-value coder of the elements, an ID in the
	// descriptor's coders.
	Coder string `json:"coder"`
	// Group edges: Merging makes each record's value field carry the
	// value's window (and groups by key alone), Timestamps its timestamp
	// (see windows.go). Epochs makes it carry the TestStream epoch of
	// the bundle that wrote it (replay.go).
	Merging    bool `json:"merging,omitempty"`
	Timestamps bool `json:"timestamps,omitempty"`
	Epochs     bool `json:"epochs,omitempty"`
}

// Side is one side input: every element of a side edge.
type Side struct {
	Transform string           `json:"transform"`
	Local     string           `json:"local"`
	Multimap  bool             `json:"multimap,omitempty"`
	Coder     string           `json:"coder"`
	Segments  []engine.Segment `json:"segments"`
}

// Result is what a task returns.
type Result struct {
	Version  int            `json:"version"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Instance string         `json:"instance,omitempty"`
	Cold     bool           `json:"cold,omitempty"`
	Metrics  engine.Metrics `json:"metrics"`
	// Outputs locates each DataSink's shuffle object and its partitions.
	Outputs []OutputResult `json:"outputs,omitempty"`
	// User holds the Beam metrics (counters, distributions) the task's
	// DoFns reported.
	User []UserMetric `json:"user,omitempty"`
	// Logs are the messages the task's code logged through the Beam
	// SDK's log package, LogsDropped how many more it logged past the
	// task's limit.
	Logs        []LogEntry `json:"logs,omitempty"`
	LogsDropped int        `json:"logs_dropped,omitempty"`
}

// OutputResult is one DataSink's shuffle object.
type OutputResult struct {
	Transform string         `json:"transform"`
	Edge      int            `json:"edge"`
	Key       string         `json:"key"`
	Parts     []engine.Range `json:"parts"`
}

// UserMetric is one Beam metric of one transform.
type UserMetric struct {
	Step      string `json:"step"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Kind is "counter" (Value) or "distribution" (Count, Sum, Min, Max).
	Kind  string `json:"kind"`
	Value int64  `json:"value,omitempty"`
	Count int64  `json:"count,omitempty"`
	Sum   int64  `json:"sum,omitempty"`
	Min   int64  `json:"min,omitempty"`
	Max   int64  `json:"max,omitempty"`
}
