package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/shuffle"
)

// StageTaskKind is the value of the "kind" field of a stage task
// descriptor; the worker runtime routes payloads by that field.
const StageTaskKind = "gale.stage/v1"

// SpecVersion is the version of the task descriptor and result format.
// A worker refuses descriptors of another version, naming both. Version 2
// carries a sort's split points compactly (shuffle.Splits); version 3 a
// map task's contiguous shuffle partitions as their lengths
// (ShuffleOutput's JSON) and a reduce task's non-empty segments only.
const SpecVersion = 3

// TaskSpec is the serialized descriptor of one task attempt: everything a
// worker needs to run it, by name and location, never code.
type TaskSpec struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	Job     string `json:"job"`
	Stage   int    `json:"stage"`
	Task    int    `json:"task"`
	Attempt int    `json:"attempt"`
	// Ops is the stage's fused operation tree; Roots are fed by Input.
	Ops   []OpSpec `json:"ops"`
	Roots []int    `json:"roots"`
	// InputElem is the element kernel of the input's elements.
	InputElem string    `json:"input_elem"`
	Input     InputSpec `json:"input"`
	// Temp is the URL of the job's temporary store (shuffles, attempt
	// outputs); StoreOptions configure store clients (S3 endpoint, ...).
	Temp         string            `json:"temp"`
	StoreOptions map[string]string `json:"store_options,omitempty"`
	// MemoryBytes is the task's memory budget for buffered records (sorts
	// spill beyond it) and SpillDir where spills go (default: the
	// system's temporary directory).
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	SpillDir    string `json:"spill_dir,omitempty"`
	// Tasks is the number of tasks of the stage; DSO reaches the job's
	// shared-object servers (iterate workers).
	Tasks int        `json:"tasks,omitempty"`
	DSO   *DSOConfig `json:"dso,omitempty"`
	// Glider reaches the Glider cluster of glider shuffles.
	Glider *GliderConfig `json:"glider,omitempty"`
}

// DSOConfig locates shared-object servers.
type DSOConfig struct {
	Servers []string `json:"servers"`
	Token   string   `json:"token"`
}

// OpSpec is one operation of a task's tree.
type OpSpec struct {
	Kind     planner.OpKind `json:"kind"`
	Node     int            `json:"node"`
	Kernel   string         `json:"kernel,omitempty"`
	Elem     string         `json:"elem,omitempty"`
	Params   []byte         `json:"params,omitempty"`
	Children []int          `json:"children,omitempty"`
	// Sides are the side inputs of a narrow operation, materialized
	// before its first element.
	Sides []SideSpec `json:"sides,omitempty"`
	// Shuffle writes.
	Shuffle    int  `json:"shuffle,omitempty"`
	Combine    bool `json:"combine,omitempty"`
	Partitions int  `json:"partitions,omitempty"`
	// Range writes: the sort's split points, inline, or in object
	// SplitsKey of the temporary store when they are large.
	Splits    *shuffle.Splits `json:"splits,omitempty"`
	SplitsKey string          `json:"splits_key,omitempty"`
	Range     bool            `json:"range,omitempty"`
	// Glider: stream partitions into the shuffle's Glider actions.
	Glider bool `json:"glider,omitempty"`
	// Samples: how many keys to keep.
	SampleSize int `json:"sample_size,omitempty"`
	// Sinks.
	Sink *SinkSpec `json:"sink,omitempty"`
}

// SideSpec locates one side input: the encoded records its sink node
// wrote into the temporary store, and the view kernel that turns them
// into the value the operation's kernel receives.
type SideSpec struct {
	Node   int      `json:"node"`
	Kernel string   `json:"kernel"`
	Label  string   `json:"label"`
	Keys   []string `json:"keys,omitempty"`
	Bytes  int64    `json:"bytes"`
}

// SinkSpec tells a task where its sink output goes.
type SinkSpec struct {
	// Format is "text", "records" (encoded) or "raw" (bytes as they are).
	Format string `json:"format"`
	// URL is the store that receives the attempt's output, Prefix the key
	// prefix within it; the worker appends a unique name.
	URL    string `json:"url"`
	Prefix string `json:"prefix"`
}

// Input kinds.
const (
	InputText     = "text"
	InputRecords  = "records"
	InputGenerate = "generate"
	InputShuffle  = "shuffle"
	InputFixed    = "fixed"
	// InputFile tasks read a whole object through the FileReader kernel
	// Kernel (CSV, JSON lines), decompressing it if Compression is set.
	InputFile = "file"
)

// Compressions of text and record inputs.
const (
	CompressionGzip  = "gzip"
	CompressionBzip2 = "bzip2"
	CompressionZstd  = "zstd"
)

