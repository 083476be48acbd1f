package worker

import (
	"slices"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
)

func count(n int32) *pipepb.Trigger {
	return &pipepb.Trigger{Trigger: &pipepb.Trigger_ElementCount_{ElementCount: &pipepb.Trigger_ElementCount{ElementCount: n}}}
}

func always() *pipepb.Trigger {
	return &pipepb.Trigger{Trigger: &pipepb.Trigger_Always_{Always: &pipepb.Trigger_Always{}}}
}

func repeat(t *pipepb.Trigger) *pipepb.Trigger {
	return &pipepb.Trigger{Trigger: &pipepb.Trigger_Repeat_{Repeat: &pipepb.Trigger_Repeat{Subtrigger: t}}}
}

func afterProcessingTime(delayMillis int64) *pipepb.Trigger {
	return &pipepb.Trigger{Trigger: &pipepb.Trigger_AfterProcessingTime_{AfterProcessingTime: &pipepb.Trigger_AfterProcessingTime{
		TimestampTransforms: []*pipepb.TimestampTransform{{TimestampTransform: &pipepb.TimestampTransform_Delay_{
			Delay: &pipepb.TimestampTransform_Delay{DelayMillis: delayMillis}}}}}}}
}

// TestTriggerFirings feeds elements one by one to triggers and checks
// after which of them each fires, as Beam's trigger primitives
// (test/integration/primitives/windowinto.go) describe them.
func TestTriggerFirings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trigger  *pipepb.Trigger
		elements int
		want     []int // 1-based elements after which the trigger fires
	}{
		{"Always", always(), 3, []int{1, 2, 3}},
		{"AfterCount once", count(2), 5, []int{2}},
		{"Repeat AfterCount", repeat(count(2)), 6, []int{2, 4, 6}},
		{"Repeat AfterAll(Always, AfterCount 5)", repeat(&pipepb.Trigger{Trigger: &pipepb.Trigger_AfterAll_{AfterAll: &pipepb.Trigger_AfterAll{
			Subtriggers: []*pipepb.Trigger{always(), count(5)}}}}), 5, []int{5}},
		{"Repeat AfterEach(AfterCount 3, Always)", repeat(&pipepb.Trigger{Trigger: &pipepb.Trigger_AfterEach_{AfterEach: &pipepb.Trigger_AfterEach{
			Subtriggers: []*pipepb.Trigger{count(3), always()}}}}), 5, []int{3, 4, 5}},
		{"Repeat AfterAny(AfterCount 3, Always)", repeat(&pipepb.Trigger{Trigger: &pipepb.Trigger_AfterAny_{AfterAny: &pipepb.Trigger_AfterAny{
			Subtriggers: []*pipepb.Trigger{count(3), always()}}}}), 3, []int{1, 2, 3}},
		{"OrFinally(Always, AfterCount 2)", &pipepb.Trigger{Trigger: &pipepb.Trigger_OrFinally_{OrFinally: &pipepb.Trigger_OrFinally{
			Main: always(), Finally: count(2)}}}, 4, []int{1, 2}},
		{"Never", &pipepb.Trigger{Trigger: &pipepb.Trigger_Never_{Never: &pipepb.Trigger_Never{}}}, 3, nil},
		{"AfterEndOfWindow early AfterCount 2", &pipepb.Trigger{Trigger: &pipepb.Trigger_AfterEndOfWindow_{AfterEndOfWindow: &pipepb.Trigger_AfterEndOfWindow{
			EarlyFirings: count(2), LateFirings: count(1)}}}, 5, []int{2, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseTrigger(tc.trigger)
			if err != nil {
				t.Fatal(err)
			}
			w := windowTrigger{root: root, states: map[*trigNode]*trigState{}}
			var got []int
			for i := 1; i <= tc.elements; i++ {
				if w.ready(trigInput{elements: 1}) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fired after elements %v, want %v", got, tc.want)
			}
		})
	}
}

// AfterProcessingTime fires once the processing time reaches its first
// element's plus the delay; repeated, it starts over from there.
func TestTriggerProcessingTime(t *testing.T) {
	root, err := parseTrigger(repeat(afterProcessingTime(5000)))
	if err != nil {
		t.Fatal(err)
	}
	w := windowTrigger{root: root, states: map[*trigNode]*trigState{}}
	steps := []struct {
		elements int
		now      mtime.Time
		fires    bool
	}{
		{1, 100, false},  // starts the delay: due at 5100
		{0, 5099, false}, // not yet
		{1, 5099, false},
		{0, 5100, true},  // due; restarts from 5100: due at 10100
		{1, 6000, false}, // an element does not restart it
		{0, 10099, false},
		{0, 10100, true},
	}
	for i, s := range steps {
		if got := w.ready(trigInput{elements: s.elements, now: s.now}); got != s.fires {
			t.Fatalf("step %d (%d elements at %d): fired %v, want %v", i, s.elements, s.now, got, s.fires)
		}
	}
}
