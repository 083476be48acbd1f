package galerunner_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/beam/examples/wordcount"
	"github.com/galeproject/gale/beam/galerunner"
)

func init() {
	register.Function3x0(splitByLength)
	register.Function2x1(formatCount)
	register.Function4x0(joinFn)
	register.Function3x0(dropStopwords)
	register.Function3x0(lookupScore)
	register.Function2x0(stampFn)
	register.Function1x2(parseAge)
	register.Function1x2(parseCity)
	register.Function3x1(formatWindowed)
	register.Function3x1(formatStamped)
	register.DoFn4x0[state.Provider, string, string, func(string)](&statefulFn{})
	register.Emitter1[string]()
	register.Emitter2[beam.EventTime, string]()
	register.Iter1[int]()
	register.Iter1[string]()
}

func splitByLength(w string, short, long func(string)) {
	if len(w) <= 3 {
		short(w)
	} else {
		long(strings.ToUpper(w))
	}
}

func formatCount(w string, c int) string { return fmt.Sprintf("%s: %d", w, c) }

// multiOutput: a ParDo with two outputs, flattened back, counted.
func multiOutput(in, out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		lines := textio.Read(s, in)
		words := beam.ParDo(s, &wordcount.ExtractFn{SmallWordLength: 4}, lines)
		short, long := beam.ParDo2(s, splitByLength, words)
		all := beam.Flatten(s, short, long)
		textio.Write(s, out, beam.ParDo(s, formatCount, stats.Count(s, all)))
	}
}

func joinFn(key string, ages func(*int) bool, cities func(*string) bool, emit func(string)) {
	var as []int
	var a int
	for ages(&a) {
		as = append(as, a)
	}
	var cs []string
	var c string
	for cities(&c) {
		cs = append(cs, c)
	}
	slices.Sort(as)
	slices.Sort(cs)
	emit(fmt.Sprintf("%s %v %v", key, as, cs))
}

func parseAge(line string) (string, int) {
	name, age, _ := strings.Cut(line, ",")
	var n int
	fmt.Sscan(age, &n)
	return name, n
}

func parseCity(line string) (string, string) {
	name, city, _ := strings.Cut(line, ",")
	return name, city
}

// join: CoGroupByKey of two keyed collections.
func join(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		var ages, cities []string
		for i := range 300 {
			ages = append(ages, fmt.Sprintf("p%03d,%d", i%120, 20+i%47))
			if i%3 != 0 {
				cities = append(cities, fmt.Sprintf("p%03d,city%d", (i*7)%150, i%11))
			}
		}
		ka := beam.ParDo(s, parseAge, beam.CreateList(s, ages))
		kc := beam.ParDo(s, parseCity, beam.CreateList(s, cities))
		joined := beam.ParDo(s, joinFn, beam.CoGroupByKey(s, ka, kc))
		textio.Write(s, out, joined)
	}
}

func dropStopwords(w string, stop func(*string) bool, emit func(string)) {
	var sw string
	for stop(&sw) {
		if strings.EqualFold(sw, w) {
			return
		}
	}
	emit(w)
}

func lookupScore(w string, scores func(string) func(*int) bool, emit func(string)) {
	iter := scores(strings.ToLower(w))
	total, n := 0, 0
	var v int
	for iter(&v) {
		total += v
		n++
	}
	emit(fmt.Sprintf("%s=%d/%d", w, total, n))
}

// sides: an iterable side input (stop words) and a map side input
// (scores per word).
func sides(in, out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		lines := textio.Read(s, in)
		words := beam.ParDo(s, &wordcount.ExtractFn{SmallWordLength: 4}, lines)
		stop := beam.Create(s, "the", "a", "an")
		kept := beam.ParDo(s, dropStopwords, words, beam.SideInput{Input: stop})
		scores := beam.ParDo(s, parseAge, beam.Create(s, "fox,3", "dog's,5", "fox,4", "king,10", "over,1"))
		scored := beam.ParDo(s, lookupScore, kept, beam.SideInput{Input: scores})
		textio.Write(s, out, beam.ParDo(s, formatCount, stats.Count(s, scored)))
	}
}

func stampFn(i int, emit func(beam.EventTime, string)) {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i*7) * time.Second)
	emit(beam.EventTime(t.UnixMilli()), fmt.Sprintf("w%d", i%5))
}

func formatWindowed(w beam.Window, word string, c int) string {
	return fmt.Sprintf("%v %s: %d", w.MaxTimestamp().ToTime().UTC().Format(time.TimeOnly), word, c)
}

// windowed: a count per word in fixed one-minute windows.
func windowed(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		var xs []int
		for i := range 1000 {
			xs = append(xs, i)
		}
		stamped := beam.ParDo(s, stampFn, beam.CreateList(s, xs))
		win := beam.WindowInto(s, window.NewFixedWindows(time.Minute), stamped)
		formatted := beam.ParDo(s, formatWindowed, stats.Count(s, win))
		textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), formatted))
	}
}

