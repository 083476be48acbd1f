package galerunner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/beam/internal/worker"
	"github.com/galeproject/gale/engine"
)

func init() {
	register.Function2x1(sumGroup)
	register.Function3x1(joinSums)
}

// sumGroup formats a group: its key, how many values and their sum.
func sumGroup(key string, vals func(*int) bool) string {
	n, sum, v := 0, 0, 0
	for vals(&v) {
		n++
		sum += v
	}
	return fmt.Sprintf("g %s n=%d sum=%d", key, n, sum)
}

// joinSums formats a CoGroupByKey result: per side, count and sum.
func joinSums(key string, ages func(*int) bool, cities func(*string) bool) string {
	n, sum, v := 0, 0, 0
	for ages(&v) {
		n++
		sum += v
	}
	var cs []string
	var c string
	for cities(&c) {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return fmt.Sprintf("j %s n=%d sum=%d cities=%s", key, n, sum, strings.Join(cs, "|"))
}

// TestGroupingSpillsUnderATinyBudget runs a GroupByKey (read by two
// ParDos) and a CoGroupByKey over 3,000 keys, a quarter of the values on
// one hot key, with 64 KiB per task: the reduce tasks group by sorting
// and spilling (the report says so), the hot key's values reach the
// DoFns through state-backed iterables, and the output is exactly the
// one computed here with plain maps.
func TestGroupingSpillsUnderATinyBudget(t *testing.T) {
	var ages, cities []string
	type agg struct{ n, sum int }
	groups := map[string]*agg{}
	joined := map[string]*agg{}
	joinedCities := map[string][]string{}
	for i := range 20000 {
		key := "hot"
		if i%4 != 0 {
			key = fmt.Sprintf("p%04d", (i*7919)%3000)
		}
		v := i * 37 % 100003
		ages = append(ages, fmt.Sprintf("%s,%d", key, v))
		for _, m := range []map[string]*agg{groups, joined} {
			if m[key] == nil {
				m[key] = &agg{}
			}
			m[key].n++
			m[key].sum += v
		}
		if i%3 == 0 {
			city := fmt.Sprintf("p%04d", (i*31)%3400) // some keys only here
			c := fmt.Sprintf("c%d", i%13)
			cities = append(cities, city+","+c)
			joinedCities[city] = append(joinedCities[city], c)
			if joined[city] == nil {
				joined[city] = &agg{}
			}
		}
	}
	var want []string
	for k, a := range groups {
		line := fmt.Sprintf("g %s n=%d sum=%d", k, a.n, a.sum)
		want = append(want, line, line)
	}
	for k, a := range joined {
		cs := joinedCities[k]
		slices.Sort(cs)
		want = append(want, fmt.Sprintf("j %s n=%d sum=%d cities=%s", k, a.n, a.sum, strings.Join(cs, "|")))
	}
	slices.Sort(want)

	out := filepath.Join(t.TempDir(), "out.txt")
	build := func(s beam.Scope) {
		ka := beam.ParDo(s, parseAge, beam.CreateList(s, ages))
		kc := beam.ParDo(s, parseCity, beam.CreateList(s, cities))
		// Two consumers of one GroupByKey: the SDK's Multiplex, which may
		// iterate each group twice.
		grouped := beam.GroupByKey(s, ka)
		g, g2 := beam.ParDo(s, sumGroup, grouped), beam.ParDo(s, sumGroup, grouped)
		j := beam.ParDo(s, joinSums, beam.CoGroupByKey(s, ka, kc))
		textio.Write(s, out, beam.Flatten(s, g, g2, j))
	}
	res := runGale(t, build, galerunner.Config{Workers: 2, Partitions: 2, WorkerMemory: 64 << 10})
	got := sortedLines(t, out)
	if !slices.Equal(got, want) {
		t.Fatalf("output differs from the reference: %d vs %d lines\ngot:  %.6q\nwant: %.6q", len(got), len(want), got, want)
	}
	var runs int64
	for _, st := range res.Report.Stages {
		runs += st.Metrics.SpillRuns
	}
	if runs == 0 {
		t.Fatal("no stage spilled: the budget did not take effect")
	}
}

// gate holds back gatedSum at the hot key, for the cancellation test:
// gatedSum sends on reached (when set) and waits for release.
var gate struct{ reached, release chan struct{} }

func gatedSum(key string, vals func(*int) bool) string {
	if key == "hot" && gate.reached != nil {
		select {
		case gate.reached <- struct{}{}: // the first attempt to get here
		case <-gate.release:
		}
		<-gate.release
	}
	return sumGroup(key, vals)
}

func failOnHot(key string, vals func(*int) bool) (string, error) {
	s := sumGroup(key, vals)
	if key == "hot" {
		return "", fmt.Errorf("hot key refused after reading its values: %s", s)
	}
	return s, nil
}

func init() {
	register.Function2x1(gatedSum)
	register.Function2x2(failOnHot)
}

// TestGroupingSpillLeavesNoFiles runs a spilling GroupByKey whose hot key
// goes to a value file on workers with their own spill directory: after a
// successful job, a job whose DoFn fails on the hot key (every attempt)
// and a job cancelled while the hot key's DoFn runs, the directory is
// empty.
func TestGroupingSpillLeavesNoFiles(t *testing.T) {
	var ages []string
	for i := range 12000 {
		key := "hot"
		if i%4 != 0 {
			key = fmt.Sprintf("p%04d", i%1500)
		}
		ages = append(ages, fmt.Sprintf("%s,%d", key, i*1000))
	}
	spill := ""
	run := func(ctx context.Context, t *testing.T, fn any) (*galerunner.Result, error) {
		spill = t.TempDir()
		w, err := worker.New(worker.Config{OpenStore: openFS, SpillDir: spill})
		if err != nil {
			t.Fatal(err)
		}
		b, err := local.New(local.Config{Handler: w.Handle, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		p, s := beam.NewPipelineWithRoot()
		out := filepath.Join(t.TempDir(), "out.txt")
		textio.Write(s, out, beam.ParDo(s, fn, beam.GroupByKey(s, beam.ParDo(s, parseAge, beam.CreateList(s, ages)))))
		pp, err := galerunner.Marshal(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return galerunner.Run(ctx, pp, galerunner.Config{Backend: b, Workers: 2, Partitions: 2, MaxAttempts: 2, WorkerMemory: 64 << 10})
	}
	empty := func(t *testing.T, dir string) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Fatalf("the workers' spill directory still holds %s and %d more", ents[0].Name(), len(ents)-1)
		}
	}
	t.Run("success", func(t *testing.T) {
		res, err := run(context.Background(), t, sumGroup)
		if err != nil {
			t.Fatal(err)
		}
		if res.Report.Stages[1].Metrics.SpillRuns == 0 {
			t.Fatalf("the GroupByKey did not spill: %+v", res.Report.Stages[1])
		}
		empty(t, spill)
	})
	t.Run("error", func(t *testing.T) {
		_, err := run(context.Background(), t, failOnHot)
		if err == nil || !strings.Contains(err.Error(), "hot key refused") {
			t.Fatalf("Run = %v, want the DoFn's error", err)
		}
		empty(t, spill)
	})
	t.Run("cancel", func(t *testing.T) {
		gate.reached, gate.release = make(chan struct{}), make(chan struct{})
		defer func() { gate.reached, gate.release = nil, nil }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := run(ctx, t, gatedSum)
			done <- err
		}()
		<-gate.reached // the hot key's task is running its DoFn
		ents, err := os.ReadDir(spill)
		if err != nil || len(ents) == 0 {
			t.Errorf("no value file for the hot key while its DoFn runs (%v)", err)
		}
		cancel()
		close(gate.release)
		// Interrupted, not failed: no attempt is retried after the
		// cancel, so the error is the interruption's.
		if err := <-done; !errors.Is(err, engine.ErrInterrupted) || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "failed after") {
			t.Fatalf("Run = %v, want engine.ErrInterrupted and context.Canceled", err)
		}
		empty(t, spill)
	})
}

// openFS opens the job's temporary directory (Run's default store).
func openFS(_ context.Context, dir string, _ map[string]string) (objstore.Store, error) {
	return objstore.NewFS(dir)
}
