package galerunner_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/galeproject/gale/beam/galerunner"
)

func init() {
	register.Function1x2(keyByParity)
	register.Function4x1(formatPane)
}

func keyByParity(v int) (string, int) { return fmt.Sprintf("k%d", v%2), v }

// formatPane describes one pane of a GroupByKey: its window, its
// PaneInfo and its values, sorted.
func formatPane(pn beam.PaneInfo, w beam.Window, key string, vals func(*int) bool) string {
	var xs []int
	var v int
	for vals(&v) {
		xs = append(xs, v)
	}
	slices.Sort(xs)
	return fmt.Sprintf("%s %d timing=%v first=%v last=%v index=%d nonspec=%d %v",
		key, w.MaxTimestamp(), pn.Timing, pn.IsFirst, pn.IsLast, pn.Index, pn.NonSpeculativeIndex, xs)
}

// streamCase is a TestStream, a windowing with a trigger, and the panes
// of a GroupByKey over it.
type streamCase struct {
	name   string
	stream func(c *teststream.Config)
	wfn    *window.Fn
	opts   []beam.WindowIntoOption
}

func (c streamCase) build(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		con := teststream.NewConfig()
		c.stream(&con)
		keyed := beam.ParDo(s, keyByParity, teststream.Create(s, con))
		win := beam.WindowInto(s, c.wfn, keyed, c.opts...)
		panes := beam.ParDo(s, formatPane, beam.GroupByKey(s, win))
		textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), panes))
	}
}

// TestTestStreamTriggerPanes replays TestStreams through triggered
// GroupByKeys on Gale and on Prism and compares every pane: its key,
// window, PaneInfo (timing, first, last, index, non-speculative index)
// and values. The streams mix keys, windows, watermark and processing
// time advances, late data within and past the allowed lateness.
func TestTestStreamTriggerPanes(t *testing.T) {
	sec := func(s int) int64 { return int64(s) * 1000 }
	mixed := func(c *teststream.Config) {
		c.AddElements(sec(1), 1, 2, 3)
		c.AdvanceProcessingTime(sec(2))
		c.AddElements(sec(4), 4, 5)
		c.AdvanceWatermark(sec(11))
		c.AddElements(sec(5), 6, 7) // late for [0s, 10s), within 5s of lateness
		c.AddElements(sec(12), 8, 9, 10)
		c.AdvanceProcessingTime(sec(6))
		c.AdvanceWatermark(sec(17))
		c.AddElements(sec(3), 11) // past the lateness: dropped
		c.AddElements(sec(13), 12, 13)
		c.AdvanceWatermark(sec(40))
		c.AddElements(sec(45), 14)
	}
	fixed := window.NewFixedWindows(10 * time.Second)
	cases := []streamCase{
		{"Default", mixed, fixed, []beam.WindowIntoOption{beam.AllowedLateness(5 * time.Second)}},
		{"DefaultNoLateness", mixed, fixed, nil},
		{"EarlyLateAccumulating", mixed, fixed, []beam.WindowIntoOption{
			beam.Trigger(trigger.AfterEndOfWindow().EarlyFiring(trigger.AfterCount(2)).LateFiring(trigger.AfterCount(1))),
			beam.AllowedLateness(5 * time.Second), beam.PanesAccumulate()}},
		{"RepeatCountDiscarding", mixed, fixed, []beam.WindowIntoOption{
			beam.Trigger(trigger.Repeat(trigger.AfterCount(2))), beam.AllowedLateness(5 * time.Second)}},
		{"ProcessingTime", mixed, window.NewGlobalWindows(), []beam.WindowIntoOption{
			beam.Trigger(trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(3 * time.Second)))}},
		{"AfterEachAnyAll", mixed, fixed, []beam.WindowIntoOption{
			beam.Trigger(trigger.Repeat(trigger.AfterEach([]trigger.Trigger{
				trigger.AfterCount(3),
				trigger.AfterAny([]trigger.Trigger{trigger.AfterCount(2), trigger.AfterProcessingTime().PlusDelay(time.Second)}),
				trigger.AfterAll([]trigger.Trigger{trigger.Always(), trigger.AfterCount(2)}),
			}))), beam.AllowedLateness(5 * time.Second)}},
		{"OrFinallyAccumulating", mixed, fixed, []beam.WindowIntoOption{
			beam.Trigger(trigger.OrFinally(trigger.Always(), trigger.AfterCount(3))), beam.PanesAccumulate()}},
		{"Never", mixed, fixed, []beam.WindowIntoOption{beam.Trigger(trigger.Never()), beam.AllowedLateness(5 * time.Second)}},
	}
	cfg := galerunner.Config{Workers: 2, Partitions: 2}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			galeOut, prismOut := filepath.Join(dir, "gale.txt"), filepath.Join(dir, "prism.txt")
			runGale(t, c.build(galeOut), cfg)
			runPrism(t, c.build(prismOut))
			got, want := sortedLines(t, galeOut), sortedLines(t, prismOut)
			if !slices.Equal(got, want) {
				t.Fatalf("gale's panes differ from prism's:\ngale:\n  %s\nprism:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			t.Logf("%d panes:\n  %s", len(got), strings.Join(got, "\n  "))
		})
	}
}

func init() { register.Function2x0(stampSeconds) }

// stampSeconds emits v at v seconds.
func stampSeconds(v int, emit func(beam.EventTime, int)) {
	emit(beam.EventTime(int64(v)*1000), v)
}

// TestTriggersWithoutTestStream runs triggered GroupByKeys over bounded
// input on Gale and on Prism and compares every pane.
func TestTriggersWithoutTestStream(t *testing.T) {
	fixed := window.NewFixedWindows(10 * time.Second)
	for _, c := range []struct {
		name string
		opts []beam.WindowIntoOption
	}{
		{"Always", []beam.WindowIntoOption{beam.Trigger(trigger.Always())}},
		{"RepeatCount", []beam.WindowIntoOption{beam.Trigger(trigger.Repeat(trigger.AfterCount(2)))}},
		{"EarlyLate", []beam.WindowIntoOption{beam.Trigger(trigger.AfterEndOfWindow().EarlyFiring(trigger.AfterCount(1))), beam.PanesAccumulate()}},
		{"ProcessingTime", []beam.WindowIntoOption{beam.Trigger(trigger.AfterProcessingTime().PlusDelay(time.Second))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			build := func(out string) func(s beam.Scope) {
				return func(s beam.Scope) {
					var xs []int
					for i := range 25 {
						xs = append(xs, i)
					}
					stamped := beam.ParDo(s, stampSeconds, beam.CreateList(s, xs))
					keyed := beam.ParDo(s, keyByParity, stamped)
					win := beam.WindowInto(s, fixed, keyed, c.opts...)
					panes := beam.ParDo(s, formatPane, beam.GroupByKey(s, win))
					textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), panes))
				}
			}
			dir := t.TempDir()
			galeOut, prismOut := filepath.Join(dir, "gale.txt"), filepath.Join(dir, "prism.txt")
			runGale(t, build(galeOut), galerunner.Config{Workers: 2, Partitions: 2})
			runPrism(t, build(prismOut))
			got, want := sortedLines(t, galeOut), sortedLines(t, prismOut)
			if !slices.Equal(got, want) {
				t.Fatalf("gale's panes differ from prism's:\ngale:\n  %s\nprism:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			t.Logf("%d panes:\n  %s", len(got), strings.Join(got, "\n  "))
		})
	}
}
