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
// strategy that uses it: user state, timers, bundle finalization, time-
// sorted input, triggers, merging windows (sessions), custom window
// functions, unbounded PCollections, TestStream, cross-language
// transforms and transforms of unknown kind.
func Check(p *pipepb.Pipeline) error {
	c := p.GetComponents()
	var problems []string
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
			add("cross-language transform %q (environment %s): only Go transforms run on Gale", name, t.GetEnvironmentId())
			continue
		}
		if urn == urnTestStream {
			add("TestStream %q: Gale runs bounded batch pipelines only", name)
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
		if len(pardo.GetStateSpecs()) > 0 {
			add("user state in ParDo %q (state %s)", name, strings.Join(sortedKeys(pardo.GetStateSpecs()), ", "))
		}
		if len(pardo.GetTimerFamilySpecs()) > 0 {
			add("timers in ParDo %q (timer families %s)", name, strings.Join(sortedKeys(pardo.GetTimerFamilySpecs()), ", "))
		}
		if pardo.GetRequestsFinalization() {
			add("bundle finalization in ParDo %q", name)
		}
		if pardo.GetRequiresTimeSortedInput() {
			add("time-sorted input in ParDo %q", name)
		}
	}
	for _, id := range sortedKeys(c.GetPcollections()) {
		pc := c.GetPcollections()[id]
		if pc.GetIsBounded() == pipepb.IsBounded_UNBOUNDED {
			add("unbounded PCollection %q (an unbounded source or a streaming transform): Gale runs bounded batch pipelines only", pc.GetUniqueName())
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
			add("session windows (windowing strategy %s): merging windows are not supported", id)
		default:
			add("window function %q (windowing strategy %s) is not supported", fn, id)
		}
		if ws.GetMergeStatus() == pipepb.MergeStatus_NEEDS_MERGE || ws.GetMergeStatus() == pipepb.MergeStatus_ALREADY_MERGED {
			if ws.GetWindowFn().GetUrn() != graphx.URNSessionsWindowFn {
				add("merging windows (windowing strategy %s) are not supported", id)
			}
		}
		if tr := ws.GetTrigger(); tr != nil && tr.GetDefault() == nil {
			add("trigger %s (windowing strategy %s): Gale fires each window once, when its input is complete", triggerName(tr), id)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%w:\n  - %s\nremove them or run the pipeline on another runner", ErrUnsupported, strings.Join(problems, "\n  - "))
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
