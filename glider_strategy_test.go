package gale_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
