// Command sort benchmarks Gale's distributed sort side by side, in one run,
// against GNU sort on the same generated sort-benchmark records (ASCII
// gensort layout: 100-byte lines, so GNU sort orders whole records), at
// several sizes so the cost curve shows whether anything grows faster than
// linearly.
//
// Gale runs on the local backend with -workers workers, each with a memory
// budget of a quarter of the data (at most -max-worker-memory); GNU sort
// gets the same total memory (-S, workers × budget), --parallel equal to
// the worker count, and LC_ALL=C. Every run is a child process (Gale's is
// this command re-executed), so its time and peak resident memory are its
// own; children run under nice -n -nice. Both outputs are validated (order,
// record count and checksum against the input). Rounds are interleaved —
// every size and variant once per round — and medians are reported with the
// ratio GNU/Gale, the time per GiB and the machine's load average around
// the runs. With -baseline BIN, Gale as built into BIN (this command built
// from an earlier commit) runs as a third variant, so before and after are
// measured side by side. With -profile DIR, one extra Gale run per size writes CPU and
// allocation profiles to DIR (not timed).
//
//	nice go run ./bench/sort [-sizes 256MiB,1GiB] [-big 4GiB] [-rounds 3] [-baseline BIN] [-profile DIR] [-out bench/results/sort.json]
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
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/bench/internal/sidebyside"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/internal/gensort"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		if err := child(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench/sort child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sort:", err)
		os.Exit(1)
	}
}

type variantResult struct {
	Name      string           `json:"name"`
	Runs      []sidebyside.Run `json:"runs"`
	Median    float64          `json:"median_s"`
	MedianCPU float64          `json:"median_cpu_s"`
	SPerGiB   float64          `json:"s_per_gib"`
	MBPerSec  float64          `json:"mb_per_s"`
	MaxRSSMiB float64          `json:"max_rss_mib"`
}

type sizeResult struct {
	Bytes        int64            `json:"bytes"`
	Records      int64            `json:"records"`
	WorkerMemory int64            `json:"worker_memory"`
	Variants     []*variantResult `json:"variants"`
	GNUOverGale  float64          `json:"gnu_over_gale"`
	// BaselineOverGale compares with -baseline's build.
	BaselineOverGale float64 `json:"baseline_over_gale,omitempty"`
	LoadMin          float64 `json:"load_min"`
	LoadMax          float64 `json:"load_max"`
}

type sizeRun struct {
	res   *sizeResult
	in    string
	sum   gensort.Checksum
	count int64
}

