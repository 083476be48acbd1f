package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/dustin/go-humanize"
	"github.com/galeproject/gale/beam/internal/stages"
	"google.golang.org/protobuf/proto"
)

// TestStream replay and trigger firing in a task (the model is in
// stages/teststream.go).
//
// The TestStream's task runs one bundle per element event, its elements
// in the global window at their event timestamps; the DataSinks of group
// edges with Replay.Epochs decode each bundle's output when it closes and
// tag every record with the bundle's epoch (data.go, valueLayout.epochs).
//
// A group edge's consumer with a Replay holds its partition in memory
// (TestStreams and triggered groupings are test-sized or per-window
// small: there is no spilling on this path) and replays it epoch by
// epoch through each key and window's trigger (triggers.go), sending a
// KV<K, Iterable<V>> per pane fired, with the pane's PaneInfo, in the
// order the panes fire.

// ErrReplayBudget is wrapped by the error of a replayed group partition
// larger than the task's grouping budget.
var ErrReplayBudget = errors.New("worker: replayed grouping over budget")

// streamBundle is the input of one bundle of a TestStream's task: the
// encoded windowed elements of one element event.
type streamBundle struct {
	epoch uint64
	elems []byte
	n     int64
}

// testStreamBundles encodes the element events of a TestStream payload as
// windowed values of the DataSource's coder c.
func testStreamBundles(payload []byte, c *coder.Coder) ([]streamBundle, error) {
	var p pipepb.TestStreamPayload
	if err := proto.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("worker: malformed TestStream payload: %w", err)
	}
	enc := exec.MakeWindowEncoder(c.Window)
	var out []streamBundle
	for i, ev := range p.GetEvents() {
		ee := ev.GetElementEvent()
		if ee == nil {
			continue
		}
		var buf bytes.Buffer
		for _, e := range ee.GetElements() {
			if err := exec.EncodeWindowedValueHeader(enc, window.SingleGlobalWindow, mtime.FromMilliseconds(e.GetTimestamp()),
				typex.NoFiringPane(), &buf); err != nil {
				return nil, err
			}
			buf.Write(e.GetEncodedElement())
		}
		out = append(out, streamBundle{epoch: uint64(i), elems: buf.Bytes(), n: int64(len(ee.GetElements()))})
	}
	return out, nil
}

// replayRecord is one record of a replayed group input.
type replayRecord struct {
	epoch        uint64
	id, key, win []byte
	val          []byte
	ts           mtime.Time
}

// paneWindow is the state of one key and window being replayed.
type paneWindow struct {
	key, win []byte
	w        typex.Window
	trig     windowTrigger
	pane     typex.PaneInfo
	vals     [][]byte
	ts       []mtime.Time
}

type ptTimer struct {
	at  mtime.Time
	seq int
	pw  *paneWindow
}

// replayStats counts what a replay did.
type replayStats struct {
	records, dropped, panes int64
}

