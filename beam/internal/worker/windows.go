package worker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/galeproject/gale/shuffle"
)

// Windowing in a GroupByKey beyond "group by key and window, stamp at the
// window's end":
//
//   - Timestamp combiners. A windowing strategy whose output time is the
//     earliest or latest timestamp in the pane (beam.WindowInto's
//     window.Trigger options aside, e.g. the SDK's Reshuffle fallback or
//     a Java-style EARLIEST) needs the values' timestamps: the producer
//     puts each value's timestamp (8 bytes, the windowed-value encoding)
//     before it in the record's value field, and the consumer stamps each
//     group with the least or greatest of them.
//   - Merging windows (sessions). The producer writes the record with an
//     empty window field and the value's window, length-prefixed, at the
//     start of its value field, so the consumer groups by key alone; for
//     each key it merges the windows (overlapping intervals merge, as in
//     Beam's model: [a, b) and [c, d) merge when a < d and c < b) and
//     emits one group per merged window, values in arrival order. A key's
//     values are held in memory while its windows merge.

// valueLayout says what a group edge's record values carry besides the
// encoded value.
type valueLayout struct {
	merging    bool // the value's window, length-prefixed, first
	timestamps bool // then its timestamp, 8 bytes
	epochs     bool // then the TestStream epoch that produced it, a uvarint (replay.go)
	outputTime pipepb.OutputTime_Enum
	// epoch is the epoch packValue writes.
	epoch uint64
}

func (l valueLayout) plain() bool { return !l.merging && !l.timestamps && !l.epochs }

// packValue prefixes val with its window (merging) and timestamp.
func (l valueLayout) packValue(dst, win []byte, ts typex.EventTime, val []byte) []byte {
	if l.merging {
		dst = shuffle.AppendField(dst, win)
	}
	if l.timestamps {
		dst = binary.BigEndian.AppendUint64(dst, uint64(mtime.Time(ts).Milliseconds()-mtimeMinMillis))
	}
	if l.epochs {
		dst = binary.AppendUvarint(dst, l.epoch)
	}
	return append(dst, val...)
}

// mtimeMinMillis is the offset of the windowed-value timestamp encoding.
const mtimeMinMillis = -1 << 63

// unpackValue splits a packed value.
func (l valueLayout) unpackValue(v []byte) (win []byte, ts mtime.Time, val []byte, err error) {
	win, ts, _, val, err = l.unpack(v)
	return win, ts, val, err
}

// unpack splits a packed value, its epoch included.
func (l valueLayout) unpack(v []byte) (win []byte, ts mtime.Time, epoch uint64, val []byte, err error) {
	if l.merging {
		if win, v, err = shuffle.ReadField(v); err != nil {
			return nil, 0, 0, nil, err
		}
	}
	if l.timestamps {
		if len(v) < 8 {
			return nil, 0, 0, nil, fmt.Errorf("worker: truncated timestamp in a group record")
		}
		ts = mtime.FromMilliseconds(int64(binary.BigEndian.Uint64(v)) + mtimeMinMillis)
		v = v[8:]
	}
	if l.epochs {
		n := 0
		if epoch, n = binary.Uvarint(v); n <= 0 {
			return nil, 0, 0, nil, fmt.Errorf("worker: truncated epoch in a group record")
		}
		v = v[n:]
	}
	return win, ts, epoch, v, nil
}

// combineTime folds a value's timestamp into a group's output time.
func (l valueLayout) combineTime(first bool, cur, ts mtime.Time) mtime.Time {
	switch {
	case first:
		return ts
	case l.outputTime == pipepb.OutputTime_EARLIEST_IN_PANE:
		return min(cur, ts)
	case l.outputTime == pipepb.OutputTime_LATEST_IN_PANE:
		return max(cur, ts)
	}
	return cur
}

// groupTime is the timestamp of a group in window w whose values' combined
// time is t.
func (l valueLayout) groupTime(w typex.Window, t mtime.Time) mtime.Time {
	if l.timestamps {
		return t
	}
	return w.MaxTimestamp()
}

// setHeaderTime overwrites the timestamp of an encoded windowed value (its
// first 8 bytes).
func setHeaderTime(elem []byte, t mtime.Time) {
	binary.BigEndian.PutUint64(elem, uint64(t.Milliseconds()-mtimeMinMillis))
}

