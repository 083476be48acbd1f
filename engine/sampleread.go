package engine

import (
	"context"
	"math/rand/v2"

	"github.com/galeproject/gale/planner"
)

// A sort's sampling stage needs a sample of the keys reaching the sort,
// not all of them, so its tasks read a few windows of their input range
// instead of the whole of it: the range is cut into equal strata and one
// randomly placed window of sampleWindowBytes is read from each. A text
// window yields the lines that start in it (the reader completes a line
// crossing the window's end and skips one crossing its start, as for any
// range), a fixed-size-records window whole records, so the sample is
// drawn from the same records the sort ships, each line start or record
// equally likely to be in a window. The sample only steers the split
// points, never what the output holds: a skewed sample costs balance, not
// correctness.
//
// This is the one place that decides what a sampling task reads; the rest
// of the sampling stage (its operations, the reservoir of keys, the split
// points) is unchanged.

const (
	// sampleWindowBytes is the size of one sampled window.
	sampleWindowBytes = 64 << 10
	// sampleFraction is the share of its range a sampling task reads
	// (one window in every sampleFraction), between minSampleWindows and
	// maxSampleWindows windows.
	sampleFraction   = 16
	minSampleWindows = 16
	maxSampleWindows = 256
)

// sampleWindows returns the [off, off+len) windows a sampling task reads
// of its input range [off, off+n), in increasing order, with offsets
// aligned to align bytes from off (the record size of fixed-size records,
// 1 for text); nil means the task reads its whole range, because the range
// is too small for sampling to save much or the input cannot be read in
// pieces (compressed, a Glider filter's stream, not a byte range).
func sampleWindows(in InputSpec, seed uint64) [][2]int64 {
	if (in.Kind != InputText && in.Kind != InputFixed) || in.Compression != "" || in.GliderAction != "" {
		return nil
	}
	align := int64(1)
	if in.Kind == InputFixed {
		if in.RecordSize <= 0 {
			return nil
		}
		align = int64(in.RecordSize)
	}
	win := max(sampleWindowBytes/align, 1) * align
	slots := in.Len / win
	count := min(max(slots/sampleFraction, minSampleWindows), maxSampleWindows)
	if slots < 4*count {
		return nil // reading a quarter of the range or more: read it all
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a3b1e))
	out := make([][2]int64, 0, count)
	for i := range count {
		// Stratum i is slots [lo, hi); pick one of its windows.
		lo, hi := slots*i/count, slots*(i+1)/count
		s := lo + rng.Int64N(hi-lo)
		out = append(out, [2]int64{in.Off + s*win, win})
	}
	return out
}

// isSampling reports whether the task is a sort's sampling task: its
// operations end in a sample rather than a shuffle write or a sink.
func (t *task) isSampling() bool {
	for _, op := range t.spec.Ops {
		if op.Kind == planner.OpSample {
			return true
		}
		if op.Kind == planner.OpShuffleWrite || op.Kind == planner.OpSink {
			return false
		}
	}
	return false
}

// readSampled reads the windows of a sampling task's input, or its whole
// input when sampleWindows returns none; the metrics add up over windows.
func (t *task) readSampled(ctx context.Context, emit any) (sampled bool, err error) {
	if !t.isSampling() {
		return false, nil
	}
	whole := t.spec.Input
	wins := sampleWindows(whole, uint64(t.spec.Stage)<<32|uint64(t.spec.Task))
	if wins == nil {
		return false, nil
	}
	defer func() { t.spec.Input = whole }()
	for _, w := range wins {
		t.spec.Input.Off, t.spec.Input.Len = w[0], w[1]
		if err := t.read(ctx, emit); err != nil {
			return true, err
		}
	}
	return true, nil
}

// readInput feeds the task's input to emit: a sampling task's windows, or
// the whole input.
func (t *task) readInput(ctx context.Context, emit any) error {
	if sampled, err := t.readSampled(ctx, emit); sampled || err != nil {
		return err
	}
	return t.read(ctx, emit)
}
