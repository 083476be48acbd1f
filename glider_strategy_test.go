package gale_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/gensort"
	"github.com/galeproject/gale/internal/textgen"
)

func partBytes(t *testing.T, dir string) []byte {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	slices.Sort(parts)
	var all []byte
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestGliderShuffleMatchesDataShipping runs word count and sort under both
// shuffle strategies: the outputs are byte-identical, and the glider
// strategy moves and stores far fewer bytes for the combine.
func TestGliderShuffleMatchesDataShipping(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = 2<<20, 11
	if err := textgen.GenerateFile(context.Background(), text, cfg); err != nil {
		t.Fatal(err)
	}
	var recs bytes.Buffer
	if _, err := gensort.Generate(context.Background(), &recs, gensort.Config{Count: 20000, ASCII: true}); err != nil {
		t.Fatal(err)
	}
	recFile := filepath.Join(dir, "recs.dat")
	if err := os.WriteFile(recFile, recs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		wc, sorted []byte
		report     *gale.Report
	}
	run := func(strategy string) outcome {
		var o outcome
		out := filepath.Join(t.TempDir(), "wc")
		p := gale.NewPipeline()
		wordcount.Build(p, []string{text}, out)
		r, err := gale.Run(context.Background(), p, gale.Workers(2), gale.ChunkSize(256<<10), gale.ShuffleStrategy(strategy))
		if err != nil {
			t.Fatalf("%s word count: %v", strategy, err)
		}
		o.wc, o.report = partBytes(t, out), r
		out = filepath.Join(t.TempDir(), "sorted")
		p = gale.NewPipeline()
		if err := gsort.Build(p, gsort.Records, []string{recFile}, out); err != nil {
			t.Fatal(err)
		}
		if _, err := gale.Run(context.Background(), p, gale.Workers(2), gale.ChunkSize(512<<10),
			gale.WorkerMemory(1<<20), gale.ShuffleStrategy(strategy)); err != nil {
			t.Fatalf("%s sort: %v", strategy, err)
		}
		o.sorted = partBytes(t, out)
		return o
	}
	ds, gl := run(gale.DataShipping), run(gale.GliderShuffle)
	if !bytes.Equal(ds.wc, gl.wc) {
		t.Error("word count output differs between strategies")
	}
	if !bytes.Equal(ds.sorted, gl.sorted) || len(gl.sorted) != len(recs.Bytes()) {
		t.Error("sort output differs between strategies")
	}
	if s := gl.report.Shuffles[0]; s.Strategy != "glider" || s.BytesStored >= ds.report.Shuffles[0].BytesStored {
		t.Errorf("glider shuffle %+v should store less than data shipping %+v", s, ds.report.Shuffles[0])
	}
	moved := func(r *gale.Report) int64 {
		m := r.Totals()
		return m.ShuffleBytesWritten + m.ShuffleBytesRead
	}
	t.Logf("word count shuffle bytes moved: data shipping %d, glider %d; stored %d vs %d",
		moved(ds.report), moved(gl.report), ds.report.Shuffles[0].BytesStored, gl.report.Shuffles[0].BytesStored)
	if moved(gl.report) >= moved(ds.report) {
		t.Errorf("glider moved %d shuffle bytes, data shipping %d", moved(gl.report), moved(ds.report))
	}
}

func gliderPair(i int64) gale.KV[int64, int64] {
	return gale.KV[int64, int64]{Key: i % 97, Value: i*7919 - 1<<40}
}

// TestGliderUnliftedSum streams every (key, value) pair of an unlifted
// SumPerKey into merge actions: the sums equal data shipping's and the
// independently computed ones, and the merge actions hold a dictionary of
// the keys instead of every pair.
func TestGliderUnliftedSum(t *testing.T) {
	const n = 50000
	want := map[int64]int64{}
	for i := range int64(n) {
		kv := gliderPair(i)
		want[kv.Key] += kv.Value
	}
	run := func(strategy string) (map[int64]int64, *gale.Report) {
		p := gale.NewPipeline()
		sums := gale.Collect(gale.SumPerKey(gale.Generate(p, n, gliderPair)))
		r, err := gale.Run(context.Background(), p, gale.Workers(2), gale.NoCombinerLifting(), gale.ShuffleStrategy(strategy))
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for _, kv := range sums.Values() {
			got[kv.Key] = kv.Value
		}
		return got, r
	}
	ds, dsr := run(gale.DataShipping)
	gl, glr := run(gale.GliderShuffle)
	if !maps.Equal(ds, want) || !maps.Equal(gl, want) {
		t.Fatalf("sums differ: data shipping %d keys, glider %d keys, want %d", len(ds), len(gl), len(want))
	}
	if glr.Shuffles[0].Strategy != "glider" {
		t.Fatalf("the unlifted sum shipped data: %+v", glr.Shuffles[0])
	}
	t.Logf("stored: data shipping %d bytes, glider %d bytes", dsr.Shuffles[0].BytesStored, glr.Shuffles[0].BytesStored)
	if glr.Shuffles[0].BytesStored*100 > dsr.Shuffles[0].BytesStored {
		t.Errorf("glider stored %d bytes, more than 1%% of data shipping's %d", glr.Shuffles[0].BytesStored, dsr.Shuffles[0].BytesStored)
	}
}

// sortItem makes long records (a padded name), so that few of them fill
// the map tasks' 1 MiB partition chunks.
func sortItem(i int64) item {
	return item{Name: fmt.Sprintf("n%05d%s", (i*7919)%40000, strings.Repeat(".", 100)),
		Score: float64((i*104729)%100003) / 7, Rank: int32((i*31)%2001 - 1000)}
}

// TestGliderSortByMatchesDataShipping sorts keyed records (SortBy, both
// orders; by name the map tasks stream each partition into its sort
// action in more than one chunk while they run, by rank in one): the
// glider strategy gives data shipping's output, ties in the same order.
func TestGliderSortByMatchesDataShipping(t *testing.T) {
	const n = 80_000
	run := func(strategy string) (byName, byRank []item) {
		p := gale.NewPipeline()
		src := gale.Generate(p, n, sortItem)
		names := gale.Collect(gale.SortBy(src, itemName, gale.Descending(), gale.SortPartitions(2)))
		ranks := gale.Collect(gale.SortBy(src, itemRank, gale.SortPartitions(2)))
		r, err := gale.Run(context.Background(), p, gale.Workers(2), gale.ShuffleStrategy(strategy))
		if err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		for _, s := range r.Shuffles {
			if want := map[string]string{gale.DataShipping: "data-shipping", gale.GliderShuffle: "glider"}[strategy]; s.Strategy != want {
				t.Fatalf("%s: shuffle %+v ran as %q", strategy, s, s.Strategy)
			}
		}
		return names.Values(), ranks.Values()
	}
	dsNames, dsRanks := run(gale.DataShipping)
	glNames, glRanks := run(gale.GliderShuffle)
	if len(dsNames) != n || !slices.IsSortedFunc(dsNames, func(a, b item) int { return strings.Compare(b.Name, a.Name) }) {
		t.Fatalf("data shipping: %d items by name, not sorted descending", len(dsNames))
	}
	if !slices.Equal(glNames, dsNames) {
		t.Error("the glider SortBy(name, descending) differs from data shipping's")
	}
	if !slices.Equal(glRanks, dsRanks) {
		t.Error("the glider SortBy(rank) differs from data shipping's")
	}
}
