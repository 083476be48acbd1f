package gale_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/examples/wordcount"
)

// TestReportCountsRequestsPerTierAndStage runs a word count of two distinct
// words in several chunks into many partitions and checks the report's
// request counts per stage against what the job must do: each map task
// reads its chunk from object storage and writes one shuffle object; each
// map output holds at most two non-empty partitions (one per word), and
// the reducers read only those; the reducers write one part file each.
func TestReportCountsRequestsPerTierAndStage(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for i := range 2000 {
		b.WriteString([]string{"alpha\n", "beta\n"}[i%2])
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p := gale.NewPipeline()
	wordcount.Build(p, []string{in}, out)
	rep := run(t, p, gale.ChunkSize(1024), gale.Partitions(16), gale.Workers(2))
	if len(rep.Stages) != 2 {
		t.Fatalf("%d stages, want 2", len(rep.Stages))
	}
	for _, s := range rep.Stages {
		m := s.Metrics
		if sum := m.ObjectGets + m.ObjectPuts + m.ShuffleGets + m.ShufflePuts; sum != m.Requests {
			t.Errorf("stage %d: %d requests, but the tiers count %d: %+v", s.ID, m.Requests, sum, m)
		}
	}
	maps, reduce := rep.Stages[0], rep.Stages[1]
	if maps.Tasks < 5 {
		t.Fatalf("%d map tasks; the test needs several", maps.Tasks)
	}
	if m := maps.Metrics; m.ObjectGets < int64(maps.Tasks) || m.ShufflePuts != int64(maps.Tasks) || m.ObjectPuts != 0 || m.ShuffleGets != 0 {
		t.Errorf("map stage of %d tasks: %+v; want at least one object GET and exactly one shuffle PUT per task, nothing else", maps.Tasks, m)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var parts int64
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "part-") {
			parts++
		}
	}
	if m := reduce.Metrics; m.ShuffleGets < int64(maps.Tasks) || m.ShuffleGets > 2*int64(maps.Tasks) || m.ObjectPuts != parts || m.ObjectGets != 0 || m.ShufflePuts != 0 {
		t.Errorf("reduce stage after %d map tasks, %d part files: %+v; want one shuffle GET per non-empty segment (1 or 2 per map output) and one object PUT per part", maps.Tasks, parts, m)
	}
}

// TestChosenTaskCountsKeepOutputsAndSayWhy: word count with the task
// counts the planner chooses and with explicit ones gives the same counts
// (checked against an independent count), and gale plan and the report
// say how the counts were chosen.
func TestChosenTaskCountsKeepOutputsAndSayWhy(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 3<<20, 5, nil)
	want := refCount(t, in)
	for _, c := range []struct {
		name string
		opts []gale.RunOption
		plan []string
	}{
		{"chosen", nil, []string{"; tasks: 3.0 MiB over 2 function(s) x 4 waves is 384.0 KiB per task, raised to 4.0 MiB",
			"; partitions: 3.0 MiB of input behind partial aggregates, 64.0 MiB per partition"}},
		{"explicit", []gale.RunOption{gale.ChunkSize(256 << 10), gale.Partitions(5)}, []string{"; tasks: chunks of 256.0 KiB set for the job",
			"into 5 partition(s); partitions: set for the job"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]gale.RunOption{gale.Workers(2)}, c.opts...)
			p := gale.NewPipeline()
			out := filepath.Join(dir, c.name)
			wordcount.Build(p, []string{in}, out)
			plan, err := gale.Explain(context.Background(), p, opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.plan {
				if !strings.Contains(plan, s) {
					t.Errorf("plan does not say %q:\n%s", s, plan)
				}
			}
			rep := run(t, p, opts...)
			if len(rep.Sizing) != 2 || !strings.HasPrefix(rep.Sizing[0], "stage 0: ") || !strings.HasPrefix(rep.Sizing[1], "shuffle 0: ") {
				t.Errorf("report sizing %q, want the source stage's and the shuffle's reasons", rep.Sizing)
			}
			var b strings.Builder
			rep.Print(&b)
			if !strings.Contains(b.String(), "sizing: "+rep.Sizing[0]) {
				t.Errorf("printed report does not show the sizing:\n%s", b.String())
			}
			sameCounts(t, readCounts(t, out), want)
		})
	}
}

// TestSimulatorPricesStorageRequests runs a word count on sim:aws, whose
// model includes S3, and checks the report's simulated storage against
// the job's own request counts: every GET and PUT the tasks made is
// served and priced at S3's list prices, and the billed time holds at
// least every task's requests at their Table 4.2 latencies.
func TestSimulatorPricesStorageRequests(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 1<<20, 9, nil)
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
	p := gale.NewPipeline()
	out := filepath.Join(dir, "out")
	wordcount.Build(p, []string{in}, out)
	rep := run(t, p, gale.WithBackend("sim:aws", b), gale.ChunkSize(128<<10), gale.Partitions(4))
	sameCounts(t, readCounts(t, out), refCount(t, in))
	s := rep.SimulatedStorage
	if s == nil || s.Model != "S3 Standard" {
		t.Fatalf("simulated storage %+v, want S3 Standard's", s)
	}
	tot := rep.Totals()
	if s.Gets != tot.ObjectGets+tot.ShuffleGets || s.Puts != tot.ObjectPuts+tot.ShufflePuts {
		t.Errorf("simulated store served %d GET %d PUT; the tasks made %+v", s.Gets, s.Puts, tot)
	}
	st := sim.S3()
	if want := float64(s.Gets)*st.PricePerGet + float64(s.Puts)*st.PricePerPut; s.Cost < want*0.999 || s.Cost > want*1.001 {
		t.Errorf("storage cost $%g, want $%g", s.Cost, want)
	}
	minIO := (time.Duration(s.Gets)*st.GetLatency + time.Duration(s.Puts)*st.PutLatency).Seconds()
	if rep.BilledSeconds < minIO {
		t.Errorf("billed %.3f s, less than the requests' latencies alone, %.3f s", rep.BilledSeconds, minIO)
	}
	var b2 strings.Builder
	rep.Print(&b2)
	if !strings.Contains(b2.String(), "simulated storage (S3 Standard)") {
		t.Errorf("printed report does not show the simulated storage:\n%s", b2.String())
	}
}
