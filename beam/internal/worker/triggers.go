package worker

import (
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
)

// Triggers, evaluated per key and window as Prism evaluates them in
// streaming mode (its engine/strategy.go), so a pipeline's panes on Gale
// are the panes Prism produces. A trigger is a tree of nodes; each
// (key, window) keeps one trigState per node.
//
// A node reacts to an element (onElement, which never finishes it),
// says whether it may fire (shouldFire), and commits a firing (onFire,
// which may finish it). reset forgets a node's state and its children's.
// Finished triggers stay finished unless a parent (Repeat, OrFinally's
// main, AfterEndOfWindow's early and late firings) resets them; a window
// whose top trigger finished fires no more early or late panes, and its
// pending elements wait for the watermark's on-time or closing pane.

type trigKind int

const (
	trigDefault trigKind = iota
	trigNever
	trigAlways
	trigAfterAll
	trigAfterAny
	trigAfterEach
	trigCount
	trigOrFinally
	trigRepeat
	trigEndOfWindow
	trigProcessingTime
	trigSyncProcessingTime
)

// trigNode is one node of a trigger tree.
type trigNode struct {
	kind  trigKind
	subs  []*trigNode // AfterAll, AfterAny, AfterEach; Repeat: [repeated]; OrFinally: [main, finally]; AfterEndOfWindow: [early, late] (either nil)
	count int         // AfterCount
	// AfterProcessingTime: the delay and alignment steps, in order.
	transforms []timestampTransform
}

type timestampTransform struct {
	delay, period, offset mtime.Time // milliseconds
}

// trigState is a node's state for one key and window.
type trigState struct {
	finished bool
	count    int  // AfterCount: elements seen
	eow      bool // AfterEndOfWindow, Default: the end of the window was reached
	// AfterProcessingTime: set by the first element.
	started      bool
	now, firing  mtime.Time
	eowAtElement bool
}

// trigInput is what an element (or a processing-time firing) tells a
// trigger.
type trigInput struct {
	elements    int        // new elements: 1 for an element, 0 for a timer
	endOfWindow bool       // the watermark has passed the window's end
	now         mtime.Time // the processing time
}

// windowTrigger is the state of one key and window's trigger.
type windowTrigger struct {
	root   *trigNode
	states map[*trigNode]*trigState
}

func (w *windowTrigger) st(n *trigNode) *trigState {
	s := w.states[n]
	if s == nil {
		s = &trigState{}
		w.states[n] = s
	}
	return s
}

func (w *windowTrigger) finished(n *trigNode) bool {
	s := w.states[n]
	return s != nil && s.finished
}

func (w *windowTrigger) clearAndFinish(n *trigNode) {
	w.reset(n)
	w.st(n).finished = true
}

// ready feeds in to the trigger and fires it if it may: the pane fires.
func (w *windowTrigger) ready(in trigInput) bool {
	w.onElement(w.root, in)
	if w.shouldFire(w.root) {
		w.onFire(w.root)
		return true
	}
	return false
}

func (w *windowTrigger) onElement(n *trigNode, in trigInput) {
	switch n.kind {
	case trigNever, trigAlways, trigSyncProcessingTime:
	case trigDefault:
		w.st(n).eow = in.endOfWindow
	case trigAfterAll, trigAfterAny:
		if w.finished(n) {
			return
		}
		for _, s := range n.subs {
			w.onElement(s, in)
		}
	case trigAfterEach:
		if w.finished(n) {
			return
		}
		for _, s := range n.subs {
			if w.finished(s) {
				continue
			}
			w.onElement(s, in)
			return
		}
	case trigCount:
		s := w.st(n)
		if !s.finished {
			s.count += in.elements
		}
	case trigOrFinally:
		if w.finished(n) {
			return
		}
		w.onElement(n.subs[0], in)
		w.onElement(n.subs[1], in)
	case trigRepeat:
		w.onElement(n.subs[0], in)
	case trigEndOfWindow:
		s := w.st(n)
		if s.finished {
			return
		}
		early, late := n.subs[0], n.subs[1]
		if !s.eow && in.endOfWindow {
			if early != nil {
				w.clearAndFinish(early)
			}
			if late == nil {
				w.clearAndFinish(n)
				return
			}
		}
		s = w.st(n)
		s.eow = in.endOfWindow
		if early != nil && !w.finished(early) {
			w.onElement(early, in)
		} else if late != nil && in.endOfWindow {
			w.onElement(late, in)
		}
	case trigProcessingTime:
		s := w.st(n)
		if s.finished {
			return
		}
		if !s.started {
			s.started, s.firing = true, n.fireAt(in.now)
		}
		s.now, s.eowAtElement = in.now, in.endOfWindow
	}
}