func formatStamped(w beam.Window, ts beam.EventTime, word string) string {
	return fmt.Sprintf("%v %v %s", w.MaxTimestamp().ToTime().UTC().Format(time.TimeOnly), ts.ToTime().UTC().Format(time.TimeOnly), word)
}

// reshuffled: beam.Reshuffle of windowed, timestamped elements, which
// keeps each element's window and timestamp.
func reshuffled(out string) func(s beam.Scope) {
	return func(s beam.Scope) {
		var xs []int
		for i := range 500 {
			xs = append(xs, i)
		}
		stamped := beam.ParDo(s, stampFn, beam.CreateList(s, xs))
		win := beam.WindowInto(s, window.NewFixedWindows(time.Minute), stamped)
		formatted := beam.ParDo(s, formatStamped, beam.Reshuffle(s, win))
		textio.Write(s, out, beam.WindowInto(s, window.NewGlobalWindows(), formatted))
	}
}

// conform runs a pipeline on Gale and on Prism and compares the sorted
// lines of their outputs.
func conform(t *testing.T, cfg galerunner.Config, build func(out string) func(s beam.Scope)) {
	t.Helper()
	dir := t.TempDir()
	galeOut, prismOut := filepath.Join(dir, "gale.txt"), filepath.Join(dir, "prism.txt")
	runGale(t, build(galeOut), cfg)
	runPrism(t, build(prismOut))
	got, want := sortedLines(t, galeOut), sortedLines(t, prismOut)
	if len(want) < 2 {
		t.Fatalf("prism wrote %d lines; the test pipeline is too small", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("gale output differs from prism: %d vs %d lines\ngale:  %.10q\nprism: %.10q", len(got), len(want), got, want)
	}
}

func TestConformance(t *testing.T) {
	in := writeCorpus(t, t.TempDir(), 3000)
	small := writeCorpus(t, t.TempDir(), 400) // Prism serves side inputs slowly
	cfg := galerunner.Config{Workers: 2, Partitions: 3}
	t.Run("MultiOutputFlatten", func(t *testing.T) {
		conform(t, cfg, func(out string) func(s beam.Scope) { return multiOutput(in, out) })
	})
	t.Run("CoGroupByKeyJoin", func(t *testing.T) { conform(t, cfg, join) })
	t.Run("SideInputs", func(t *testing.T) {
		conform(t, cfg, func(out string) func(s beam.Scope) { return sides(small, out) })
	})
	t.Run("FixedWindows", func(t *testing.T) { conform(t, cfg, windowed) })
	t.Run("Reshuffle", func(t *testing.T) { conform(t, cfg, reshuffled) })
}

// TestProcessBackend runs the word count in worker processes of this test
// binary and checks it against Prism.
func TestProcessBackend(t *testing.T) {
	pc := process.DefaultConfig()
	pc.Concurrency = 2
	pc.Output = testWriter{t}
	b, err := process.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := writeCorpus(t, t.TempDir(), 3000)
	conform(t, galerunner.Config{Backend: b, BackendName: "process", Workers: 2, Partitions: 2},
		func(out string) func(s beam.Scope) { return func(s beam.Scope) { wordcount.Build(s, in, out) } })
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// statefulFn uses user state.
type statefulFn struct {
	Seen state.Value[int]
}

func (f *statefulFn) ProcessElement(p state.Provider, k, w string, emit func(string)) {
	n, _, _ := f.Seen.Read(p)
	_ = f.Seen.Write(p, n+1)
	emit(w)
}

// countingBackend fails every invocation and counts them.
type countingBackend struct{ n atomic.Int64 }

func (b *countingBackend) Invoke(context.Context, backends.Task) (backends.Result, error) {
	b.n.Add(1)
	return backends.Result{}, errors.New("not expected")
}

func (b *countingBackend) Close() error { return nil }

func TestRejectsUnsupportedBeforeAnyTask(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	words := beam.Create(s, "a", "b", "a")
	kv := beam.ParDo(s, parseCity, words)
	beam.ParDo(s, &statefulFn{}, kv)
	pp, err := galerunner.Marshal(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Two transforms of kinds Gale does not know: both are named, in one
	// error, before anything runs.
	var renamed []string
	for _, tr := range pp.GetComponents().GetTransforms() {
		if tr.GetSpec().GetUrn() == "beam:transform:pardo:v1" && len(renamed) < 2 {
			tr.Spec.Urn = fmt.Sprintf("beam:transform:gale_test_unknown_%d:v1", len(renamed))
			renamed = append(renamed, tr.GetUniqueName())
		}
	}
	b := &countingBackend{}
	_, err = galerunner.Run(context.Background(), pp, galerunner.Config{Backend: b})
	if !errors.Is(err, galerunner.ErrUnsupported) {
		t.Fatalf("Run = %v, want ErrUnsupported", err)
	}
	for i, name := range renamed {
		if !strings.Contains(err.Error(), fmt.Sprintf("transform %q of kind \"beam:transform:gale_test_unknown_%d:v1\"", name, i)) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if b.n.Load() != 0 {
		t.Fatalf("%d tasks were invoked before the pipeline was rejected", b.n.Load())
	}
	t.Log(err)
}
