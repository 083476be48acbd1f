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
// alike; the median of the rounds is reported, with the time per GiB so
// the cost curve across sizes shows. Every variant's counts are checked
// against the handwritten loop's. Results print as a table with ratios and
// are written as JSON.
//
// Every run is a child process (this command re-executed) under nice -n
// -nice, so its time and peak resident memory are its own; the load average
// around each run is recorded beside it. Sizes are interleaved within each
// round. With -baseline BIN, the Gale variants also run as built into BIN
// (this command built from an earlier commit), so before and after are
// measured side by side. With -profile DIR, one extra run of each Gale variant per size
// writes CPU and allocation profiles to DIR (not timed).
//
//	nice go run ./bench/wordcount [-sizes 256MiB,1GiB] [-rounds 3] [-baseline BIN] [-profile DIR] [-out bench/results/wordcount.json]
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
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/bench/internal/sidebyside"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		if err := child(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench/wordcount child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/wordcount:", err)
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
	Bytes    int64              `json:"bytes"`
	Variants []*variantResult   `json:"variants"`
	Ratios   map[string]float64 `json:"ratios"`
	LoadMin  float64            `json:"load_min"`
	LoadMax  float64            `json:"load_max"`
	corpus   string
}

// variant is a child mode; baseline ones run -baseline's binary.
type variant struct {
	mode, name string
	baseline   bool
}

// variants are the child modes, in the order they run within a round.
var variants = []variant{
	{"handwritten", "handwritten (bufio + map, 1 goroutine)", false},
	{"wordref", "wordref (packed-key table, 1 goroutine)", false},
	{"gale1", "gale local, 1 worker", false},
	{"galeN", "gale local, %d workers", false},
}

