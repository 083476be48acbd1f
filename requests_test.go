package gale_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
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