func (w *windowTrigger) shouldFire(n *trigNode) bool {
	switch n.kind {
	case trigNever:
		return false
	case trigAlways:
		return true
	case trigDefault:
		return w.st(n).eow
	case trigSyncProcessingTime:
		return !w.finished(n)
	case trigAfterAll:
		if w.finished(n) {
			return false
		}
		for _, s := range n.subs {
			if !w.shouldFire(s) {
				return false
			}
		}
		return true
	case trigAfterAny:
		if w.finished(n) {
			return false
		}
		for _, s := range n.subs {
			if w.shouldFire(s) {
				return true
			}
		}
		return false
	case trigAfterEach:
		if w.finished(n) {
			return false
		}
		for _, s := range n.subs {
			if w.finished(s) {
				continue
			}
			return w.shouldFire(s)
		}
		return false
	case trigCount:
		s := w.st(n)
		return !s.finished && s.count >= n.count
	case trigOrFinally:
		if w.finished(n) {
			return false
		}
		return w.shouldFire(n.subs[0]) || w.shouldFire(n.subs[1])
	case trigRepeat:
		return w.shouldFire(n.subs[0])
	case trigEndOfWindow:
		s := w.st(n)
		if s.finished {
			return false
		}
		early, late := n.subs[0], n.subs[1]
		if early != nil && !w.finished(early) {
			return w.shouldFire(early) || s.eow
		} else if late != nil && s.eow {
			return w.shouldFire(late)
		}
		return false
	case trigProcessingTime:
		s := w.st(n)
		return s.started && !s.finished && s.now >= s.firing
	}
	return false
}

func (w *windowTrigger) onFire(n *trigNode) {
	switch n.kind {
	case trigNever, trigAlways, trigDefault:
	case trigSyncProcessingTime:
		if w.shouldFire(n) {
			w.st(n).finished = true
		}
	case trigAfterAll:
		unfinished := false
		for _, s := range n.subs {
			if w.shouldFire(s) {
				w.onFire(s)
			}
			if !w.finished(s) {
				unfinished = true
			}
		}
		if !unfinished {
			w.clearAndFinish(n)
		}
	case trigAfterAny:
		if w.shouldFire(n) {
			w.clearAndFinish(n)
		}
	case trigAfterEach:
		if !w.shouldFire(n) {
			return
		}
		for i, s := range n.subs {
			if w.finished(s) {
				continue
			}
			w.onFire(s)
			if !w.finished(s) || i < len(n.subs)-1 {
				return
			}
		}
		w.clearAndFinish(n)
	case trigCount:
		if w.shouldFire(n) {
			s := w.st(n)
			s.finished, s.count = true, 0
		}
	case trigOrFinally:
		if !w.shouldFire(n) {
			return
		}
		if w.shouldFire(n.subs[1]) {
			w.onFire(n.subs[1])
			w.st(n).finished = true
		} else {
			w.onFire(n.subs[0])
			if w.finished(n.subs[0]) {
				w.reset(n.subs[0])
			}
		}
	case trigRepeat:
		if !w.shouldFire(n) {
			return
		}
		w.onFire(n.subs[0])
		if w.finished(n.subs[0]) {
			w.reset(n.subs[0])
		}
	case trigEndOfWindow:
		s := w.st(n)
		if s.finished {
			return
		}
		early, late := n.subs[0], n.subs[1]
		if early != nil && !w.finished(early) {
			if w.shouldFire(early) {
				w.onFire(early)
				if w.finished(early) {
					w.reset(early)
				}
			}
		} else if late != nil && s.eow {
			w.onFire(late)
			if w.finished(late) {
				w.reset(late)
			}
		}
	case trigProcessingTime:
		if s := w.st(n); !s.finished {
			s.finished = true
		}
	}
}

func (w *windowTrigger) reset(n *trigNode) {
	switch n.kind {
	case trigProcessingTime:
		// Like Prism: before the end of the window the node keeps its
		// start and moves its firing time on from the last processing
		// time it saw, so a repeated AfterProcessingTime fires again.
		s := w.states[n]
		if s == nil {
			return
		}
		if s.started && s.eowAtElement {
			delete(w.states, n)
			return
		}
		s.finished = false
		if s.started {
			s.firing = n.fireAt(s.now)
		}
		return
	case trigEndOfWindow:
		for _, s := range n.subs {
			if s != nil {
				w.reset(s)
			}
		}
	default:
		for _, s := range n.subs {
			w.reset(s)
		}
	}
	delete(w.states, n)
}

// fireAt applies an AfterProcessingTime's delays and alignments to the
// processing time of its first element.
func (n *trigNode) fireAt(start mtime.Time) mtime.Time {
	t := start
	for _, tr := range n.transforms {
		t += tr.delay
		if tr.period > 0 {
			adj := t - tr.offset
			t = adj - adj%tr.period + tr.period + tr.offset
		}
	}
	return t
}

