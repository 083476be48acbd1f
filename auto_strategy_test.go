package gale_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/local"
)

func autoWord(i int64) string { return fmt.Sprintf("w%d", (i*7919)%500) }

// TestAutoShuffleChoosesPerShuffle: with AutoShuffle one job sends its sort
// through Glider sort actions and ships its lifted count's partial
// aggregates as objects, both outputs right; the plan gives the reasons;
// a backend that cannot reach the embedded cluster ships everything.
func TestAutoShuffleChoosesPerShuffle(t *testing.T) {
	build := func() (*gale.Pipeline, *gale.Collected[string], *gale.Collected[gale.KV[string, int64]]) {
		p := gale.NewPipeline()
		words := gale.Generate(p, 20000, autoWord)
		return p, gale.Collect(gale.Sort(words)), gale.Collect(gale.CountPerElement(words))
	}
	var want []string
	counts := map[string]int64{}
	for i := range int64(20000) {
		want = append(want, autoWord(i))
		counts[autoWord(i)]++
	}
	slices.Sort(want)

	p, sorted, counted := build()
	plan, err := gale.Explain(context.Background(), p, gale.Workers(2), gale.ShuffleStrategy(gale.AutoShuffle))
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"[auto: glider, the sort moves", "[auto: data shipping, lifting shrinks"} {
		if !strings.Contains(plan, reason) {
			t.Errorf("plan does not say %q:\n%s", reason, plan)
		}
	}
	report, err := gale.Run(context.Background(), p, gale.Workers(2), gale.ShuffleStrategy(gale.AutoShuffle))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sorted.Values(), want) {
		t.Error("sorted output differs from the sorted input")
	}
	for _, kv := range counted.Values() {
		if counts[kv.Key] != kv.Value {
			t.Errorf("count of %q = %d, want %d", kv.Key, kv.Value, counts[kv.Key])
		}
	}
	strategies := map[string]int{}
	for _, s := range report.Shuffles {
		strategies[s.Strategy]++
	}
	if strategies["glider"] != 1 || strategies["data-shipping"] != 1 {
		t.Errorf("shuffle strategies %v, want one glider (the sort) and one data-shipping (the count)", strategies)
	}

	// A backend the planner cannot vouch for: no Glider cluster reachable.
	p, _, _ = build()
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	b, err := local.New(local.Config{Handler: w.Handle, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); w.Close() })
	plan, err = gale.Explain(context.Background(), p, gale.WithBackend("remote", b), gale.ShuffleStrategy(gale.AutoShuffle))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(plan, "[auto: data shipping") != 2 || !strings.Contains(plan, "remote backend's workers cannot reach") {
		t.Errorf("with an unreachable cluster, want both shuffles shipping data and the reason:\n%s", plan)
	}
}
