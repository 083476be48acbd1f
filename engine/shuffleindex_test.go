package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestShuffleIndexSegmentsInProducerOrder adds map outputs to a shuffle's
// index in a seeded random order (tasks win in any order), some tasks with
// two outputs and most partitions empty, and checks each partition's
// segments against the list read straight from the outputs in (producer
// stage, task, output) order, empty ranges left out: what reduce task
// descriptors held before the index, minus the empty segments.
func TestShuffleIndexSegmentsInProducerOrder(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		parts := 1 + rng.IntN(40)
		stages := []int{1 + rng.IntN(30), 1 + rng.IntN(30)} // two producer stages
		type task struct {
			rank int64
			outs []ShuffleOutput
		}
		var tasks []task
		var rank int64
		for si, n := range stages {
			for ti := range n {
				tk := task{rank: rank}
				rank++
				for o := range 1 + rng.IntN(2) {
					out := ShuffleOutput{Shuffle: 0, Key: fmt.Sprintf("s%d-t%d-o%d", si, ti, o), Parts: make([]Range, parts)}
					var off int64
					for p := range out.Parts {
						n := int64(0)
						if rng.IntN(4) == 0 {
							n = 1 + rng.Int64N(1<<20)
						}
						out.Parts[p] = Range{Off: off, Len: n}
						off += n
					}
					tk.outs = append(tk.outs, out)
				}
				tasks = append(tasks, tk)
			}
		}
		want := make([][]Segment, parts)
		var stored int64
		for _, tk := range tasks {
			for _, out := range tk.outs {
				for p, r := range out.Parts {
					stored += r.Len
					if r.Len > 0 {
						want[p] = append(want[p], Segment{Key: out.Key, Off: r.Off, Len: r.Len})
					}
				}
			}
		}
		x := newShuffleIndex(parts)
		for _, i := range rng.Perm(len(tasks)) {
			for _, out := range tasks[i].outs {
				x.add(tasks[i].rank, out)
			}
		}
		for p := range parts {
			got := x.segments(p, p+1)
			if len(got) == 0 && len(want[p]) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want[p]) {
				t.Fatalf("seed %d: partition %d: segments\n%v\nwant\n%v", seed, p, got, want[p])
			}
		}
		// Coalesced reads: a run of partitions gives, per output with
		// data in it, one segment from its first non-empty partition of
		// the run to the end of its last.
		for _, run := range []int{2, 3, 7, parts} {
			for lo := 0; lo < parts; lo += run {
				hi := min(lo+run, parts)
				var want []Segment
				for _, tk := range tasks {
					for _, out := range tk.outs {
						first, last := -1, -1
						for p := lo; p < hi; p++ {
							if out.Parts[p].Len > 0 {
								if first < 0 {
									first = p
								}
								last = p
							}
						}
						if first >= 0 {
							end := out.Parts[last].Off + out.Parts[last].Len
							want = append(want, Segment{Key: out.Key, Off: out.Parts[first].Off, Len: end - out.Parts[first].Off})
						}
					}
				}
				got := x.segments(lo, hi)
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d: partitions [%d, %d): segments\n%v\nwant\n%v", seed, lo, hi, got, want)
				}
			}
		}
		if x.stored != stored {
			t.Fatalf("seed %d: stored %d bytes, want %d", seed, x.stored, stored)
		}
	}
}

// TestShuffleIndexRunKeepsGaps reads a run of partitions from an output
// whose partitions are not adjacent: the bytes between them are not the
// shuffle's, so the run's segments stay apart rather than cover the gap.
func TestShuffleIndexRunKeepsGaps(t *testing.T) {
	x := newShuffleIndex(4)
	x.add(1, ShuffleOutput{Key: "b", Parts: []Range{{Off: 0, Len: 5}, {Off: 5, Len: 0}, {Off: 5, Len: 3}, {Off: 9, Len: 2}}})
	x.add(0, ShuffleOutput{Key: "a", Parts: []Range{{Off: 0, Len: 1}, {Off: 1, Len: 2}, {Off: 3, Len: 0}, {Off: 3, Len: 4}}})
	got := x.segments(0, 4)
	want := []Segment{{Key: "a", Off: 0, Len: 7}, {Key: "b", Off: 0, Len: 8}, {Key: "b", Off: 9, Len: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("segments\n%v\nwant\n%v", got, want)
	}
}

// TestShuffleOutputJSONRoundTrip encodes map outputs whose partitions are
// contiguous (sent as lengths), not contiguous or counted (sent as
// ranges), empty and absent (a glider output), and decodes them back.
func TestShuffleOutputJSONRoundTrip(t *testing.T) {
	outs := []ShuffleOutput{
		{Op: 1, Shuffle: 2, Key: "k", Parts: []Range{{Off: 0, Len: 5, Records: 0}, {Off: 5, Len: 0, Records: 0}, {Off: 5, Len: 300, Records: 0}, {Off: 305, Len: 1 << 40, Records: 0}}},
		{Op: 1, Shuffle: 2, Key: "gap", Parts: []Range{{Off: 0, Len: 5, Records: 0}, {Off: 6, Len: 1, Records: 0}}},
		{Op: 1, Shuffle: 2, Key: "counted", Parts: []Range{{Off: 0, Len: 5, Records: 2}}},
		{Op: 1, Shuffle: 2, Key: "empty", Parts: []Range{{Off: 0, Len: 0, Records: 0}, {Off: 0, Len: 0, Records: 0}}},
		{Op: 3, Shuffle: 0},
	}
	for _, o := range outs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var got ShuffleOutput
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("%s decoded to %+v, want %+v", b, got, o)
		}
		if compact := bytes.Contains(b, []byte("part_lens")); compact != (o.Key == "k" || o.Key == "empty") {
			t.Errorf("%s: compact form %v", b, compact)
		}
	}
	for _, bad := range []string{`{"key":"x","n":3,"part_lens":"AQ=="}`, `{"key":"x","n":1,"part_lens":"AQE="}`, `{"key":"x","n":1,"part_lens":"gA=="}`} {
		var o ShuffleOutput
		if err := json.Unmarshal([]byte(bad), &o); err == nil {
			t.Errorf("%s decoded without an error: %+v", bad, o)
		}
	}
}
