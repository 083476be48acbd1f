package planner

import (
	"fmt"
	"time"
)

// ChunkInputs is what the planner knows when it chooses how many map tasks
// read a text source: the input, the backend and, when the backend was
// probed, the shortest task worth sending. Primula's lesson (Middleware
// '20): users should not have to pick the number of functions.
type ChunkInputs struct {
	// InputBytes is the size of the source's files together; Files how
	// many there are.
	InputBytes int64
	Files      int
	// Concurrency is how many tasks the backend runs at once.
	Concurrency int
	// MemoryBytes is the memory of one function (the task's budget, or
	// the backend's memory per instance); 0 when unknown.
	MemoryBytes int64
	// MinTaskDuration is the probe's shortest worthwhile task (nine
	// median cold starts, probe.Hint); 0 without a probe.
	MinTaskDuration time.Duration
	// ReadBytesPerSecond is one task's read bandwidth from the input's
	// store, which turns MinTaskDuration into bytes. Default
	// DefaultReadBytesPerSecond.
	ReadBytesPerSecond float64
	// MaxTasks caps the task count (a chunk is then at least
	// InputBytes/MaxTasks). 0: no cap.
	MaxTasks int
}

// Chunk sizes of ChooseChunk.
const (
	// WavesPerWorker is how many tasks per concurrent slot the planner
	// aims for: a few waves balance uneven tasks without making the
	// per-task overhead dominate.
	WavesPerWorker = 4
	// MinChunkBytes is the smallest chunk chosen without a probe: below a
	// few MiB a task's fixed costs (an invocation, a descriptor, a
	// shuffle object with a request per partition) outweigh its work.
	MinChunkBytes = 4 << 20
	// MaxChunkBytes is the largest chunk chosen: larger ones leave
	// functions idle at the end of the stage and hold more in memory.
	MaxChunkBytes = 64 << 20
	// DefaultReadBytesPerSecond is a function's read bandwidth from
	// object storage when no figure is given: 50 MiB/s, a conservative
	// single-stream S3 GET from Lambda (Pu et al., Locus, NSDI '19, and
	// Klimovic et al., Pocket, OSDI '18, measure 50-90 MB/s per
	// function).
	DefaultReadBytesPerSecond = 50 << 20
)

// ChunkChoice is a chosen chunk size and why.
type ChunkChoice struct {
	Bytes int64
	// Tasks is about how many chunks the input makes (files' last chunks
	// may add some).
	Tasks int
	// Why explains the choice in one line, for gale plan and the report.
	Why string
}

// ChooseChunk picks the chunk size of a text source: about WavesPerWorker
// tasks per concurrent function, so the stage runs in a few balanced
// waves; never less than a task worth its fixed costs (MinChunkBytes, or
// what the probe's MinTaskDuration reads at ReadBytesPerSecond), never
// more than MaxChunkBytes or a quarter of a function's memory (a task
// holds its chunk, its decoded records and its shuffle buffers), and
// within MaxTasks. It is a pure function of its inputs.
func ChooseChunk(in ChunkInputs) ChunkChoice {
	conc := max(in.Concurrency, 1)
	bw := in.ReadBytesPerSecond
	if bw <= 0 {
		bw = DefaultReadBytesPerSecond
	}
	per := in.InputBytes / int64(WavesPerWorker*conc)
	c := per
	why := fmt.Sprintf("%s over %d function(s) x %d waves", FormatBytes(in.InputBytes), conc, WavesPerWorker)
	floor, floorWhy := int64(MinChunkBytes), "the smallest task worth its fixed costs"
	if in.MinTaskDuration > 0 {
		// The probe says how short a task may be: its cold start is then
		// at most a tenth of the task.
		f := int64(in.MinTaskDuration.Seconds() * bw)
		floor = min(max(f, 1<<20), MaxChunkBytes)
		floorWhy = fmt.Sprintf("what a task reads in the probe's shortest worthwhile task, %s at %s/s",
			in.MinTaskDuration.Round(time.Millisecond), FormatBytes(int64(bw)))
	}
	ceil, ceilWhy := int64(MaxChunkBytes), "the largest chunk"
	if in.MemoryBytes > 0 && in.MemoryBytes/4 < ceil {
		ceil, ceilWhy = max(in.MemoryBytes/4, 64<<10), fmt.Sprintf("a quarter of a function's %s", FormatBytes(in.MemoryBytes))
	}
	switch {
	case c < floor && floor <= ceil:
		c = floor
		why += fmt.Sprintf(" is %s per task, raised to %s, %s", FormatBytes(per), FormatBytes(c), floorWhy)
	case c > ceil || floor > ceil:
		c = ceil
		why += fmt.Sprintf(" is %s per task, capped at %s, %s", FormatBytes(per), FormatBytes(c), ceilWhy)
	default:
		why += fmt.Sprintf(" = %s per task", FormatBytes(c))
	}
	if in.MaxTasks > 0 {
		// Each file's last chunk may be short, so a chunk of
		// InputBytes/(MaxTasks-Files) is enough.
		if room := int64(in.MaxTasks - in.Files); room > 0 && c < (in.InputBytes+room-1)/room {
			c = (in.InputBytes + room - 1) / room
			why += fmt.Sprintf(", raised to %s to stay within %d tasks", FormatBytes(c), in.MaxTasks)
		}
	}
	c = max(c, 1)
	tasks := int((in.InputBytes + c - 1) / c)
	return ChunkChoice{Bytes: c, Tasks: max(tasks, in.Files, 1), Why: why}
}