func run() error {
	sizesFlag := flag.String("sizes", "256MiB,1GiB", "corpus sizes (comma-separated)")
	rounds := flag.Int("rounds", 3, "interleaved rounds (median reported)")
	workers := flag.Int("workers", runtime.NumCPU(), "workers of the many-worker Gale variant")
	baseline := flag.String("baseline", "", "also run the Gale variants as built into this binary (this command built from an earlier commit), for before/after in one run")
	niceness := flag.Int("nice", 10, "niceness of the child processes (0: none)")
	profile := flag.String("profile", "", "after the rounds, profile one run of each Gale variant per size into this directory")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (cached)")
	out := flag.String("out", "bench/results/wordcount.json", "results file")
	flag.Parse()
	ctx := context.Background()
	self, err := sidebyside.Self()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if *baseline != "" {
		variants = append(variants, variant{"gale1", "baseline gale local, 1 worker", true},
			variant{"galeN", "baseline gale local, %d workers", true})
	}
	var sizes []*sizeResult
	for _, n := range strings.Split(*sizesFlag, ",") {
		size, err := humanize.ParseBytes(strings.TrimSpace(n))
		if err != nil {
			return err
		}
		cfg := textgen.DefaultConfig()
		cfg.Size = int64(size)
		corpus := filepath.Join(*dir, fmt.Sprintf("corpus-%d-%d.txt", cfg.Seed, cfg.Size))
		if fi, err := os.Stat(corpus); err != nil || fi.Size() != cfg.Size {
			fmt.Printf("generating %s corpus at %s\n", humanize.IBytes(size), corpus)
			if err := textgen.GenerateFile(ctx, corpus, cfg); err != nil {
				return err
			}
		}
		s := &sizeResult{Bytes: int64(size), corpus: corpus}
		for _, v := range variants {
			name := v.name
			if strings.Contains(name, "%d") {
				name = fmt.Sprintf(name, *workers)
			}
			s.Variants = append(s.Variants, &variantResult{Name: name})
		}
		sizes = append(sizes, s)
	}
	childArgs := func(mode, corpus, outDir, cpu, mem string) []string {
		return []string{"-child", "-mode", mode, "-in", corpus, "-out", outDir, "-workers", strconv.Itoa(*workers),
			"-cpuprofile", cpu, "-memprofile", mem}
	}
	fmt.Printf("start %s, load %.2f\n", time.Now().UTC().Format(time.RFC3339), sidebyside.Load())
	for r := 0; r < *rounds; r++ {
		for _, s := range sizes {
			var want map[string]int64
			for i, v := range variants {
				tmp, err := os.MkdirTemp(*dir, "out-")
				if err != nil {
					return err
				}
				o := filepath.Join(tmp, "out")
				bin := self
				if v.baseline {
					bin = *baseline
				}
				res, err := sidebyside.Exec(*niceness, nil, bin, childArgs(v.mode, s.corpus, o, "", "")...)
				var got map[string]int64
				if err == nil {
					got, err = wordref.ReadCountDir(o)
				}
				os.RemoveAll(tmp)
				if err != nil {
					return fmt.Errorf("%s: %w", s.Variants[i].Name, err)
				}
				if want == nil {
					want = got
				} else if err := wordref.Diff(got, want); err != nil {
					return fmt.Errorf("%s differs from %s: %w", s.Variants[i].Name, s.Variants[0].Name, err)
				}
				s.Variants[i].Runs = append(s.Variants[i].Runs, res)
				fmt.Printf("round %d  %-9s %-42s %7.2fs  cpu %7.2fs  rss %5.0f MiB  load %.1f→%.1f\n", r+1,
					humanize.IBytes(uint64(s.Bytes)), s.Variants[i].Name, res.Seconds, res.CPUSeconds, res.MaxRSSMiB, res.LoadBefore, res.LoadAfter)
			}
		}
	}
	fmt.Printf("\nword count, median of %d interleaved rounds (counts checked against the handwritten loop)\n", *rounds)
	fmt.Printf("  %-9s %-42s %8s %8s %9s %8s %8s\n", "size", "variant", "median", "s/GiB", "MB/s", "RSS MiB", "cpu s")
	for _, s := range sizes {
		var runs []sidebyside.Run
		for _, v := range s.Variants {
			v.Median = sidebyside.Median(v.Runs)
			v.MedianCPU = sidebyside.MedianCPU(v.Runs)
			v.SPerGiB = v.Median / (float64(s.Bytes) / (1 << 30))
			v.MBPerSec = float64(s.Bytes) / 1e6 / v.Median
			v.MaxRSSMiB = sidebyside.MaxRSS(v.Runs)
			runs = append(runs, v.Runs...)
			fmt.Printf("  %-9s %-42s %7.2fs %8.2f %9.1f %8.0f %8.2f\n", humanize.IBytes(uint64(s.Bytes)), v.Name, v.Median, v.SPerGiB, v.MBPerSec, v.MaxRSSMiB, v.MedianCPU)
		}
		s.LoadMin, s.LoadMax = sidebyside.LoadRange(runs)
		hw, ref, g1, gn := s.Variants[0].Median, s.Variants[1].Median, s.Variants[2].Median, s.Variants[3].Median
		s.Ratios = map[string]float64{
			"gale_1_worker_over_handwritten":  g1 / hw,
			"handwritten_over_gale_n_workers": hw / gn,
			"gale_1_worker_over_wordref":      g1 / ref,
			"wordref_over_gale_n_workers":     ref / gn,
		}
		c := func(i int) float64 { return s.Variants[i].MedianCPU }
		s.Ratios["cpu_gale_1_worker_over_wordref"] = c(2) / c(1)
		s.Ratios["cpu_gale_n_workers_over_wordref"] = c(3) / c(1)
		fmt.Printf("  %-9s CPU seconds over wordref's: gale 1 worker %.2fx, gale %d workers %.2fx\n",
			humanize.IBytes(uint64(s.Bytes)), c(2)/c(1), *workers, c(3)/c(1))
		if len(s.Variants) > 5 {
			s.Ratios["cpu_baseline_1_worker_over_wordref"] = c(4) / c(1)
			s.Ratios["cpu_baseline_n_workers_over_wordref"] = c(5) / c(1)
			fmt.Printf("  %-9s CPU seconds over wordref's: baseline 1 worker %.2fx, baseline %d workers %.2fx\n",
				humanize.IBytes(uint64(s.Bytes)), c(4)/c(1), *workers, c(5)/c(1))
			b1, bn := s.Variants[4].Median, s.Variants[5].Median
			s.Ratios["baseline_1_worker_over_wordref"] = b1 / ref
			s.Ratios["wordref_over_baseline_n_workers"] = ref / bn
			s.Ratios["baseline_over_gale_1_worker"] = b1 / g1
			s.Ratios["baseline_over_gale_n_workers"] = bn / gn
			fmt.Printf("  %-9s baseline: 1 worker / wordref = %.2fx, wordref / %d workers = %.2fx; baseline / gale = %.2fx (1 worker), %.2fx (%d workers)\n",
				humanize.IBytes(uint64(s.Bytes)), b1/ref, *workers, ref/bn, b1/g1, bn/gn, *workers)
		}
		fmt.Printf("  %-9s gale 1 worker / wordref = %.2fx time (target <= 1.3x); wordref / gale %d workers = %.2fx speed-up (target >= 1.6x); load average %.1f-%.1f\n",
			humanize.IBytes(uint64(s.Bytes)), g1/ref, *workers, ref/gn, s.LoadMin, s.LoadMax)
	}
	if len(sizes) > 1 {
		first, last := sizes[0], sizes[len(sizes)-1]
		for i := 2; i < 4; i++ {
			fmt.Printf("  %s: time per GiB at %s / at %s = %.2fx (target <= 1.2x)\n", first.Variants[i].Name,
				humanize.IBytes(uint64(last.Bytes)), humanize.IBytes(uint64(first.Bytes)), last.Variants[i].SPerGiB/first.Variants[i].SPerGiB)
		}
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return err
		}
		for _, s := range sizes {
			for _, mode := range []string{"gale1", "galeN"} {
				tmp, err := os.MkdirTemp(*dir, "prof-")
				if err != nil {
					return err
				}
				base := filepath.Join(*profile, fmt.Sprintf("wordcount-%s-%s", strings.ReplaceAll(humanize.IBytes(uint64(s.Bytes)), " ", ""), mode))
				_, err = sidebyside.Exec(*niceness, nil, self, childArgs(mode, s.corpus, filepath.Join(tmp, "out"), base+".cpu.pprof", base+".alloc.pprof")...)
				os.RemoveAll(tmp)
				if err != nil {
					return err
				}
				fmt.Printf("profiles: %s.{cpu,alloc}.pprof\n", base)
			}
		}
	}
	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "cores": runtime.NumCPU(), "workers": *workers,
		"rounds": *rounds, "go": runtime.Version(), "sizes": sizes,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// child runs one variant over one corpus and writes its counts as a part
// file under -out, so the parent compares every variant's counts alike.
func child(args []string) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	mode := fs.String("mode", "", "handwritten, wordref, gale1 or galeN")
	in := fs.String("in", "", "corpus")
	out := fs.String("out", "", "output directory")
	workers := fs.Int("workers", 2, "workers of galeN")
	cpu := fs.String("cpuprofile", "", "CPU profile file")
	mem := fs.String("memprofile", "", "allocation profile file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := sidebyside.Profile(*cpu, *mem)
	if err != nil {
		return err
	}
	var counts map[string]int64
	switch *mode {
	case "handwritten":
		counts, err = countFile(*in, handwritten)
	case "wordref":
		counts, err = countFile(*in, wordref.Count)
	case "gale1", "galeN":
		n := 1
		if *mode == "galeN" {
			n = *workers
		}
		p := gale.NewPipeline()
		wordcount.Build(p, []string{*in}, *out)
		_, err = gale.Run(context.Background(), p, gale.Workers(n))
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil || counts == nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(*out, "part-00000"))
	if err != nil {
		return err
	}
	if err := wordref.WriteSorted(f, counts); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
