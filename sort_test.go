package gale_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

type item struct {
	Name  string
	Score float64
	Rank  int32
}

func itemScore(it item) float64 { return it.Score }
func itemRank(it item) int32    { return it.Rank }
func itemName(it item) string   { return it.Name }

func TestSortByKeyKindsAndOrders(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var items []item
	for i := range 3000 {
		items = append(items, item{Name: fmt.Sprintf("n%04d", r.IntN(500)), Score: r.NormFloat64() * 100, Rank: int32(r.IntN(200) - 100)})
		if i%500 == 0 {
			items = append(items, item{Name: "", Score: math.Inf(-1), Rank: math.MinInt32}, item{Score: math.Copysign(0, -1)})
		}
	}
	check := func(t *testing.T, got []item, less func(a, b item) int) {
		t.Helper()
		if len(got) != len(items) {
			t.Fatalf("got %d items, want %d", len(got), len(items))
		}
		for i := 1; i < len(got); i++ {
			if less(got[i-1], got[i]) > 0 {
				t.Fatalf("out of order at %d: %+v then %+v", i, got[i-1], got[i])
			}
		}
	}
	cmpF := func(a, b float64) int {
		if a == b {
			return 0
		}
		if a < b {
			return -1
		}
		return 1
	}
	for _, opts := range [][]gale.RunOption{
		{gale.Workers(1)},
		{gale.Workers(3), gale.WorkerMemory(32 << 10)},
	} {
		p := gale.NewPipeline()
		src := gale.FromSlice(p, items)
		byScore := gale.Collect(gale.SortBy(src, itemScore))
		byRankDesc := gale.Collect(gale.SortBy(src, itemRank, gale.Descending()))
		byNameDesc := gale.Collect(gale.SortBy(src, itemName, gale.Descending(), gale.SortPartitions(5)))
		if _, err := gale.Run(context.Background(), p, opts...); err != nil {
			t.Fatal(err)
		}
		check(t, byScore.Values(), func(a, b item) int { return cmpF(a.Score, b.Score) })
		check(t, byRankDesc.Values(), func(a, b item) int { return int(b.Rank) - int(a.Rank) })
		check(t, byNameDesc.Values(), func(a, b item) int {
			if a.Name == b.Name {
				return 0
			}
			if a.Name > b.Name {
				return -1
			}
			return 1
		})
	}
}

// TestSortProperty: any input, partition count and memory budget give the
// sorted input.
func TestSortProperty(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		n := r.IntN(5000)
		var in []string
		for range n {
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(4)) // few distinct bytes: many equal keys and shared prefixes
			}
			in = append(in, string(b))
		}
		want := slices.Clone(in)
		slices.Sort(want)
		p := gale.NewPipeline()
		out := gale.Collect(gale.Sort(gale.FromSlice(p, in), gale.SortPartitions(1+r.IntN(9))))
		mem := int64(1<<10 + r.IntN(64<<10))
		if _, err := gale.Run(context.Background(), p, gale.Workers(1+r.IntN(4)), gale.WorkerMemory(mem)); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !slices.Equal(out.Values(), want) && !(len(want) == 0 && len(out.Values()) == 0) {
			t.Fatalf("seed %d: sorted output differs from the sorted input", seed)
		}
	}
}

func hot(i int64) string { return fmt.Sprintf("hot/prefix/%08d", (i*7919)%100000) }

// TestSortPartitionsAreBalanced: with a hot shared prefix, range partitions
// stay within 2x of the mean.
func TestSortPartitionsAreBalanced(t *testing.T) {
	p := gale.NewPipeline()
	gale.Collect(gale.Sort(gale.Generate(p, 100000, hot), gale.SortPartitions(8)))
	report, err := gale.Run(context.Background(), p, gale.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	last := report.Stages[len(report.Stages)-1]
	var total int64
	for _, row := range last.TaskRows {
		total += row.Metrics.RecordsIn
	}
	mean := float64(total) / float64(len(last.TaskRows))
	for _, row := range last.TaskRows {
		if float64(row.Metrics.RecordsIn) > 2*mean {
			t.Errorf("partition %d holds %d records, more than twice the mean %.0f", row.Task, row.Metrics.RecordsIn, mean)
		}
	}
	if total != 100000 {
		t.Errorf("partitions hold %d records, want 100000", total)
	}
}

// TestSortSamplesByWindows: the sampling stage of a sort over a large text
// input reads windows of it, not all of it, and the split points from that
// sample still balance partitions on clustered, skewed input (the file is
// four sorted runs over different key ranges, half the keys under one
// shared prefix); the output is the independently sorted input.
func TestSortSamplesByWindows(t *testing.T) {
	const lines = 360_000 // 16.5 MiB of 48-byte lines
	var buf []byte
	want := make([]string, 0, lines)
	for i := range lines {
		run, j := i/(lines/4), i%(lines/4)
		var line string
		if j%2 == 0 {
			line = fmt.Sprintf("hot/shared/prefix/%d/%08d/%016d", run, j, i)
		} else {
			line = fmt.Sprintf("k%d/%08d/%035d", run, j*7919%(lines/4), i)
		}
		want = append(want, line)
		buf = append(append(buf, line...), '\n')
	}
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	p := gale.NewPipeline()
	out := gale.Collect(gale.Sort(gale.ReadText(p, path), gale.SortPartitions(8)))
	report, err := gale.Run(context.Background(), p, gale.Workers(2), gale.ChunkSize(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Values(), want) {
		t.Fatal("sorted output differs from the sorted input")
	}
	var sampled int64
	for _, st := range report.Stages {
		if strings.HasPrefix(st.Name, "sampling ") {
			sampled += st.Metrics.ObjectBytesRead
		}
	}
	if sampled == 0 || sampled > int64(len(buf))/4 {
		t.Errorf("the sampling stage read %d of the input's %d bytes, want a few windows (at most a quarter)", sampled, len(buf))
	}
	last := report.Stages[len(report.Stages)-1]
	var total int64
	for _, row := range last.TaskRows {
		total += row.Metrics.RecordsIn
	}
	mean := float64(total) / float64(len(last.TaskRows))
	for _, row := range last.TaskRows {
		if float64(row.Metrics.RecordsIn) > 2*mean {
			t.Errorf("partition %d holds %d records, more than twice the mean %.0f", row.Task, row.Metrics.RecordsIn, mean)
		}
	}
	t.Logf("sampling read %d of %d bytes; %d partitions, mean %.0f records", sampled, len(buf), len(last.TaskRows), mean)
}