// processingTimeNodes returns the AfterProcessingTime nodes of the tree.
func (n *trigNode) processingTimeNodes() []*trigNode {
	if n == nil {
		return nil
	}
	if n.kind == trigProcessingTime {
		return []*trigNode{n}
	}
	var out []*trigNode
	for _, s := range n.subs {
		out = append(out, s.processingTimeNodes()...)
	}
	return out
}

// parseTrigger builds the node tree of a pipeline trigger.
func parseTrigger(t *pipepb.Trigger) (*trigNode, error) {
	subs := func(ts []*pipepb.Trigger) ([]*trigNode, error) {
		out := make([]*trigNode, 0, len(ts))
		for _, s := range ts {
			n, err := parseTrigger(s)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}
	optional := func(t *pipepb.Trigger) (*trigNode, error) {
		if t == nil {
			return nil, nil
		}
		return parseTrigger(t)
	}
	var err error
	n := &trigNode{}
	switch {
	case t == nil || t.GetDefault() != nil:
		n.kind = trigDefault
	case t.GetNever() != nil:
		n.kind = trigNever
	case t.GetAlways() != nil:
		n.kind = trigAlways
	case t.GetAfterSynchronizedProcessingTime() != nil:
		n.kind = trigSyncProcessingTime
	case t.GetElementCount() != nil:
		n.kind, n.count = trigCount, int(t.GetElementCount().GetElementCount())
	case t.GetAfterAll() != nil:
		n.kind = trigAfterAll
		n.subs, err = subs(t.GetAfterAll().GetSubtriggers())
	case t.GetAfterAny() != nil:
		n.kind = trigAfterAny
		n.subs, err = subs(t.GetAfterAny().GetSubtriggers())
	case t.GetAfterEach() != nil:
		n.kind = trigAfterEach
		n.subs, err = subs(t.GetAfterEach().GetSubtriggers())
	case t.GetRepeat() != nil:
		n.kind = trigRepeat
		n.subs, err = subs([]*pipepb.Trigger{t.GetRepeat().GetSubtrigger()})
	case t.GetOrFinally() != nil:
		n.kind = trigOrFinally
		n.subs, err = subs([]*pipepb.Trigger{t.GetOrFinally().GetMain(), t.GetOrFinally().GetFinally()})
	case t.GetAfterEndOfWindow() != nil:
		n.kind = trigEndOfWindow
		early, err := optional(t.GetAfterEndOfWindow().GetEarlyFirings())
		if err != nil {
			return nil, err
		}
		late, err := optional(t.GetAfterEndOfWindow().GetLateFirings())
		if err != nil {
			return nil, err
		}
		n.subs = []*trigNode{early, late}
	case t.GetAfterProcessingTime() != nil:
		n.kind = trigProcessingTime
		for _, tt := range t.GetAfterProcessingTime().GetTimestampTransforms() {
			switch {
			case tt.GetDelay() != nil:
				n.transforms = append(n.transforms, timestampTransform{delay: mtime.Time(tt.GetDelay().GetDelayMillis())})
			case tt.GetAlignTo() != nil:
				n.transforms = append(n.transforms, timestampTransform{period: mtime.Time(tt.GetAlignTo().GetPeriod()),
					offset: mtime.Time(tt.GetAlignTo().GetOffset())})
			}
		}
	default:
		return nil, fmt.Errorf("worker: trigger %v is not supported", t)
	}
	return n, err
}

// nextTriggeredPane is the pane a trigger firing produces after pane.
func nextTriggeredPane(pane typex.PaneInfo, endOfWindow bool) typex.PaneInfo {
	if pane.Index == 0 && !pane.IsFirst {
		pane.IsFirst = true
	} else {
		pane.Index++
		pane.IsFirst = false
	}
	if endOfWindow {
		pane.Timing = typex.PaneLate
		pane.NonSpeculativeIndex++
	} else {
		pane.Timing = typex.PaneEarly
		pane.NonSpeculativeIndex = -1
	}
	return pane
}

// nextWatermarkPane is the pane the watermark produces after pane: the
// on-time pane, or a late (closing) one after it.
func nextWatermarkPane(pane typex.PaneInfo) typex.PaneInfo {
	switch pane.Timing {
	case typex.PaneEarly:
		pane.Timing = typex.PaneOnTime
		pane.NonSpeculativeIndex = 0
	case typex.PaneOnTime:
		pane.Timing = typex.PaneLate
		pane.NonSpeculativeIndex++
	case typex.PaneLate:
		pane.NonSpeculativeIndex++
	}
	if pane.Index == 0 && !pane.IsFirst {
		pane.IsFirst = true
	} else {
		pane.Index++
		pane.IsFirst = false
	}
	return pane
}
