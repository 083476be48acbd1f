// Command sort benchmarks Gale's distributed sort side by side, in one run,
// against GNU sort on the same generated sort-benchmark records (ASCII
// gensort layout: 100-byte lines, so GNU sort orders whole records).
//
// Gale runs on the local backend with every core and a worker memory budget
// of a quarter of the data per task; GNU sort gets the same total memory
// (-S, workers × budget) and --parallel equal to the core count, with
// LC_ALL=C. Both outputs are validated (order, record count and checksum
// against the input). Rounds are interleaved and the median is reported.
// With -big, a second data set (default 4 GiB) is sorted by Gale with
// budgets far below the data size, to show the external merge at scale.
//
//	go run ./bench/sort [-size 1GiB] [-rounds 3] [-big 4GiB] [-out bench/results/sort.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/internal/gensort"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sort:", err)
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
	sizeFlag := flag.String("size", "1GiB", "data size for the side-by-side comparison")
	bigFlag := flag.String("big", "", "also sort this much with Gale alone (e.g. 4GiB)")
	bigMem := flag.String("big-memory", "512MiB", "worker memory budget for the -big run")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "working directory (data is cached here)")
	out := flag.String("out", "bench/results/sort.json", "results file")
	flag.Parse()
	ctx := context.Background()
	if _, err := exec.LookPath("sort"); err != nil {
		return errors.New("GNU sort is not installed (apt-get install coreutils)")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	size, err := humanize.ParseBytes(*sizeFlag)
	if err != nil {
		return err
	}
	cores := runtime.NumCPU()
	count := int64(size) / gensort.RecordSize
	in, sum, err := dataset(ctx, *dir, count)
	if err != nil {
		return err
	}
	bytes := float64(count * gensort.RecordSize)
	budget := int64(bytes / 4)
	totalMem := budget * int64(cores)
	variants := []struct {
		name string
		fn   func(outDir string) (string, error)
	}{
		{fmt.Sprintf("GNU sort --parallel=%d -S %s", cores, humanize.IBytes(uint64(totalMem))), func(o string) (string, error) {
			f := filepath.Join(o, "sorted")
			cmd := exec.Command("sort", fmt.Sprintf("--parallel=%d", cores), "-S", fmt.Sprintf("%dK", totalMem>>10),
				"-T", o, "-o", f, in)
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			if b, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("GNU sort: %v: %s", err, b)
			}
			return f, nil
		}},
		{fmt.Sprintf("gale local, %d workers, %s each", cores, humanize.IBytes(uint64(budget))), func(o string) (string, error) {
			return galeSort(ctx, in, filepath.Join(o, "out"), cores, budget, o)
		}},
	}
	results := make([]result, len(variants))
	for r := 0; r < *rounds; r++ {
		for i, v := range variants {
			o, err := os.MkdirTemp(*dir, "run-")
			if err != nil {
				return err
			}
			runtime.GC()
			start := time.Now()
			path, err := v.fn(o)
			d := time.Since(start).Seconds()
			if err == nil {
				err = validate(ctx, path, count, sum)
			}
			os.RemoveAll(o)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			results[i].Name = v.name
			results[i].Seconds = append(results[i].Seconds, d)
			fmt.Printf("round %d  %-44s %7.2fs  (validated)\n", r+1, v.name, d)
		}
	}
	for i := range results {
		s := slices.Clone(results[i].Seconds)
		slices.Sort(s)
		results[i].Median = s[len(s)/2]
		results[i].MBPerSec = bytes / 1e6 / results[i].Median
	}
	gnu, g := results[0].Median, results[1].Median
	fmt.Printf("\nsort of %s (%d records) on %d cores, median of %d rounds\n", humanize.IBytes(uint64(bytes)), count, cores, *rounds)
	for _, r := range results {
		fmt.Printf("  %-44s %7.2fs  %6.1f MB/s\n", r.Name, r.Median, r.MBPerSec)
	}
	fmt.Printf("\n  GNU sort / gale = %.2fx speed-up (target >= 1.2x)\n", gnu/g)
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "bytes": int64(bytes), "records": count,
		"cores": cores, "rounds": *rounds, "results": results, "gnu_over_gale": gnu / g}

	if *bigFlag != "" {
		bsize, err := humanize.ParseBytes(*bigFlag)
		if err != nil {
			return err
		}
		bmem, err := humanize.ParseBytes(*bigMem)
		if err != nil {
			return err
		}
		bcount := int64(bsize) / gensort.RecordSize
		bin, bsum, err := dataset(ctx, *dir, bcount)
		if err != nil {
			return err
		}
		o, err := os.MkdirTemp(*dir, "big-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(o)
		start := time.Now()
		path, err := galeSort(ctx, bin, filepath.Join(o, "out"), cores, int64(bmem), o)
		d := time.Since(start).Seconds()
		if err == nil {
			err = validate(ctx, path, bcount, bsum)
		}
		if err != nil {
			return fmt.Errorf("big sort: %w", err)
		}
		bb := float64(bcount * gensort.RecordSize)
		fmt.Printf("\nbig: gale sorted %s with %d workers of %s in %.1fs (%.1f MB/s), validated\n",
			humanize.IBytes(uint64(bb)), cores, humanize.IBytes(bmem), d, bb/1e6/d)
		doc["big"] = map[string]any{"bytes": int64(bb), "worker_memory": bmem, "seconds": d, "mb_per_s": bb / 1e6 / d}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// dataset returns a cached ASCII records file of count records and its
// checksum.
func dataset(ctx context.Context, dir string, count int64) (string, gensort.Checksum, error) {
	path := filepath.Join(dir, fmt.Sprintf("records-ascii-%d.dat", count))
	if fi, err := os.Stat(path); err == nil && fi.Size() == count*gensort.RecordSize {
		f, err := os.Open(path)
		if err != nil {
			return "", gensort.Checksum{}, err
		}
		defer f.Close()
		s, err := gensort.Validate(ctx, f)
		if err != nil && !errors.Is(err, gensort.ErrUnordered) {
			return "", gensort.Checksum{}, err
		}
		return path, s.Checksum, nil
	}
	fmt.Printf("generating %d records at %s\n", count, path)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", gensort.Checksum{}, err
	}
	sum, err := gensort.Generate(ctx, f, gensort.Config{Count: count, ASCII: true})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	return path, sum, err
}

func galeSort(ctx context.Context, in, out string, workers int, budget int64, spill string) (string, error) {
	p := gale.NewPipeline()
	if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
		return "", err
	}
	_, err := gale.Run(ctx, p, gale.Workers(workers), gale.WorkerMemory(budget), gale.SpillDir(spill),
		gale.TempStore(spill))
	return out, err
}

// validate checks a sorted file or part directory against the input's
// record count and checksum.
func validate(ctx context.Context, path string, count int64, sum gensort.Checksum) error {
	files := []string{path}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "part-*"))
		slices.Sort(files)
	}
	var parts []gensort.Summary
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		s, err := gensort.Validate(ctx, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		parts = append(parts, s)
	}
	all, err := gensort.Combine(parts...)
	if err != nil {
		return err
	}
	if all.Records != count || all.Checksum != sum {
		return fmt.Errorf("output has %d records checksum %s, input %d records checksum %s", all.Records, all.Checksum, count, sum)
	}
	return nil
}
