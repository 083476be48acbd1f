package gale_test

import (
	"context"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/sim"
)

func constKey(int64) string { return "all" }

func init() {
	workerPipelines["partitions"] = func(p *gale.Pipeline) {
		nums := gale.Generate(p, 100, square)
		gale.Collect(gale.Reduce(nums, addInt64))
		gale.Collect(gale.SumPerKey(gale.KeyBy(nums, constKey)))
	}
}

// TestGlobalAggregateOnAWideBackendGetsOnePartition: on a backend that runs
// 1000 tasks at once (a cloud, sim:aws) a global aggregate's shuffle got
// 1000 partitions — 999 empty reduce tasks. Partition counts now follow
// the data: the one constant key of Reduce, the input size behind a lifted
// combine.
func TestGlobalAggregateOnAWideBackendGetsOnePartition(t *testing.T) {
	mux, err := gale.NewWorkerMux()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = mux.Handle
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if w := b.Traits().MaxConcurrency; w < 1000 {
		t.Fatalf("sim:aws runs %d tasks at once; the test needs a wide backend", w)
	}
	p := gale.NewPipeline()
	nums := gale.Generate(p, 100, square)
	total := gale.Collect(gale.Reduce(nums, addInt64))
	keyed := gale.Collect(gale.SumPerKey(gale.KeyBy(nums, constKey)))
	plan, err := gale.Explain(context.Background(), p, gale.WithBackend("sim:aws", b))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(plan, "1 task(s) reading shuffle"); n != 2 {
		t.Errorf("want both aggregates read by one task each:\n%s", plan)
	}
	report := run(t, p, gale.WithBackend("sim:aws", b))
	var want int64
	for i := int64(0); i < 100; i++ {
		want += i * i
	}
	if v := total.Values(); len(v) != 1 || v[0] != want {
		t.Errorf("Reduce = %v, want %d", v, want)
	}
	if v := keyed.Values(); len(v) != 1 || v[0].Value != want {
		t.Errorf("SumPerKey = %v, want all=%d", v, want)
	}
	for _, st := range report.Stages[1:] {
		if st.Tasks != 1 {
			t.Errorf("stage %s has %d tasks, want 1", st.Name, st.Tasks)
		}
	}
	t.Logf("%d invocations", report.Invocations)
}
