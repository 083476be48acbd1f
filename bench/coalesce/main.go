// Command coalesce measures coalesced shuffle reads (issue #22) side by
// side in one run: the same word count over one generated corpus, cut
// into M map tasks (ChunkSize) shuffling into N partitions (Partitions),
// once with every (map output, partition) read on its own (M×N ranged
// reads, gale.MaxShuffleReads(-1)) and once with reads bounded at a
// tenth of that (each reduce task reads a run of contiguous partitions
// of every map output in one request). It prints wall time and the
// requests of each stage from the job reports, and checks both counts
// identical. Rounds are interleaved; medians are reported.
//
//	go run ./bench/coalesce [-size 16MiB] [-chunk 16KiB] [-partitions 1000] [-rounds 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/coalesce:", err)
		os.Exit(1)
	}
}

type stat struct {
	secs                  []float64
	maps, reduce          int
	shuffleReads, allReqs int64
}

func run() error {
	sizeFlag := flag.String("size", "16MiB", "corpus size")
	chunkFlag := flag.String("chunk", "16KiB", "text chunk per map task")
	parts := flag.Int("partitions", 1000, "shuffle partitions")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (cached)")
	flag.Parse()
	size, err := humanize.ParseBytes(*sizeFlag)
	if err != nil {
		return err
	}
	chunk, err := humanize.ParseBytes(*chunkFlag)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg := textgen.DefaultConfig()
	cfg.Size = int64(size)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	corpus := filepath.Join(*dir, fmt.Sprintf("corpus-%d-%d.txt", cfg.Seed, cfg.Size))
	if fi, err := os.Stat(corpus); err != nil || fi.Size() != cfg.Size {
		if err := textgen.GenerateFile(ctx, corpus, cfg); err != nil {
			return err
		}
	}
	m := (int64(size) + int64(chunk) - 1) / int64(chunk)
	variants := []struct {
		name     string
		maxReads int64
	}{
		{"flat (M×N reads)", -1},
		{"coalesced (≤ 10% of M×N)", m * int64(*parts) / 10},
	}
	stats := make([]stat, len(variants))
	var want map[string]int64
	for r := 1; r <= *rounds; r++ {
		for i, v := range variants {
			tmp, err := os.MkdirTemp(*dir, "out-")
			if err != nil {
				return err
			}
			p := gale.NewPipeline()
			wordcount.Build(p, []string{corpus}, filepath.Join(tmp, "out"))
			start := time.Now()
			rep, err := gale.Run(ctx, p, gale.Workers(2), gale.ChunkSize(int64(chunk)), gale.Partitions(*parts),
				gale.MaxShuffleReads(v.maxReads))
			secs := time.Since(start).Seconds()
			if err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("%s: %w", v.name, err)
			}
			got, err := wordref.ReadCountDir(filepath.Join(tmp, "out"))
			os.RemoveAll(tmp)
			if err != nil {
				return err
			}
			if want == nil {
				want = got
			} else if len(got) != len(want) {
				return fmt.Errorf("%s: %d words, the first run %d", v.name, len(got), len(want))
			} else {
				for w, c := range want {
					if got[w] != c {
						return fmt.Errorf("%s: %q counted %d, the first run %d", v.name, w, got[w], c)
					}
				}
			}
			s := &stats[i]
			s.secs = append(s.secs, secs)
			s.maps, s.reduce = rep.Stages[0].Tasks, rep.Stages[len(rep.Stages)-1].Tasks
			s.shuffleReads = rep.Stages[len(rep.Stages)-1].Metrics.ShuffleGets
			s.allReqs = rep.Totals().Requests
			fmt.Printf("round %d  %-26s %7.2fs  %d map x %d reduce tasks, %d shuffle reads, %d requests in all\n",
				r, v.name, secs, s.maps, s.reduce, s.shuffleReads, s.allReqs)
		}
	}
	fmt.Printf("\nword count of %s in %s chunks into %d partitions, 2 workers, median of %d rounds (counts identical)\n",
		humanize.IBytes(size), humanize.IBytes(chunk), *parts, *rounds)
	for i, v := range variants {
		s := stats[i]
		slices.Sort(s.secs)
		fmt.Printf("  %-26s %7.2fs  %5d reduce tasks  %8d shuffle reads (%.1f%% of M×N = %d)  %8d requests\n",
			v.name, s.secs[len(s.secs)/2], s.reduce, s.shuffleReads,
			100*float64(s.shuffleReads)/float64(int64(s.maps)*int64(*parts)), int64(s.maps)*int64(*parts), s.allReqs)
	}
	return nil
}