func run() error {
	sizesFlag := flag.String("sizes", "256MiB,1GiB", "data sizes compared side by side (comma-separated)")
	bigFlag := flag.String("big", "", "also compare this size (e.g. 4GiB)")
	maxMem := flag.String("max-worker-memory", "512MiB", "largest Gale worker budget (a quarter of the data below it)")
	workers := flag.Int("workers", runtime.NumCPU(), "Gale workers, and GNU sort's --parallel")
	baseline := flag.String("baseline", "", "also run Gale as built into this binary (this command built from an earlier commit), for before/after in one run")
	rounds := flag.Int("rounds", 3, "interleaved rounds (median reported)")
	niceness := flag.Int("nice", 10, "niceness of the child processes (0: none)")
	profile := flag.String("profile", "", "after the rounds, profile one Gale run per size into this directory")
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
	self, err := sidebyside.Self()
	if err != nil {
		return err
	}
	capMem, err := humanize.ParseBytes(*maxMem)
	if err != nil {
		return err
	}
	names := strings.Split(*sizesFlag, ",")
	if *bigFlag != "" {
		names = append(names, *bigFlag)
	}
	var sizes []*sizeRun
	for _, n := range names {
		b, err := humanize.ParseBytes(strings.TrimSpace(n))
		if err != nil {
			return err
		}
		count := int64(b) / gensort.RecordSize
		in, sum, err := dataset(ctx, *dir, count)
		if err != nil {
			return err
		}
		bytes := count * gensort.RecordSize
		budget := min(bytes/4, int64(capMem))
		sizes = append(sizes, &sizeRun{in: in, sum: sum, count: count, res: &sizeResult{
			Bytes: bytes, Records: count, WorkerMemory: budget,
			Variants: []*variantResult{
				{Name: fmt.Sprintf("GNU sort --parallel=%d -S %s", *workers, humanize.IBytes(uint64(budget)*uint64(*workers)))},
				{Name: fmt.Sprintf("gale local, %d workers of %s", *workers, humanize.IBytes(uint64(budget)))},
			}}})
		if *baseline != "" {
			s := sizes[len(sizes)-1].res
			s.Variants = append(s.Variants, &variantResult{Name: "baseline " + s.Variants[1].Name})
		}
	}
	fmt.Printf("start %s, load %.2f\n", time.Now().UTC().Format(time.RFC3339), sidebyside.Load())
	for r := 0; r < *rounds; r++ {
		for _, s := range sizes {
			budget := s.res.WorkerMemory
			for i, v := range s.res.Variants {
				o, err := os.MkdirTemp(*dir, "run-")
				if err != nil {
					return err
				}
				var res sidebyside.Run
				var path string
				if i == 0 {
					path = filepath.Join(o, "sorted")
					res, err = sidebyside.Exec(*niceness, []string{"LC_ALL=C"}, "sort", fmt.Sprintf("--parallel=%d", *workers),
						"-S", fmt.Sprintf("%dK", budget*int64(*workers)>>10), "-T", o, "-o", path, s.in)
				} else {
					bin := self
					if i == 2 {
						bin = *baseline
					}
					path = filepath.Join(o, "out")
					res, err = sidebyside.Exec(*niceness, nil, bin, galeArgs(s.in, path, o, *workers, budget, "", "")...)
				}
				if err == nil {
					err = validate(ctx, path, s.count, s.sum)
				}
				os.RemoveAll(o)
				if err != nil {
					return fmt.Errorf("%s: %w", v.Name, err)
				}
				v.Runs = append(v.Runs, res)
				fmt.Printf("round %d  %-9s %-40s %7.2fs  cpu %7.2fs  rss %5.0f MiB  load %.1f→%.1f  (validated)\n", r+1,
					humanize.IBytes(uint64(s.res.Bytes)), v.Name, res.Seconds, res.CPUSeconds, res.MaxRSSMiB, res.LoadBefore, res.LoadAfter)
			}
		}
	}
	fmt.Printf("\nsort, %d workers, median of %d interleaved rounds\n", *workers, *rounds)
	fmt.Printf("  %-9s %-40s %8s %8s %9s %8s %8s\n", "size", "variant", "median", "s/GiB", "MB/s", "RSS MiB", "cpu s")
	var all []*sizeResult
	for _, s := range sizes {
		var runs []sidebyside.Run
		for _, v := range s.res.Variants {
			v.Median = sidebyside.Median(v.Runs)
			v.MedianCPU = sidebyside.MedianCPU(v.Runs)
			v.SPerGiB = v.Median / (float64(s.res.Bytes) / (1 << 30))
			v.MBPerSec = float64(s.res.Bytes) / 1e6 / v.Median
			v.MaxRSSMiB = sidebyside.MaxRSS(v.Runs)
			runs = append(runs, v.Runs...)
			fmt.Printf("  %-9s %-40s %7.2fs %8.2f %9.1f %8.0f %8.2f\n", humanize.IBytes(uint64(s.res.Bytes)), v.Name, v.Median, v.SPerGiB, v.MBPerSec, v.MaxRSSMiB, v.MedianCPU)
		}
		s.res.GNUOverGale = s.res.Variants[0].Median / s.res.Variants[1].Median
		s.res.LoadMin, s.res.LoadMax = sidebyside.LoadRange(runs)
		fmt.Printf("  %-9s GNU sort / gale = %.2fx (target >= 1.5x), load average %.1f-%.1f\n",
			humanize.IBytes(uint64(s.res.Bytes)), s.res.GNUOverGale, s.res.LoadMin, s.res.LoadMax)
		fmt.Printf("  %-9s CPU seconds: GNU sort / gale = %.2fx\n", humanize.IBytes(uint64(s.res.Bytes)),
			s.res.Variants[0].MedianCPU/s.res.Variants[1].MedianCPU)
		if len(s.res.Variants) > 2 {
			fmt.Printf("  %-9s CPU seconds: baseline / gale = %.2fx\n", humanize.IBytes(uint64(s.res.Bytes)),
				s.res.Variants[2].MedianCPU/s.res.Variants[1].MedianCPU)
			s.res.BaselineOverGale = s.res.Variants[2].Median / s.res.Variants[1].Median
			fmt.Printf("  %-9s GNU sort / baseline gale = %.2fx; baseline / gale = %.2fx\n", humanize.IBytes(uint64(s.res.Bytes)),
				s.res.Variants[0].Median/s.res.Variants[2].Median, s.res.BaselineOverGale)
		}
		all = append(all, s.res)
	}
	if len(sizes) > 1 {
		first, last := sizes[0].res, sizes[len(sizes)-1].res
		fmt.Printf("\n  gale time per GiB at %s / at %s = %.2fx (target <= 1.2x)\n", humanize.IBytes(uint64(last.Bytes)),
			humanize.IBytes(uint64(first.Bytes)), last.Variants[1].SPerGiB/first.Variants[1].SPerGiB)
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return err
		}
		for _, s := range sizes {
			o, err := os.MkdirTemp(*dir, "prof-")
			if err != nil {
				return err
			}
			base := filepath.Join(*profile, "sort-"+strings.ReplaceAll(humanize.IBytes(uint64(s.res.Bytes)), " ", ""))
			_, err = sidebyside.Exec(*niceness, nil, self, galeArgs(s.in, filepath.Join(o, "out"), o, *workers, s.res.WorkerMemory,
				base+".cpu.pprof", base+".alloc.pprof")...)
			os.RemoveAll(o)
			if err != nil {
				return err
			}
			fmt.Printf("profiles: %s.{cpu,alloc}.pprof\n", base)
		}
	}
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "workers": *workers, "cores": runtime.NumCPU(),
		"rounds": *rounds, "go": runtime.Version(), "sizes": all}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

