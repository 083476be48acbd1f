package stages

import (
	"fmt"
	"math"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// TestStream and triggers in a batch engine.
//
// A TestStream is a root like an Impulse: its stage has one task, which
// replays the stream's element events in order, one bundle per event, the
// elements in the global window at their event timestamps. The stream's
// events are numbered: event i is *epoch* i, and the events after the
// last one are epoch len(events), where the watermark jumps to infinity.
// Each epoch has a clock (Tick): the watermark and the processing time
// once its event has run.
//
// A group edge written by that stage carries each record's epoch, and its
// consumer replays the group as Prism does in streaming mode: epoch by
// epoch, each element arrives while the watermark is still the previous
// epoch's, is dropped when its window has expired (its end plus the
// allowed lateness is before that watermark), and otherwise evaluates the
// trigger, which may fire a pane; then the clock advances, firing the
// processing-time triggers that are due and, for the windows the
// watermark passed, the on-time pane (and, past the allowed lateness, the
// closing one) of what is still pending. A group edge with a trigger
// other than the default but no TestStream behind it replays the same
// way with one epoch: every element arrives before the watermark moves,
// then it jumps to infinity.
//
// The other edges of the TestStream's stage do not carry epochs: stages
// behind a redistribution, a side input or a stateful ParDo see the
// stream's elements as one batch.

// Replay configures a group edge's consumer to fire panes (see above).
type Replay struct {
	// Trigger is the windowing strategy's trigger (a pipepb.Trigger).
	Trigger []byte
	// Accumulating keeps a window's elements in its later panes.
	Accumulating bool
	// AllowedLateness is how long after its end a window still takes
	// elements, in milliseconds.
	AllowedLateness int64
	// Epochs: the records carry the epoch of the TestStream event that
	// produced them, and Clock is the clock after each event.
	Epochs bool
	Clock  []Tick
}

// Tick is the clock after one TestStream event, in milliseconds.
type Tick struct {
	Watermark      int64
	ProcessingTime int64
}

// TestStreamClock returns the clock after each event of a TestStream
// payload: watermark events move the watermark, processing-time events
// the processing time (which starts at 0; an advance to infinity stops
// it there).
func TestStreamClock(payload []byte) ([]Tick, error) {
	var p pipepb.TestStreamPayload
	if err := proto.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("stages: malformed TestStream payload: %w", err)
	}
	wm, pt := int64(mtime.MinTimestamp), int64(0)
	ticks := make([]Tick, 0, len(p.GetEvents()))
	for _, ev := range p.GetEvents() {
		switch {
		case ev.GetWatermarkEvent() != nil:
			wm = max(wm, ev.GetWatermarkEvent().GetNewWatermark())
		case ev.GetProcessingTimeEvent() != nil:
			d := ev.GetProcessingTimeEvent().GetAdvanceDuration()
			if d >= int64(mtime.MaxTimestamp) || pt > math.MaxInt64-d || pt+d > int64(mtime.MaxTimestamp) {
				pt = int64(mtime.MaxTimestamp)
			} else {
				pt += d
			}
		}
		ticks = append(ticks, Tick{Watermark: min(wm, int64(mtime.MaxTimestamp)), ProcessingTime: pt})
	}
	return ticks, nil
}

// replay sets e.Replay when its consumer must fire panes: the windowing
// strategy ws has a trigger other than the default, or the producer of
// pc replays a TestStream (whose watermark makes late data and on-time
// panes).
func (b *builder) replay(e *Edge, pc string, ws *pipepb.WindowingStrategy) error {
	producer := b.plan.Stages[b.stageOf[pc]]
	stream := producer.Input.TestStream
	tr := ws.GetTrigger()
	if tr.GetDefault() != nil {
		tr = nil
	}
	if tr == nil && stream == nil {
		return nil
	}
	if tr == nil {
		tr = &pipepb.Trigger{Trigger: &pipepb.Trigger_Default_{Default: &pipepb.Trigger_Default{}}}
	}
	trb, err := proto.Marshal(tr)
	if err != nil {
		return err
	}
	r := &Replay{Trigger: trb, Accumulating: ws.GetAccumulationMode() == pipepb.AccumulationMode_ACCUMULATING,
		AllowedLateness: ws.GetAllowedLateness()}
	if stream != nil {
		if r.Clock, err = TestStreamClock(stream); err != nil {
			return err
		}
		r.Epochs = true
		// The stage's input watermark is held by the elements of every
		// key it holds (as on Prism), so one task replays all keys.
		e.Partitions = 1
	}
	e.Replay = r
	return nil
}

// unliftable reports whether a CombinePerKey must run as its GroupByKey
// and ParDo instead of lifted: its input's trigger fires per element
// (Always or AfterCount somewhere in it), so the panes must see the
// elements one by one, not a bundle's partial accumulator, as on Prism.
func (b *builder) unliftable(t *pipepb.PTransform) bool {
	if len(t.GetSubtransforms()) == 0 {
		return false
	}
	pc := b.comps.GetPcollections()[onlyValue(t.GetInputs())]
	ws := b.comps.GetWindowingStrategies()[pc.GetWindowingStrategyId()]
	var perElement func(tr *pipepb.Trigger) bool
	perElement = func(tr *pipepb.Trigger) bool {
		switch {
		case tr == nil:
			return false
		case tr.GetAlways() != nil, tr.GetElementCount() != nil:
			return true
		case tr.GetAfterAll() != nil:
			return anyTrigger(tr.GetAfterAll().GetSubtriggers(), perElement)
		case tr.GetAfterAny() != nil:
			return anyTrigger(tr.GetAfterAny().GetSubtriggers(), perElement)
		case tr.GetAfterEach() != nil:
			return anyTrigger(tr.GetAfterEach().GetSubtriggers(), perElement)
		case tr.GetAfterEndOfWindow() != nil:
			return perElement(tr.GetAfterEndOfWindow().GetEarlyFirings()) || perElement(tr.GetAfterEndOfWindow().GetLateFirings())
		case tr.GetOrFinally() != nil:
			return perElement(tr.GetOrFinally().GetMain()) || perElement(tr.GetOrFinally().GetFinally())
		case tr.GetRepeat() != nil:
			return perElement(tr.GetRepeat().GetSubtrigger())
		}
		return false
	}
	return perElement(ws.GetTrigger())
}

func anyTrigger(ts []*pipepb.Trigger, f func(*pipepb.Trigger) bool) bool {
	for _, t := range ts {
		if f(t) {
			return true
		}
	}
	return false
}
