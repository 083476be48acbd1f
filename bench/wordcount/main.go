// Command wordcount benchmarks Gale's word count side by side, in one run,
// against hand-written single-goroutine Go word counts on the same
// generated corpus:
//
//   - handwritten: bufio + a Go map, written well (one reused word buffer,
//     a map of counters looked up with m[string(word)], which does not
//     allocate, so only new words allocate) — the loop a careful Go
//     programmer would write, and the baseline the targets refer to;
//   - wordref: Gale's reference counter, a further-optimized loop with its
//     own packed-key hash table — the practical limit for one core;
//   - Gale on the local backend with one worker and with every core.
//
// Runs are interleaved round by round so machine noise hits every variant
// alike; the median of the rounds is reported. Every variant's counts are
// checked against the handwritten loop's. Results print as a table with
// ratios and are written as JSON.
//
//	go run ./bench/wordcount [-size 1GiB] [-rounds 3] [-out bench/results/wordcount.json]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/wordcount:", err)
		os.Exit(1)
	}
}

type result struct {
	Name     string    `json:"name"`
	Seconds  []float64 `json:"seconds"`
	Median   float64   `json:"median_s"`
	MBPerSec float64   `json:"mb_per_s"`
}

func run() error {
	sizeFlag := flag.String("size", "1GiB", "corpus size")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (cached)")
	out := flag.String("out", "bench/results/wordcount.json", "results file")
	flag.Parse()
	size, err := humanize.ParseBytes(*sizeFlag)
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
		fmt.Printf("generating %s corpus at %s\n", humanize.IBytes(size), corpus)
		if err := textgen.GenerateFile(ctx, corpus, cfg); err != nil {
			return err
		}
	}
	cores := runtime.NumCPU()
	var want map[string]int64
	check := func(name string, got map[string]int64) error {
		if want == nil {
			want = got
			return nil
		}
		if len(got) != len(want) {
			return fmt.Errorf("%s: %d distinct words, handwritten found %d", name, len(got), len(want))
		}
		for w, c := range want {
			if got[w] != c {
				return fmt.Errorf("%s: word %q counted %d, handwritten %d", name, w, got[w], c)
			}
		}
		return nil
	}
	galeRun := func(workers int) func() (map[string]int64, error) {
		return func() (map[string]int64, error) {
			tmp, err := os.MkdirTemp(*dir, "out-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			p := gale.NewPipeline()
			wordcount.Build(p, []string{corpus}, filepath.Join(tmp, "out"))
			if _, err := gale.Run(ctx, p, gale.Workers(workers)); err != nil {
				return nil, err
			}
			return wordref.ReadCountDir(filepath.Join(tmp, "out"))
		}
	}
	variants := []struct {
		name string
		fn   func() (map[string]int64, error)
	}{
		{"handwritten (bufio + map, 1 goroutine)", func() (map[string]int64, error) { return countFile(corpus, handwritten) }},
		{"wordref (packed-key table, 1 goroutine)", func() (map[string]int64, error) { return countFile(corpus, wordref.Count) }},
		{"gale local, 1 worker", galeRun(1)},
		{fmt.Sprintf("gale local, %d workers", cores), galeRun(cores)},
	}
	results := make([]result, len(variants))
	for r := 0; r < *rounds; r++ {
		for i, v := range variants {
			runtime.GC()
			start := time.Now()
			got, err := v.fn()
			d := time.Since(start).Seconds()
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			if err := check(v.name, got); err != nil {
				return err
			}
			results[i].Name = v.name
			results[i].Seconds = append(results[i].Seconds, d)
			fmt.Printf("round %d  %-42s %7.3fs\n", r+1, v.name, d)
		}
	}
	for i := range results {
		s := slices.Clone(results[i].Seconds)
		slices.Sort(s)
		results[i].Median = s[len(s)/2]
		results[i].MBPerSec = float64(size) / 1e6 / results[i].Median
	}
	hw, ref, g1, gn := results[0].Median, results[1].Median, results[2].Median, results[3].Median
	fmt.Printf("\nword count of %s on %d cores, median of %d rounds\n", humanize.IBytes(size), cores, *rounds)
	for _, r := range results {
		fmt.Printf("  %-42s %7.3fs  %6.1f MB/s\n", r.Name, r.Median, r.MBPerSec)
	}
	ratios := map[string]float64{
		"gale_1_worker_over_handwritten":    g1 / hw,
		"handwritten_over_gale_all_cores":   hw / gn,
		"gale_1_worker_over_wordref":        g1 / ref,
		"wordref_over_gale_all_cores":       ref / gn,
		"gale_1_worker_over_gale_all_cores": g1 / gn,
	}
	fmt.Printf("\n  gale 1 worker / handwritten      = %.2fx time  (target <= 1.3x)\n", g1/hw)
	fmt.Printf("  handwritten / gale %d workers     = %.2fx speed-up (target >= 1.6x)\n", cores, hw/gn)
	fmt.Printf("  gale 1 worker / wordref          = %.2fx time\n", g1/ref)
	fmt.Printf("  wordref / gale %d workers         = %.2fx speed-up\n", cores, ref/gn)
	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "corpus_bytes": size, "cores": cores,
		"rounds": *rounds, "go": runtime.Version(), "results": results, "ratios": ratios,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

func countFile(path string, count func(io.Reader) (map[string]int64, error)) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return count(f)
}

// handwritten is the plain Go word count: read lines with bufio, split them
// into runs of letters and digits, lowercase into a reused buffer, and count
// in a map of counters. A lookup m[string(buf)] does not allocate (m[k]++
// would: it may insert), so only new words allocate.
func handwritten(r io.Reader) (map[string]int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	ptrs := make(map[string]*int64)
	count := func(w []byte) {
		if p := ptrs[string(w)]; p != nil {
			*p++
			return
		}
		n := int64(1)
		ptrs[string(w)] = &n
	}
	word := make([]byte, 0, 64)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line is processed in pieces; words across pieces continue below
		}
		for i := 0; i < len(line); {
			c := line[i]
			var r rune
			size := 1
			if c < utf8.RuneSelf {
				r = rune(c)
			} else {
				r, size = utf8.DecodeRune(line[i:])
			}
			i += size
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				word = utf8.AppendRune(word, unicode.ToLower(r))
				continue
			}
			if len(word) > 0 {
				count(word)
				word = word[:0]
			}
		}
		if err == io.EOF {
			if len(word) > 0 {
				count(word)
			}
			counts := make(map[string]int64, len(ptrs))
			for w, p := range ptrs {
				counts[w] = *p
			}
			return counts, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
