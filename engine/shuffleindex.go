package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// shuffleIndex is the driver's record of where one shuffle's partitions
// lie in its map outputs, kept compactly so that the driver's memory grows
// with the segments that hold data, a few bytes each, rather than with a
// Range of 24 bytes (and a decoded slice's slack) per map output and
// partition. At 4096 map tasks and 4000 partitions the winners' Parts
// slices alone held 16 million Ranges, about 400 MB; most of them were
// empty.
//
// A winning map task's outputs are added once (add), in whatever order
// the tasks win; a reduce task's segments come back in the order of the
// producing (stage, task, output), as they did when the driver read them
// from every winner, so reduce inputs are unchanged.
type shuffleIndex struct {
	parts int
	// keys and order describe each map output added: its object key, and
	// its rank in (producer stage, task, output) order.
	keys  []string
	order []int64
	// segs holds, per partition, its non-empty segments as uvarints:
	// output index, offset, length.
	segs   [][]byte
	stored int64 // bytes of every partition of every output
}

func newShuffleIndex(parts int) *shuffleIndex {
	return &shuffleIndex{parts: parts, segs: make([][]byte, parts)}
}

// add records one output of a winning map task; rank orders the task
// among the shuffle's producers (a task's outputs keep the order they are
// added in). The output has the index's partition count (checked when
// the result arrived).
func (x *shuffleIndex) add(rank int64, out ShuffleOutput) {
	idx := uint64(len(x.keys))
	x.keys = append(x.keys, out.Key)
	x.order = append(x.order, rank)
	for p, r := range out.Parts {
		x.stored += r.Len
		if r.Len == 0 {
			continue
		}
		b := x.segs[p]
		b = binary.AppendUvarint(b, idx)
		b = binary.AppendUvarint(b, uint64(r.Off))
		b = binary.AppendUvarint(b, uint64(r.Len))
		x.segs[p] = b
	}
}

// segments returns the non-empty segments of partitions [lo, hi) in
// producer order. A map output's partitions lie contiguously in partition
// order, so one range from the first of them with data to the end of the
// last covers the whole run (coalesced reads, planner.Shuffle.ReadRun)
// and costs one request; partitions of an output that are not adjacent
// stay separate segments.
func (x *shuffleIndex) segments(lo, hi int) []Segment {
	type span struct {
		idx      uint64
		off, end int64
	}
	var spans []span
	last := map[uint64]int{} // output index -> its latest span in spans
	for p := lo; p < hi; p++ {
		b := x.segs[p]
		for len(b) > 0 {
			var v [3]uint64
			for i := range v {
				n, k := binary.Uvarint(b)
				v[i], b = n, b[k:]
			}
			off, end := int64(v[1]), int64(v[1]+v[2])
			if i, ok := last[v[0]]; ok && spans[i].end == off {
				spans[i].end = end
				continue
			}
			last[v[0]] = len(spans)
			spans = append(spans, span{v[0], off, end})
		}
	}
	// Producer order; one task's outputs in the order they were added,
	// one output's spans in partition order.
	slices.SortStableFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(x.order[a.idx], x.order[b.idx]), cmp.Compare(a.idx, b.idx))
	})
	out := make([]Segment, len(spans))
	for i, s := range spans {
		out[i] = Segment{Key: x.keys[s.idx], Off: s.off, Len: s.end - s.off}
	}
	return out
}
