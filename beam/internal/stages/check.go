package stages

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// runnable are the leaf transform URNs Gale runs: the runner executes
// Impulse, GroupByKey and Flatten; the SDK's exec package runs the rest.
var runnable = map[string]bool{
	graphx.URNImpulse:    true,
	graphx.URNParDo:      true,
	graphx.URNGBK:        true,
	graphx.URNFlatten:    true,
	graphx.URNWindow:     true,
	graphx.URNMapWindows: true,
	graphx.URNToString:   true,
	urnPrecombine:        true,
	urnMergeAccumulators: true,
	urnExtractOutputs:    true,
	urnPairRestriction:   true,
	urnSplitAndSize:      true,
	urnProcessSized:      true,
	"beam:transform:sdf_truncate_sized_restrictions:v1": true,
}

// Check reports, in one error wrapping ErrUnsupported, every feature of p
// that Gale cannot run, each with the transform, PCollection or windowing
// strategy that uses it and the nearest alternative: time-sorted input,
// triggers on session windows or of unknown kind, merging windows other
// than sessions, custom window functions, unbounded PCollections not from
// a splittable DoFn or a TestStream, more than one TestStream,
// cross-language transforms and transforms of unknown kind.
func Check(p *pipepb.Pipeline) error {
	c := p.GetComponents()
	var problems, streams []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	inReshuffle, internalPCs := reshuffleInternals(c)
	for _, id := range sortedKeys(c.GetTransforms()) {
		t := c.GetTransforms()[id]
		if inReshuffle[id] {
			continue // Gale runs the Reshuffle, not its leaves
		}
		name := t.GetUniqueName()
		urn := t.GetSpec().GetUrn()
		if env := c.GetEnvironments()[t.GetEnvironmentId()]; env != nil && env.GetUrn() == graphx.URNEnvExternal {
			add("cross-language transform %q (environment %s): only Go transforms run on Gale; use a Go transform for it, "+
				"or run the pipeline on Prism", name, t.GetEnvironmentId())
			continue
		}
		if urn == urnTestStream {
			streams = append(streams, name)
			continue
		}
		if len(t.GetSubtransforms()) > 0 || urn == graphx.URNCombinePerKey {
			continue // composites: their leaves are checked
		}
		if !runnable[urn] {
			add("transform %q of kind %q: Gale does not know how to run it", name, urn)
			continue
		}
		if urn != graphx.URNParDo {
			continue
		}
		var pardo pipepb.ParDoPayload
		if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err != nil {
			add("ParDo %q has a malformed payload: %v", name, err)
			continue
		}
		if pardo.GetRequiresTimeSortedInput() {
			add("time-sorted input in ParDo %q", name)
		}
	}
	if len(streams) > 1 {
		add("%d TestStreams (%s): a pipeline replays at most one TestStream, whose events order all its elements, "+
			"watermarks and processing times (as on Prism); merge them into one", len(streams), strings.Join(streams, ", "))
	}
	for _, id := range sortedKeys(c.GetPcollections()) {
		if problem := unboundedSource(c, id, inReshuffle); problem != "" {
			add("%s", problem)
		}
	}
	for _, id := range sortedKeys(c.GetWindowingStrategies()) {
		ws := c.GetWindowingStrategies()[id]
		if !usedStrategy(c, id, internalPCs) {
			continue
		}
		switch fn := ws.GetWindowFn().GetUrn(); fn {
		case graphx.URNGlobalWindowsWindowFn, graphx.URNFixedWindowsWindowFn, graphx.URNSlidingWindowsWindowFn:
		case graphx.URNSessionsWindowFn:
		default:
			add("window function %q (windowing strategy %s) is not supported", fn, id)
		}
		if ws.GetMergeStatus() == pipepb.MergeStatus_NEEDS_MERGE || ws.GetMergeStatus() == pipepb.MergeStatus_ALREADY_MERGED {
			if ws.GetWindowFn().GetUrn() != graphx.URNSessionsWindowFn {
				add("merging windows (windowing strategy %s) are not supported", id)
			}
		}
		if tr := ws.GetTrigger(); tr != nil && tr.GetDefault() == nil {
			if ws.GetWindowFn().GetUrn() == graphx.URNSessionsWindowFn {
				add("trigger %s on session windows (windowing strategy %s): Gale fires triggers on fixed, sliding and global windows only "+
					"(Prism does not merge trigger state either); remove the trigger, or use fixed windows", triggerName(tr), id)
			} else if bad := unknownTrigger(tr); bad != "" {
				add("trigger %s (windowing strategy %s): Gale does not know trigger %s; use the SDK's triggers", triggerName(tr), id, bad)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%w:\n  - %s\nremove them or run the pipeline on another runner", ErrUnsupported, strings.Join(problems, "\n  - "))
}

// unboundedSource explains why Gale cannot run the unbounded PCollection
// id, or returns "". Gale runs a PCollection the SDK marks unbounded when
// it comes from a splittable DoFn (one that may defer work, such as
// periodic.Impulse, or a self-checkpointing reader), directly or through
// other transforms: its tasks resume the DoFn's deferred work until its
// restrictions are done (worker/resume.go). Any other unbounded source
// (a streaming read of another SDK, a TestStream) is refused.
func unboundedSource(c *pipepb.Components, id string, skip map[string]bool) string {
	pc := c.GetPcollections()[id]
	if pc.GetIsBounded() != pipepb.IsBounded_UNBOUNDED {
		return ""
	}
	for tid, t := range c.GetTransforms() {
		if len(t.GetSubtransforms()) > 0 || skip[tid] {
			continue
		}
		produces := false
		for _, out := range t.GetOutputs() {
			produces = produces || out == id
		}
		if !produces {
			continue
		}
		for _, in := range t.GetInputs() {
			if c.GetPcollections()[in].GetIsBounded() == pipepb.IsBounded_UNBOUNDED {
				return "" // its source is checked
			}
		}
		if t.GetSpec().GetUrn() == graphx.URNParDo {
			var pardo pipepb.ParDoPayload
			if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err == nil && pardo.GetRestrictionCoderId() != "" {
				return ""
			}
		}
		if t.GetSpec().GetUrn() == urnTestStream {
			return "" // reported as a TestStream
		}
		return fmt.Sprintf("unbounded PCollection %q of %q: Gale runs unbounded PCollections only from splittable DoFns "+
			"(periodic.Impulse, a self-checkpointing reader), which its tasks resume until their restrictions are done", pc.GetUniqueName(), t.GetUniqueName())
	}
	return ""
}

// usedStrategy reports whether a PCollection Gale runs (not one in
// skip) uses windowing strategy id.
func usedStrategy(c *pipepb.Components, id string, skip map[string]bool) bool {
	for pcID, pc := range c.GetPcollections() {
		if !skip[pcID] && pc.GetWindowingStrategyId() == id {
			return true
		}
	}
	return false
}

// unknownTrigger returns the name of a trigger in t Gale cannot evaluate,
// or "".
func unknownTrigger(t *pipepb.Trigger) string {
	var subs []*pipepb.Trigger
	switch {
	case t.GetAfterAll() != nil:
		subs = t.GetAfterAll().GetSubtriggers()
	case t.GetAfterAny() != nil:
		subs = t.GetAfterAny().GetSubtriggers()
	case t.GetAfterEach() != nil:
		subs = t.GetAfterEach().GetSubtriggers()
	case t.GetAfterEndOfWindow() != nil:
		subs = []*pipepb.Trigger{t.GetAfterEndOfWindow().GetEarlyFirings(), t.GetAfterEndOfWindow().GetLateFirings()}
	case t.GetOrFinally() != nil:
		subs = []*pipepb.Trigger{t.GetOrFinally().GetMain(), t.GetOrFinally().GetFinally()}
	case t.GetRepeat() != nil:
		subs = []*pipepb.Trigger{t.GetRepeat().GetSubtrigger()}
	case t.GetAfterProcessingTime() != nil, t.GetAfterSynchronizedProcessingTime() != nil, t.GetAlways() != nil,
		t.GetDefault() != nil, t.GetElementCount() != nil, t.GetNever() != nil:
	default:
		return triggerName(t)
	}
	for _, s := range subs {
		if s == nil {
			continue
		}
		if bad := unknownTrigger(s); bad != "" {
			return bad
		}
	}
	return ""
}

func triggerName(t *pipepb.Trigger) string {
	switch {
	case t.GetAfterAll() != nil:
		return "AfterAll"
	case t.GetAfterAny() != nil:
		return "AfterAny"
	case t.GetAfterEach() != nil:
		return "AfterEach"
	case t.GetAfterEndOfWindow() != nil:
		return "AfterEndOfWindow"
	case t.GetAfterProcessingTime() != nil:
		return "AfterProcessingTime"
	case t.GetAfterSynchronizedProcessingTime() != nil:
		return "AfterSynchronizedProcessingTime"
	case t.GetAlways() != nil:
		return "Always"
	case t.GetElementCount() != nil:
		return "AfterCount"
	case t.GetNever() != nil:
		return "Never"
	case t.GetOrFinally() != nil:
		return "OrFinally"
	case t.GetRepeat() != nil:
		return "Repeat"
	}
	return "(custom)"
}