// feedStamped feeds groups whose values carry timestamps (not merging):
// each group is stamped by the timestamp combiner.
func (p *partitionGrouper) feedStamped(ctx context.Context, c *coder.Coder, ck *chunker, lay valueLayout) error {
	gw := newGroupWriter(c, ck, cmp.Or(p.lim.chunk, groupChunkBytes))
	gw.files, gw.large = p.lim.files, cmp.Or(p.lim.large, p.lim.memory/4)
	defer gw.close()
	var t mtime.Time
	first := true
	err := p.visitGroups(ctx,
		func(key, win []byte) error {
			first = true
			return gw.begin(key, win)
		},
		func(v []byte) error {
			_, ts, val, err := lay.unpackValue(v)
			if err != nil {
				return err
			}
			t = lay.combineTime(first, t, ts)
			first = false
			return gw.value(val)
		},
		func() error {
			setHeaderTime(gw.elem.Bytes(), t)
			return gw.end(ctx)
		})
	p.stats.largeGroups = gw.largeGroups
	if err != nil {
		return err
	}
	return ck.flush(ctx)
}

// mergedValue is one value of a key whose windows merge.
type mergedValue struct {
	win window.IntervalWindow
	ts  mtime.Time
	val []byte
}

// feedMerged feeds the groups of a merging (session) edge: per key, its
// values' windows merged.
func (p *partitionGrouper) feedMerged(ctx context.Context, c *coder.Coder, ck *chunker, lay valueLayout) error {
	winDec := exec.MakeWindowDecoder(c.Window)
	winEnc := exec.MakeWindowEncoder(c.Window)
	var key []byte
	var vals []mergedValue
	var buf bytes.Buffer
	copyVals := p.sorter != nil // the sorter's records are valid only during the call
	err := p.visitGroups(ctx,
		func(k, _ []byte) error {
			key = append(key[:0], k...)
			vals = vals[:0]
			return nil
		},
		func(v []byte) error {
			wb, ts, val, err := lay.unpackValue(v)
			if err != nil {
				return err
			}
			w, err := winDec.DecodeSingle(bytes.NewReader(wb))
			if err != nil {
				return fmt.Errorf("worker: decoding a merging window: %w", err)
			}
			iw, ok := w.(window.IntervalWindow)
			if !ok {
				return fmt.Errorf("worker: merging windows must be interval windows, got %T", w)
			}
			if copyVals {
				val = bytes.Clone(val)
			}
			vals = append(vals, mergedValue{win: iw, ts: ts, val: val})
			return nil
		},
		func() error {
			for _, g := range mergeWindows(vals) {
				var t mtime.Time
				for i, mv := range g.vals {
					t = lay.combineTime(i == 0, t, mv.ts)
				}
				buf.Reset()
				pane := typex.PaneInfo{Timing: typex.PaneOnTime, IsFirst: true, IsLast: true}
				if err := exec.EncodeWindowedValueHeader(winEnc, []typex.Window{g.win}, lay.groupTime(g.win, t), pane, &buf); err != nil {
					return err
				}
				buf.Write(key)
				var cnt [4]byte
				binary.BigEndian.PutUint32(cnt[:], uint32(len(g.vals)))
				buf.Write(cnt[:])
				for _, mv := range g.vals {
					buf.Write(mv.val)
				}
				if err := ck.add(ctx, buf.Bytes()); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	return ck.flush(ctx)
}

// mergedGroup is one merged window and its values in arrival order.
type mergedGroup struct {
	win  window.IntervalWindow
	vals []*mergedValue
}

// mergeWindows merges the overlapping windows of one key's values and
// returns the merged windows in order of their start, each with its
// values in arrival order.
func mergeWindows(vals []mergedValue) []mergedGroup {
	order := make([]int, len(vals))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(vals[a].win.Start, vals[b].win.Start), cmp.Compare(vals[a].win.End, vals[b].win.End))
	})
	var groups []mergedGroup
	of := make([]int, len(vals)) // value -> group
	for _, i := range order {
		w := vals[i].win
		if n := len(groups); n > 0 && w.Start < groups[n-1].win.End {
			groups[n-1].win.End = max(groups[n-1].win.End, w.End)
			of[i] = n - 1
			continue
		}
		groups = append(groups, mergedGroup{win: w})
		of[i] = len(groups) - 1
	}
	for i := range vals {
		groups[of[i]].vals = append(groups[of[i]].vals, &vals[i])
	}
	return groups
}
