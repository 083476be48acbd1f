package galerunner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/galeproject/gale/beam/galerunner"
)

func init() {
	register.DoFn6x0[beam.Window, state.Provider, timers.Provider, string, string, func(string)](&countAndFlushFn{})
	register.Function2x0(keyedStamp)
	register.Emitter3[beam.EventTime, string, string]()
}

// countAndFlushFn counts each key's elements per window in value state,
// keeps them in a bag and a set, and at the window's end (an event-time
// timer) emits the count and the sorted values, then clears its state.
type countAndFlushFn struct {
	Count state.Value[int]
	Seen  state.Bag[string]
	Kinds state.Set[string]
	Flush timers.EventTime
}

func (f *countAndFlushFn) ProcessElement(w beam.Window, sp state.Provider, tp timers.Provider, key, val string, emit func(string)) {
	n, _, err := f.Count.Read(sp)
	if err != nil {
		panic(err)
	}
	if err := f.Count.Write(sp, n+1); err != nil {
		panic(err)
	}
	if err := f.Seen.Add(sp, val); err != nil {
		panic(err)
	}
	if err := f.Kinds.Add(sp, val[:1]); err != nil {
		panic(err)
	}
	f.Flush.Set(tp, w.MaxTimestamp().ToTime())
	emit(fmt.Sprintf("element %s %v #%d", key, w.MaxTimestamp().ToTime().UTC().Format(time.TimeOnly), n+1))
}

func (f *countAndFlushFn) OnTimer(ctx context.Context, w beam.Window, ts beam.EventTime, sp state.Provider, tp timers.Provider, key string, timer timers.Context, emit func(string)) {
	n, _, err := f.Count.Read(sp)
	if err != nil {
		panic(err)
	}
	vals, _, err := f.Seen.Read(sp)
	if err != nil {
		panic(err)
	}
	kinds, _, err := f.Kinds.Keys(sp)
	if err != nil {
		panic(err)
	}
	slices.Sort(vals)
	slices.Sort(kinds)
	emit(fmt.Sprintf("timer %s %v at %v: %d %v %v", key, w.MaxTimestamp().ToTime().UTC().Format(time.TimeOnly),
		ts.ToTime().UTC().Format(time.TimeOnly), n, vals, kinds))
	_ = f.Count.Clear(sp)
	_ = f.Seen.Clear(sp)
	_ = f.Kinds.Clear(sp)
}

func keyedStamp(i int, emit func(beam.EventTime, string, string)) {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i*3) * time.Second)
	emit(beam.EventTime(t.UnixMilli()), fmt.Sprintf("k%02d", i%37), fmt.Sprintf("%c%04d", 'a'+i%3, i))
}

// stateful: a stateful DoFn with value, bag and set state and an
// event-time timer per key and one-minute window.
func stateful(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		var xs []int
		for i := range 2000 {
			xs = append(xs, i)
		}
		stamped := beam.ParDo(s, keyedStamp, beam.CreateList(s, xs))
		win := beam.WindowInto(s, window.NewFixedWindows(time.Minute), stamped)
		res := beam.ParDo(s, &countAndFlushFn{Count: state.MakeValueState[int]("count"), Seen: state.MakeBagState[string]("seen"),
			Kinds: state.MakeSetState[string]("kinds"), Flush: timers.InEventTime("flush")}, win)
		textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), res))
	}
}

// TestStatefulDoFn runs the stateful DoFn on Gale and Prism: with the
// default budget (every key of a task in one batch) and with a budget so
// small that each task runs many batches of keys and spills its bags.
func TestStatefulDoFn(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		conform(t, galerunner.Config{Workers: 2, Partitions: 3}, stateful)
	})
	t.Run("tiny budget", func(t *testing.T) {
		conform(t, galerunner.Config{Workers: 2, Partitions: 3, WorkerMemory: 16 << 10}, stateful)
	})
}

func init() {
	register.Function2x0(sessionStamp)
	register.Function4x1(formatSession)
	register.Function3x1(formatSessionCount)
}

// sessionStamp stamps key k%7 with times that leave gaps longer than a
// minute every 40 elements, so each key has several sessions.
func sessionStamp(i int, emit func(beam.EventTime, string, int)) {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i*7)*time.Second + time.Duration(i/40)*5*time.Minute)
	emit(beam.EventTime(t.UnixMilli()), fmt.Sprintf("s%d", i%7), i)
}

func formatSession(w beam.Window, ts beam.EventTime, key string, vals func(*int) bool) string {
	var xs []int
	var v int
	for vals(&v) {
		xs = append(xs, v)
	}
	slices.Sort(xs)
	iw := w.(window.IntervalWindow)
	return fmt.Sprintf("%s [%v, %v) at %v: %v", key, iw.Start.ToTime().UTC().Format(time.TimeOnly), iw.End.ToTime().UTC().Format(time.TimeOnly),
		ts.ToTime().UTC().Format(time.TimeOnly), xs)
}

func formatSessionCount(w beam.Window, key string, n int) string {
	iw := w.(window.IntervalWindow)
	return fmt.Sprintf("count %s [%v, %v): %d", key, iw.Start.ToTime().UTC().Format(time.TimeOnly), iw.End.ToTime().UTC().Format(time.TimeOnly), n)
}

// sessions: session windows merged in a GroupByKey and in a lifted
// combine (stats.Count).
func sessions(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		var xs []int
		for i := range 600 {
			xs = append(xs, i)
		}
		stamped := beam.ParDo(s, sessionStamp, beam.CreateList(s, xs))
		win := beam.WindowInto(s, window.NewSessions(time.Minute), stamped)
		grouped := beam.ParDo(s, formatSession, beam.GroupByKey(s, win))
		counted := beam.ParDo(s, formatSessionCount, stats.Count(s, beam.DropValue(s, win)))
		textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), beam.Flatten(s, grouped, counted)))
	}
}

// TestSessionWindows merges session windows on Gale as on Prism, with
// the default budget and one so small that grouping spills.
func TestSessionWindows(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		conform(t, galerunner.Config{Workers: 2, Partitions: 3}, sessions)
	})
	t.Run("tiny budget", func(t *testing.T) {
		conform(t, galerunner.Config{Workers: 2, Partitions: 3, WorkerMemory: 16 << 10}, sessions)
	})
}