// feedReplay replays a group partition (see above). read returns its
// segments, then nil.
//
// A partition over limit bytes fails the task with an error that says
// how to make it fit: this path does not spill.
func feedReplay(ctx context.Context, read func() ([]byte, error), c *coder.Coder, ck *chunker, lay valueLayout, rp *stages.Replay, limit int64) (st replayStats, err error) {
	var tpb pipepb.Trigger
	if err := proto.Unmarshal(rp.Trigger, &tpb); err != nil {
		return st, fmt.Errorf("worker: malformed trigger: %w", err)
	}
	root, err := parseTrigger(&tpb)
	if err != nil {
		return st, err
	}
	// Replayed records carry their timestamps, which hold the watermark.
	lay.epochs, lay.timestamps = rp.Epochs, lay.timestamps || rp.Epochs
	var recs []replayRecord
	var held int64
	for {
		seg, err := read()
		if err != nil {
			return st, err
		}
		if seg == nil {
			break
		}
		if held += int64(len(seg)); held > limit {
			return st, fmt.Errorf("%w: a GroupByKey with a trigger or fed by a TestStream is replayed in memory, and this partition "+
				"passed %s of the task's grouping budget of %s; give it more partitions (--gale_partitions; a TestStream's "+
				"GroupByKey has one), more memory per task (--gale_worker_memory), or the default trigger", ErrReplayBudget,
				humanize.IBytes(uint64(held)), humanize.IBytes(uint64(limit)))
		}
		for len(seg) > 0 {
			r, rest, err := readGroupRecord(seg)
			if err != nil {
				return st, err
			}
			seg = rest
			_, ts, epoch, val, err := lay.unpack(r.val)
			if err != nil {
				return st, err
			}
			recs = append(recs, replayRecord{epoch: epoch, id: r.id, key: r.key, win: r.win, val: val, ts: ts})
		}
	}
	st.records = int64(len(recs))
	// Producers write their records in epoch order; several producers'
	// segments interleave by epoch here.
	slices.SortStableFunc(recs, func(a, b replayRecord) int { return compareUint(a.epoch, b.epoch) })

	winDec := exec.MakeWindowDecoder(c.Window)
	winEnc := exec.MakeWindowEncoder(c.Window)
	lateness := mtime.Time(rp.AllowedLateness)
	ptNodes := root.processingTimeNodes()
	windows := map[string]*paneWindow{}
	var order []*paneWindow
	var timers []ptTimer
	timerSet := map[ptTimer]bool{}
	var buf bytes.Buffer

	fire := func(pw *paneWindow, keep bool) error {
		if len(pw.vals) == 0 {
			return nil
		}
		t := pw.w.MaxTimestamp()
		if lay.outputTime == pipepb.OutputTime_EARLIEST_IN_PANE || lay.outputTime == pipepb.OutputTime_LATEST_IN_PANE {
			for i, ts := range pw.ts {
				t = lay.combineTime(i == 0, t, ts)
			}
		}
		buf.Reset()
		if err := exec.EncodeWindowedValueHeader(winEnc, []typex.Window{pw.w}, t, pw.pane, &buf); err != nil {
			return err
		}
		buf.Write(pw.key)
		var cnt [4]byte
		binary.BigEndian.PutUint32(cnt[:], uint32(len(pw.vals)))
		buf.Write(cnt[:])
		for _, v := range pw.vals {
			buf.Write(v)
		}
		st.panes++
		if !keep {
			pw.vals, pw.ts = pw.vals[:0], pw.ts[:0]
		}
		return ck.add(ctx, buf.Bytes())
	}

	// up is the upstream watermark (the TestStream's), which fires
	// on-time and closing panes; in is the stage's input watermark, held
	// back by the timestamps of the elements it still holds (pending or
	// kept by accumulating panes), as Prism holds it: it decides whether a
	// trigger sees the end of its window and which elements are late.
	up, in, pt := mtime.MinTimestamp, mtime.MinTimestamp, mtime.Time(0)
	minHeld := func() mtime.Time {
		m := mtime.MaxTimestamp
		for _, pw := range order {
			for _, ts := range pw.ts {
				m = min(m, ts)
			}
		}
		return m
	}
	// watermarkPass fires, for every window the upstream watermark has
	// passed, its on-time pane, or its closing pane once the watermark is
	// past the allowed lateness, of what it holds.
	watermarkPass := func() (bool, error) {
		fired := false
		for _, pw := range order {
			if len(pw.vals) == 0 {
				continue
			}
			end := pw.w.MaxTimestamp()
			closing := end + lateness
			if up <= end || (pw.pane.Timing != typex.PaneEarly && up <= closing) || (root.kind == trigNever && up <= closing) {
				continue
			}
			pw.pane = nextWatermarkPane(pw.pane)
			if (up > closing && pw.pane.Timing != typex.PaneOnTime) || lateness == 0 || root.kind == trigNever {
				pw.pane.IsLast = true
			}
			if err := fire(pw, rp.Accumulating && !pw.pane.IsLast); err != nil {
				return fired, err
			}
			fired = true
		}
		return fired, nil
	}
	// settle refreshes the input watermark and runs watermark passes
	// until neither changes anything (Prism schedules the stage again
	// whenever its input watermark moves or lags the upstream one). Each
	// round that goes on fired a pane or moved the watermark; a window
	// fires at most its on-time and closing panes per watermark, so a few
	// rounds settle it (the bound only guards against a defect).
	settle := func() error {
		for range 1000 {
			prev := in
			in = max(in, min(up, minHeld()))
			if in == up && prev == in {
				return nil
			}
			fired, err := watermarkPass()
			if err != nil {
				return err
			}
			if !fired && in == prev {
				return nil
			}
		}
		return nil
	}
	fireTimers := func() error {
		slices.SortStableFunc(timers, func(a, b ptTimer) int {
			if a.at != b.at {
				return compareInt(int64(a.at), int64(b.at))
			}
			return compareInt(int64(a.seq), int64(b.seq))
		})
		n := 0
		for n < len(timers) && timers[n].at <= pt {
			t := timers[n]
			n++
			delete(timerSet, ptTimer{at: t.at, pw: t.pw})
			pw := t.pw
			eow := pw.w.MaxTimestamp() < in
			if pw.trig.ready(trigInput{elements: 0, endOfWindow: eow, now: pt}) {
				pw.pane = nextTriggeredPane(pw.pane, eow)
				if err := fire(pw, rp.Accumulating); err != nil {
					return err
				}
			}
		}
		timers = timers[n:]
		return nil
	}
	epochs := 0
	if rp.Epochs {
		epochs = len(rp.Clock)
	}
	// arrive tells pw's trigger that an element arrived, firing the pane
	// or arming its processing-time timers.
	arrive := func(pw *paneWindow) error {
		eow := pw.w.MaxTimestamp() < in
		if pw.trig.ready(trigInput{elements: 1, endOfWindow: eow, now: pt}) {
			pw.pane = nextTriggeredPane(pw.pane, eow)
			return fire(pw, rp.Accumulating)
		}
		for _, n := range ptNodes {
			s := pw.trig.states[n]
			if s == nil || !s.started || pw.trig.shouldFire(n) {
				continue
			}
			t := ptTimer{at: s.firing, pw: pw}
			if !timerSet[t] {
				timerSet[t] = true
				t.seq = len(timerSet)
				timers = append(timers, t)
			}
		}
		return nil
	}
	i := 0
	for e := 0; e <= epochs; e++ {
		// The epoch's elements arrive before the clock moves. From a
		// TestStream the trigger sees each element as it arrives (Prism's
		// streaming mode); a bounded input arrives as one bundle, and each
		// key and window's trigger sees it once (Prism's batch mode, which
		// counts one element per key and window of a bundle).
		var touched []*paneWindow
		seen := map[*paneWindow]bool{}
		for ; i < len(recs) && (int(recs[i].epoch) <= e || e == epochs); i++ {
			r := &recs[i]
			pw := windows[string(r.id)]
			if pw == nil {
				w, err := winDec.DecodeSingle(bytes.NewReader(r.win))
				if err != nil {
					return st, fmt.Errorf("worker: decoding window: %w", err)
				}
				pw = &paneWindow{key: r.key, win: r.win, w: w, trig: windowTrigger{root: root, states: map[*trigNode]*trigState{}}}
			}
			if pw.w.MaxTimestamp()+lateness < in {
				st.dropped++ // the window expired before the element arrived
				continue
			}
			if windows[string(r.id)] == nil {
				windows[string(r.id)] = pw
				order = append(order, pw)
			}
			pw.vals = append(pw.vals, r.val)
			pw.ts = append(pw.ts, r.ts)
			if rp.Epochs {
				if err := arrive(pw); err != nil {
					return st, err
				}
			} else if !seen[pw] {
				seen[pw] = true
				touched = append(touched, pw)
			}
		}
		for _, pw := range touched {
			if err := arrive(pw); err != nil {
				return st, err
			}
		}
		nup, npt := mtime.MaxTimestamp, mtime.MaxTimestamp
		if e < epochs {
			nup, npt = mtime.Time(rp.Clock[e].Watermark), mtime.Time(rp.Clock[e].ProcessingTime)
		}
		up = max(up, nup)
		if err := settle(); err != nil {
			return st, err
		}
		if npt > pt {
			pt = npt
			if err := fireTimers(); err != nil {
				return st, err
			}
			if err := settle(); err != nil {
				return st, err
			}
		}
	}
	return st, ck.flush(ctx)
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
