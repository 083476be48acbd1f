package gale_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// TestCoalescedShuffleReads runs a word count (every value shuffled) and
// a sort of 200 map tasks into 200 partitions twice: with every
// (map output, partition) read on its own, 40,000 ranged reads per
// shuffle, and with reads bounded at a tenth of that, where each reduce
// task reads 10 contiguous partitions of every map output in one
// request. The results must be identical and the shuffle reads at most
// 10% of M×N.
func TestCoalescedShuffleReads(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var text strings.Builder
	for i := 0; text.Len() < 200*600-40; i++ {
		fmt.Fprintf(&text, "w%04d line %d\n", (i*7919)%1000, i)
	}
	if err := os.WriteFile(in, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const m, n = 200, 200
	type result struct {
		counts map[string]int64
		sorted []string
		report *gale.Report
	}
	do := func(maxReads int64) result {
		p := gale.NewPipeline()
		lines := gale.ReadText(p, in)
		words := gale.FlatMap(lines, coalesceFirstWord)
		groups := gale.Collect(gale.GroupByKey(gale.KeyBy(words, coalesceIdentity)))
		sorted := gale.Collect(gale.Sort(lines))
		r := run(t, p, gale.Workers(2), gale.ChunkSize(600), gale.Partitions(n), gale.MaxShuffleReads(maxReads))
		res := result{counts: map[string]int64{}, sorted: sorted.Values(), report: r}
		for _, g := range groups.Values() {
			res.counts[g.Key] += int64(len(g.Value))
		}
		return res
	}
	flat, coalesced := do(-1), do(m*n/10)
	if len(flat.counts) != 1000 {
		t.Fatalf("flat word count found %d words, want 1000", len(flat.counts))
	}
	for w, c := range flat.counts {
		if coalesced.counts[w] != c {
			t.Errorf("word %s: %d coalesced, %d flat", w, coalesced.counts[w], c)
		}
	}
	if len(coalesced.counts) != len(flat.counts) {
		t.Errorf("%d words coalesced, %d flat", len(coalesced.counts), len(flat.counts))
	}
	want := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
	slices.Sort(want)
	if !slices.Equal(flat.sorted, want) || !slices.Equal(coalesced.sorted, want) {
		t.Errorf("sorted lines differ: flat %d, coalesced %d, want %d", len(flat.sorted), len(coalesced.sorted), len(want))
	}
	for _, sh := range coalesced.report.Shuffles {
		if sh.Partitions != n || sh.ReadRun != 10 {
			t.Errorf("coalesced shuffle %d: %d partitions read %d at a time, want %d read 10 at a time", sh.ID, sh.Partitions, sh.ReadRun, n)
		}
	}
	// The reduce stages' shuffle GETs are their ranged reads.
	reads := func(r *gale.Report) (reduce []int64) {
		for _, st := range r.Stages {
			if st.Metrics.ShuffleBytesRead > 0 && st.Metrics.ShuffleBytesWritten == 0 {
				reduce = append(reduce, st.Metrics.ShuffleGets)
			}
		}
		return reduce
	}
	fr, cr := reads(flat.report), reads(coalesced.report)
	if len(fr) != 2 || len(cr) != 2 {
		t.Fatalf("reduce stages' requests: flat %v, coalesced %v; want two stages each", fr, cr)
	}
	for i := range cr {
		if cr[i] > m*n/10 {
			t.Errorf("coalesced reduce stage %d: %d shuffle reads, more than 10%% of %d×%d", i, cr[i], m, n)
		}
		t.Logf("reduce stage %d: %d shuffle reads flat, %d coalesced (M×N = %d)", i, fr[i], cr[i], m*n)
	}
}

func coalesceFirstWord(line string, emit func(string)) { emit(strings.Fields(line)[0]) }

func coalesceIdentity(w string) string { return w }