// InputSpec is what one task reads.
type InputSpec struct {
	Kind string `json:"kind"`
	// Text: the byte range [Off, Off+Len) of object Key in store URL; the
	// task reads the lines that start in the range.
	URL string `json:"url,omitempty"`
	Key string `json:"key,omitempty"`
	Off int64  `json:"off,omitempty"`
	Len int64  `json:"len,omitempty"`
	// Fixed: records of RecordSize bytes in [Off, Off+Len) of Key.
	RecordSize int `json:"record_size,omitempty"`
	// Compression, for text and fixed-size records, names the whole
	// object's compression (CompressionGzip, ...): the task reads all of
	// it through the decompressor, Off is 0 and Len its stored size.
	Compression string `json:"compression,omitempty"`
	// File is the name of the object as the program gave it (a path or
	// URL) for a text input read with file names and for InputFile: text
	// lines are paired with it, and parse errors name it.
	File string `json:"file,omitempty"`
	// Records: encoded records, inline or in object Key of URL.
	Inline []byte `json:"inline,omitempty"`
	// Generate: indices [Lo, Hi) through generator Kernel.
	Lo     int64  `json:"lo,omitempty"`
	Hi     int64  `json:"hi,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	// Shuffle: the partition's segments in every map output, read with
	// keyed Kernel; Combined tells whether they hold partial aggregates.
	Segments []Segment `json:"segments,omitempty"`
	Combined bool      `json:"combined,omitempty"`
	// Range: the kernel is a sort's, and the partition is sorted.
	Range bool `json:"range,omitempty"`
	// Glider: read the partition from action ActionPath(job, Shuffle,
	// task) instead of Segments.
	Glider  bool `json:"glider,omitempty"`
	Shuffle int  `json:"shuffle,omitempty"`
	// SortOutput: the partition's sort action writes the sink's part file
	// itself; the task only triggers that and reports the file.
	SortOutput *GliderSortOutput `json:"sort_output,omitempty"`
	// GliderAction: read the lines a Glider filter action streams (a
	// Filter lowered onto text stored in Glider) instead of the range.
	GliderAction string `json:"glider_action,omitempty"`
	// Expect, for text, fixed-size records and whole files, is what object Key was when
	// the job was planned: the task refuses to read it if it has changed,
	// and the driver checks it again before committing the output
	// (ErrInputChanged). Nil: not checked.
	Expect *ObjectStamp `json:"expect,omitempty"`
}

// Segment is a byte range of a shuffle object in the temporary store
// (shuffle.Segment).
type Segment = shuffle.Segment

// TaskResult is what a task attempt returns.
type TaskResult struct {
	Version  int       `json:"version"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Instance string    `json:"instance,omitempty"`
	Cold     bool      `json:"cold,omitempty"`
	Metrics  Metrics   `json:"metrics"`
	// Shuffles lists each shuffle write's object and partition ranges.
	Shuffles []ShuffleOutput `json:"shuffles,omitempty"`
	// Sinks lists each sink's output object.
	Sinks []SinkOutput `json:"sinks,omitempty"`
	// Samples holds the keys a sampling task kept.
	Samples [][]byte `json:"samples,omitempty"`
}

// Metrics counts what a task (or a stage, summed) did.
type Metrics struct {
	RecordsIn  int64 `json:"records_in"`
	RecordsOut int64 `json:"records_out"`
	// Bytes and requests across the worker/storage boundary, per tier:
	// object storage (job input and output) and shuffle.
	ObjectBytesRead     int64 `json:"object_bytes_read"`
	ObjectBytesWritten  int64 `json:"object_bytes_written"`
	ShuffleBytesRead    int64 `json:"shuffle_bytes_read"`
	ShuffleBytesWritten int64 `json:"shuffle_bytes_written"`
	// Requests counts every storage request; the four counts below split
	// it by tier (object storage: the job's inputs and outputs; shuffle:
	// the temporary store or Glider between stages) and by kind (reads:
	// GET and HEAD; writes: PUT, and Glider stream ends), the classes
	// object stores price and rate-limit apart.
	Requests    int64 `json:"requests"`
	ObjectGets  int64 `json:"object_gets,omitempty"`
	ObjectPuts  int64 `json:"object_puts,omitempty"`
	ShuffleGets int64 `json:"shuffle_gets,omitempty"`
	ShufflePuts int64 `json:"shuffle_puts,omitempty"`
	// Sort spills: sorted runs written to local disk and their bytes.
	SpillRuns  int64 `json:"spill_runs,omitempty"`
	SpillBytes int64 `json:"spill_bytes,omitempty"`
}

// Add adds o to m.
func (m *Metrics) Add(o Metrics) {
	m.RecordsIn += o.RecordsIn
	m.RecordsOut += o.RecordsOut
	m.ObjectBytesRead += o.ObjectBytesRead
	m.ObjectBytesWritten += o.ObjectBytesWritten
	m.ShuffleBytesRead += o.ShuffleBytesRead
	m.ShuffleBytesWritten += o.ShuffleBytesWritten
	m.Requests += o.Requests
	m.ObjectGets += o.ObjectGets
	m.ObjectPuts += o.ObjectPuts
	m.ShuffleGets += o.ShuffleGets
	m.ShufflePuts += o.ShufflePuts
	m.SpillRuns += o.SpillRuns
	m.SpillBytes += o.SpillBytes
}