func galeArgs(in, out, spill string, workers int, budget int64, cpu, mem string) []string {
	return []string{"-child", "-in", in, "-out", out, "-spill", spill, "-workers", strconv.Itoa(workers),
		"-memory", strconv.FormatInt(budget, 10), "-cpuprofile", cpu, "-memprofile", mem}
}

// child sorts one input with Gale on the local backend.
func child(args []string) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	in := fs.String("in", "", "input file")
	out := fs.String("out", "", "output directory")
	spill := fs.String("spill", "", "spill and temporary directory")
	workers := fs.Int("workers", 2, "workers")
	memory := fs.Int64("memory", 256<<20, "worker memory budget in bytes")
	cpu := fs.String("cpuprofile", "", "CPU profile file")
	mem := fs.String("memprofile", "", "allocation profile file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := sidebyside.Profile(*cpu, *mem)
	if err != nil {
		return err
	}
	p := gale.NewPipeline()
	if err := gsort.Build(p, gsort.Records, []string{*in}, *out); err != nil {
		return err
	}
	_, err = gale.Run(context.Background(), p, gale.Workers(*workers), gale.WorkerMemory(*memory),
		gale.SpillDir(*spill), gale.TempStore(*spill))
	if serr := stop(); err == nil {
		err = serr
	}
	return err
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
