package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/shuffle"
	"google.golang.org/protobuf/proto"
)

// replayElem is one element of a replayed partition: its key, event
// time (ms, in a fixed 10 s window), value and epoch.
type replayElem struct {
	key   string
	ts    int64
	val   int64
	epoch uint64
}

func replaySegment(t *testing.T, elems []replayElem) []byte {
	t.Helper()
	keyEnc := exec.MakeElementEncoder(testKeyCoder)
	valEnc := exec.MakeElementEncoder(testValCoder)
	winEnc := exec.MakeWindowEncoder(testInCoder.Window)
	enc := func(e exec.ElementEncoder, v any) []byte {
		var b bytes.Buffer
		if err := e.Encode(&exec.FullValue{Elm: v}, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var seg []byte
	for _, e := range elems {
		start := mtime.Time(e.ts - e.ts%10000)
		wb, err := exec.EncodeWindow(winEnc, window.IntervalWindow{Start: start, End: start + 10000})
		if err != nil {
			t.Fatal(err)
		}
		lay := valueLayout{timestamps: true, epochs: true, epoch: e.epoch}
		seg = shuffle.AppendField(seg, enc(keyEnc, e.key))
		seg = shuffle.AppendField(seg, wb)
		seg = shuffle.AppendField(seg, lay.packValue(nil, wb, typex.EventTime(e.ts), enc(valEnc, e.val)))
	}
	return seg
}

// runReplay replays seg and describes each pane sent: key, window end,
// timing, first, last, index, non-speculative index and values.
func runReplay(t *testing.T, seg []byte, rp *stages.Replay, limit int64) ([]string, replayStats, error) {
	t.Helper()
	ch := make(chan exec.Elements, 4)
	var sent []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			sent = append(sent, e.Data...)
		}
	}()
	segs := [][]byte{seg}
	read := func() ([]byte, error) {
		if len(segs) == 0 {
			return nil, nil
		}
		s := segs[0]
		segs = segs[1:]
		return s, nil
	}
	st, err := feedReplay(context.Background(), read, testInCoder, &chunker{ch: ch, transform: "src"}, valueLayout{}, rp, limit)
	close(ch)
	<-done
	if err != nil {
		return nil, st, err
	}
	winDec := exec.MakeWindowDecoder(testInCoder.Window)
	keyDec := exec.MakeElementDecoder(testKeyCoder)
	itDec := exec.MakeElementDecoder(coder.NewI(testValCoder))
	r := bytes.NewReader(sent)
	var panes []string
	for r.Len() > 0 {
		ws, ts, pn, err := exec.DecodeWindowedValueHeader(winDec, r)
		if err != nil {
			t.Fatal(err)
		}
		k, err := keyDec.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		it, err := itDec.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		vals := it.Elm.([]int64)
		if mtime.Time(ts) != ws[0].MaxTimestamp() {
			t.Errorf("pane stamped %v, want its window's end %v", ts, ws[0].MaxTimestamp())
		}
		panes = append(panes, fmt.Sprintf("%s %d %v first=%v last=%v index=%d nonspec=%d %v", k.Elm, ws[0].MaxTimestamp(),
			pn.Timing, pn.IsFirst, pn.IsLast, pn.Index, pn.NonSpeculativeIndex, vals))
	}
	return panes, st, nil
}

func triggerBytes(t *testing.T, tr *pipepb.Trigger) []byte {
	t.Helper()
	b, err := proto.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A replayed GroupByKey under the default trigger fires each window's
// on-time pane when the stream's watermark passes it and drops what
// arrives for a window already past (allowed lateness 0).
func TestReplayFiresOnTimeAndDropsLateData(t *testing.T) {
	def := &pipepb.Trigger{Trigger: &pipepb.Trigger_Default_{Default: &pipepb.Trigger_Default{}}}
	rp := &stages.Replay{Trigger: triggerBytes(t, def), Epochs: true, Clock: []stages.Tick{
		{Watermark: int64(mtime.MinTimestamp)}, // 0: elements
		{Watermark: 11000},                     // 1: the watermark passes [0s, 10s)
		{Watermark: 11000},                     // 2: elements, one late
	}}
	seg := replaySegment(t, []replayElem{
		{"a", 1000, 1, 0}, {"b", 2000, 2, 0}, {"a", 4000, 3, 0},
		{"a", 5000, 4, 2}, {"a", 12000, 5, 2}, {"b", 13000, 6, 2},
	})
	panes, st, err := runReplay(t, seg, rp, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a 9999 ontime first=true last=true index=0 nonspec=0 [1 3]",
		"b 9999 ontime first=true last=true index=0 nonspec=0 [2]",
		"a 19999 ontime first=true last=true index=0 nonspec=0 [5]",
		"b 19999 ontime first=true last=true index=0 nonspec=0 [6]",
	}
	if !slices.Equal(panes, want) {
		t.Fatalf("panes:\n  %q\nwant:\n  %q", panes, want)
	}
	if st.dropped != 1 || st.records != 6 {
		t.Fatalf("records %d, dropped %d; want 6 and 1", st.records, st.dropped)
	}
}

// Repeat(AfterCount(2)) fires early panes every two elements; what is
// left fires on time; accumulating panes keep earlier elements.
func TestReplayRepeatedCountAccumulating(t *testing.T) {
	rp := &stages.Replay{Trigger: triggerBytes(t, repeat(count(2))), Accumulating: true, AllowedLateness: 0, Epochs: true,
		Clock: []stages.Tick{{Watermark: int64(mtime.MinTimestamp)}}}
	seg := replaySegment(t, []replayElem{{"a", 1000, 1, 0}, {"a", 2000, 2, 0}, {"a", 3000, 3, 0}, {"a", 4000, 4, 0}, {"a", 5000, 5, 0}})
	panes, _, err := runReplay(t, seg, rp, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a 9999 early first=true last=false index=0 nonspec=-1 [1 2]",
		"a 9999 early first=false last=false index=1 nonspec=-1 [1 2 3 4]",
		"a 9999 ontime first=false last=true index=2 nonspec=0 [1 2 3 4 5]",
	}
	if !slices.Equal(panes, want) {
		t.Fatalf("panes:\n  %q\nwant:\n  %q", panes, want)
	}
}

// A replayed partition over the budget fails with an error naming the
// ways out, instead of growing without bound.
func TestReplayOverBudgetFails(t *testing.T) {
	rp := &stages.Replay{Trigger: triggerBytes(t, always())}
	seg := replaySegment(t, []replayElem{{"a", 1000, 1, 0}, {"a", 2000, 2, 0}})
	_, _, err := runReplay(t, seg, rp, int64(len(seg)-1))
	if !errors.Is(err, ErrReplayBudget) {
		t.Fatalf("replay over budget: %v, want ErrReplayBudget", err)
	}
	t.Log(err)
}