// objectGet, objectPut, shuffleGet and shufflePut count n requests of
// their tier and kind (and in Requests).
func (m *Metrics) objectGet(n int64)  { m.ObjectGets += n; m.Requests += n }
func (m *Metrics) objectPut(n int64)  { m.ObjectPuts += n; m.Requests += n }
func (m *Metrics) shuffleGet(n int64) { m.ShuffleGets += n; m.Requests += n }
func (m *Metrics) shufflePut(n int64) { m.ShufflePuts += n; m.Requests += n }

// ShuffleOutput locates one map task's output for one shuffle.
type ShuffleOutput struct {
	Op      int     `json:"op"`
	Shuffle int     `json:"shuffle"`
	Key     string  `json:"key"`
	Parts   []Range `json:"parts"`
}

// shuffleOutputJSON is ShuffleOutput's form in a result. A map task's
// partitions usually lie one after the other from offset 0 with no record
// counts: they then travel as PartLens, the uvarint lengths (base64 in
// JSON), a few bytes per partition instead of an object of three fields —
// decoding those objects was a quarter of the driver's CPU time at 4096
// map tasks of 4000 partitions. Other outputs travel as Parts.
type shuffleOutputJSON struct {
	Op       int     `json:"op"`
	Shuffle  int     `json:"shuffle"`
	Key      string  `json:"key"`
	Parts    []Range `json:"parts,omitempty"`
	PartLens []byte  `json:"part_lens,omitempty"`
	N        int     `json:"n,omitempty"` // partitions in PartLens
}

// MarshalJSON encodes o compactly when its partitions are contiguous.
func (o ShuffleOutput) MarshalJSON() ([]byte, error) {
	j := shuffleOutputJSON{Op: o.Op, Shuffle: o.Shuffle, Key: o.Key}
	var off int64
	compact := true
	for _, p := range o.Parts {
		if p.Off != off || p.Records != 0 || p.Len < 0 {
			compact = false
			break
		}
		off += p.Len
	}
	if compact && len(o.Parts) > 0 {
		j.N = len(o.Parts)
		j.PartLens = make([]byte, 0, len(o.Parts))
		for _, p := range o.Parts {
			j.PartLens = binary.AppendUvarint(j.PartLens, uint64(p.Len))
		}
	} else {
		j.Parts = o.Parts
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes either form.
func (o *ShuffleOutput) UnmarshalJSON(b []byte) error {
	var j shuffleOutputJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*o = ShuffleOutput{Op: j.Op, Shuffle: j.Shuffle, Key: j.Key, Parts: j.Parts}
	if j.N > 0 {
		if j.N > len(j.PartLens) {
			return fmt.Errorf("engine: shuffle output %s: %d partitions in %d bytes of lengths", j.Key, j.N, len(j.PartLens))
		}
		o.Parts = make([]Range, j.N)
		rest := j.PartLens
		var off int64
		for i := range o.Parts {
			n, k := binary.Uvarint(rest)
			if k <= 0 || n > math.MaxInt64/2 {
				return fmt.Errorf("engine: shuffle output %s: malformed length of partition %d", j.Key, i)
			}
			rest = rest[k:]
			o.Parts[i] = Range{Off: off, Len: int64(n)}
			off += int64(n)
		}
		if len(rest) > 0 {
			return fmt.Errorf("engine: shuffle output %s: %d bytes after the lengths of %d partitions", j.Key, len(rest), j.N)
		}
	}
	return nil
}

// Range is one partition's bytes within a shuffle object (shuffle.Range).
type Range = shuffle.Range

// SinkOutput locates one attempt's sink output.
type SinkOutput struct {
	Op      int    `json:"op"`
	Node    int    `json:"node"`
	Key     string `json:"key"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	// Glider, when set, is the Glider file a sort action wrote for this
	// output (Key is then empty): the commit copies it to the output.
	Glider string `json:"glider,omitempty"`
}

// decodeSpec parses and checks a descriptor.
func decodeSpec(payload []byte) (*TaskSpec, error) {
	var s TaskSpec
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("engine: malformed task descriptor: %w", err)
	}
	if s.Kind != StageTaskKind {
		return nil, fmt.Errorf("engine: task descriptor kind %q, want %q", s.Kind, StageTaskKind)
	}
	if s.Version != SpecVersion {
		return nil, fmt.Errorf("engine: task descriptor version %d, this worker speaks version %d; "+
			"deploy the same Gale version as the driver", s.Version, SpecVersion)
	}
	for i, op := range s.Ops {
		for _, c := range op.Children {
			if c <= i || c >= len(s.Ops) {
				return nil, fmt.Errorf("engine: task descriptor op %d has invalid child %d", i, c)
			}
		}
	}
	for _, r := range s.Roots {
		if r < 0 || r >= len(s.Ops) {
			return nil, fmt.Errorf("engine: task descriptor has invalid root %d", r)
		}
	}
	return &s, nil
}
