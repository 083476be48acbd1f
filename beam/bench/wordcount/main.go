// Command wordcount benchmarks Apache Beam's Go wordcount on Gale against
// Beam's own local runner, Prism, and against Gale's native word count, in
// one run over the same generated corpus:
//
//   - prism: Beam's wordcount (beam/examples/wordcount) with --runner=prism;
//   - gale: the same pipeline with --runner=gale on the process backend
//     (worker processes of this binary);
//   - native: the same word count written with Gale's own API
//     (gale.ReadText, FlatMap, CountPerElement, WriteText) on the process
//     backend, with a tokenizer that finds exactly the words of Beam's
//     ExtractFn (the regular expression [a-zA-Z]+('[a-z])?, case kept), so
//     that its output can be compared with the Beam runs'.
//
// The corpus is Gale's generated text (internal/textgen, seed 1, the
// corpus of `gale gen text`), written once to -dir and reused. Every run's
// output is checked: Prism's and Gale's "word: count" files must hold the
// same lines, and the native counts must equal them. Each run is a child
// process of this program, so its CPU time (with its worker processes')
// and peak memory are measured on their own, and a run that fails is
// reported without losing the others: Prism keeps every partial
// accumulator in memory (14 GiB at 256 MiB), so on a 23 GiB machine the
// kernel kills it at 1 GiB. The times, CPU times, peak memory and the ratios
// Prism/Gale print as a table and are written as JSON.
//
//	go run ./beam/bench/wordcount                      # 1 GiB, all three runs
//	go run ./beam/bench/wordcount -size 64MiB
//	go run ./beam/bench/wordcount -runs gale,native    # leave Prism out
//
// The program serves Gale's worker processes itself (beam.Init), so it must
// be built unstripped, as `go run` and `go build` do by default.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/beam/examples/wordcount"
	_ "github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/internal/textgen"
)

func init() {
	gale.Register("beambench.Words", Words)
	// Building the native pipeline registers the kernels of its generic
	// transforms (CountPerElement[string], ...). Worker processes serve
	// tasks from beam.Init and never reach runNative, so build it here,
	// in every process.
	nativePipeline("corpus.txt", "out")
}

// nativePipeline is the word count in Gale's own API.
func nativePipeline(corpus, output string) *gale.Pipeline {
	p := gale.NewPipeline()
	gale.WriteText(gale.CountPerElement(gale.FlatMap(gale.ReadText(p, corpus), Words)), output)
	return p
}

func main() {
	// Beam's and the runner's flags are package-level flags of this
	// program; beam.Init parses nothing, so parse first.
	sizeFlag := flag.String("size", "1GiB", "corpus size")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (and reused) and outputs are written")
	runs := flag.String("runs", "prism,gale,native", "comma-separated runs, in order: prism, gale (process backend), gale-local, native")
	out := flag.String("out", "", "write the results as JSON to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of each run's process to this file name plus \".\" and the run's name "+
		"(the gale-local profile holds the tasks too; gale's tasks run in worker processes)")
	child := flag.String("child", "", "internal: run only this run, in this process")
	corpus := flag.String("corpus", "", "internal: the corpus of a -child run")
	output := flag.String("output", "", "internal: the output of a -child run")
	flag.Parse()
	beam.Init() // in a Gale worker process, serves tasks and exits
	var err error
	if *child != "" {
		err = runChild(context.Background(), *child, *corpus, *output, *cpuprofile)
	} else {
		err = run(*sizeFlag, *dir, *runs, *out, *cpuprofile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "beam/bench/wordcount:", err)
		os.Exit(1)
	}
}

// result is one run's outcome.
type result struct {
	Name string `json:"name"`
	// Failed says how the run's process ended when it did not succeed.
	Failed  string  `json:"failed,omitempty"`
	Seconds float64 `json:"seconds"`
	// CPUSeconds is the user and system time of the run's process and of
	// the worker processes it started.
	CPUSeconds float64 `json:"cpu_seconds"`
	// PeakRSS is the largest resident set, in bytes, of the run's process
	// or of one of its worker processes.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Load is the machine's 1-minute load average at the end of the run
	// (other processes compete for the cores).
	Load  string `json:"load"`
	Words int    `json:"distinct_words,omitempty"`
}

// loadAverage returns the 1-minute load average, or "" where unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b))[0]
}

// runChild runs one run in this process and writes its output.
func runChild(ctx context.Context, name, corpus, output, cpuprofile string) error {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile + "." + name)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if name == "native" {
		return runNative(ctx, corpus, output)
	}
	return runBeam(ctx, name, corpus, output)
}

func run(sizeFlag, dir, runList, out, cpuprofile string) error {
	size, err := humanize.ParseBytes(sizeFlag)
	if err != nil {
		return fmt.Errorf("-size %q: %w", sizeFlag, err)
	}
	names := strings.Split(runList, ",")
	for _, n := range names {
		if !slices.Contains([]string{"prism", "gale", "gale-local", "native"}, n) {
			return fmt.Errorf("-runs: unknown run %q; use prism, gale, gale-local or native", n)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := textgen.DefaultConfig()
	cfg.Size = int64(size)
	corpus := filepath.Join(dir, fmt.Sprintf("corpus-%d-%d.txt", cfg.Seed, cfg.Size))
	if fi, err := os.Stat(corpus); err != nil || fi.Size() != cfg.Size {
		fmt.Printf("generating a %s corpus at %s\n", humanize.IBytes(size), corpus)
		if err := textgen.GenerateFile(ctx, corpus, cfg); err != nil {
			return err
		}
	}
	outDir, err := os.MkdirTemp(dir, "out-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(outDir)

	var ref map[string]int64 // the first successful run's counts
	var refLines []string    // the first successful Beam run's sorted output lines
	var refName string
	var results []result
	for i, name := range names {
		output := filepath.Join(outDir, fmt.Sprintf("%d-%s", i, name))
		args := []string{"-child", name, "-corpus", corpus, "-output", output}
		if cpuprofile != "" {
			args = append(args, "-cpuprofile", cpuprofile)
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		fmt.Printf("running %s on %s ...\n", name, humanize.IBytes(size))
		start := time.Now()
		runErr := cmd.Run()
		r := result{Name: name, Seconds: time.Since(start).Seconds(), Load: loadAverage()}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
			r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
			r.PeakRSS = ru.Maxrss << 10 // KiB on Linux
		}
		if runErr != nil {
			r.Failed = runErr.Error()
			fmt.Printf("%-12s FAILED after %.1f s (%s), peak RSS %s\n", name, r.Seconds, r.Failed, humanize.IBytes(uint64(r.PeakRSS)))
			results = append(results, r)
			continue
		}
		var counts map[string]int64
		var lines []string
		if name == "native" {
			counts, err = readNative(output)
		} else {
			lines, err = readBeam(output)
			if err == nil {
				counts, err = parseBeam(lines)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.Words = len(counts)
		fmt.Printf("%-12s %8.1f s  cpu %8.1f s  peak RSS %s  load %s  %d distinct words\n",
			name, r.Seconds, r.CPUSeconds, humanize.IBytes(uint64(r.PeakRSS)), r.Load, len(counts))
		if lines != nil {
			if refLines == nil {
				refLines = lines
			} else if !slices.Equal(lines, refLines) {
				return fmt.Errorf("%s: output lines differ from the first Beam run's", name)
			}
		}
		if ref == nil {
			ref, refName = counts, name
		} else if err := sameCounts(counts, ref); err != nil {
			return fmt.Errorf("%s differs from %s: %w", name, refName, err)
		}
		results = append(results, r)
	}

	fmt.Printf("\nBeam wordcount on a %s generated corpus, %d cores; the outputs of all successful runs are identical (%d distinct words)\n",
		humanize.IBytes(size), runtime.NumCPU(), len(ref))
	ok := map[string]result{}
	for _, r := range results {
		if r.Failed != "" {
			fmt.Printf("  %-12s failed after %.1f s: %s (peak RSS %s)\n", r.Name, r.Seconds, r.Failed, humanize.IBytes(uint64(r.PeakRSS)))
			continue
		}
		ok[r.Name] = r
		fmt.Printf("  %-12s %8.1f s  %7.1f MB/s  cpu %8.1f s  peak RSS %9s  load at end %s\n", r.Name, r.Seconds,
			float64(size)/1e6/r.Seconds, r.CPUSeconds, humanize.IBytes(uint64(r.PeakRSS)), r.Load)
	}
	ratios := map[string]float64{}
	if p, found := ok["prism"]; found {
		for _, n := range []string{"gale", "gale-local", "native"} {
			if g, found := ok[n]; found {
				ratios["prism/"+n] = p.Seconds / g.Seconds
				ratios["cpu prism/"+n] = p.CPUSeconds / g.CPUSeconds
				fmt.Printf("  prism / %-12s = %.2fx time, %.2fx cpu\n", n, p.Seconds/g.Seconds, p.CPUSeconds/g.CPUSeconds)
			}
		}
	}
	if g, found := ok["gale"]; found {
		if n, found := ok["native"]; found {
			ratios["gale/native"] = g.Seconds / n.Seconds
			fmt.Printf("  gale / native        = %.2fx time\n", g.Seconds/n.Seconds)
		}
	}
	if out == "" {
		return nil
	}
	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "corpus_bytes": size, "cores": runtime.NumCPU(),
		"go": runtime.Version(), "results": results, "ratios": ratios,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// readBeam returns the lines of a Beam wordcount output file, sorted.
func readBeam(output string) ([]string, error) {
	b, err := os.ReadFile(output)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(lines)
	return lines, nil
}

// runBeam runs Beam's wordcount on the named runner.
func runBeam(ctx context.Context, name, corpus, output string) error {
	runner, backend := name, ""
	switch name {
	case "gale":
		runner, backend = "gale", "process"
	case "gale-local":
		runner, backend = "gale", "local"
	}
	if err := flag.Set("runner", runner); err != nil {
		return err
	}
	if backend != "" {
		if err := flag.Set("gale_backend", backend); err != nil {
			return err
		}
	}
	p, s := beam.NewPipelineWithRoot()
	wordcount.Build(s, corpus, output)
	return beamx.Run(ctx, p)
}

// parseBeam parses Beam wordcount's "word: count" lines.
func parseBeam(lines []string) (map[string]int64, error) {
	m := make(map[string]int64, len(lines))
	for _, l := range lines {
		w, c, ok := strings.Cut(l, ": ")
		n, err := strconv.ParseInt(c, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad output line %q", l)
		}
		if _, dup := m[w]; dup {
			return nil, fmt.Errorf("word %q appears twice in the output", w)
		}
		m[w] = n
	}
	return m, nil
}

// runNative runs the word count with Gale's own API on the process
// backend.
func runNative(ctx context.Context, corpus, output string) error {
	b, err := process.New(process.DefaultConfig())
	if err != nil {
		return err
	}
	defer b.Close()
	_, err = gale.Run(ctx, nativePipeline(corpus, output), gale.WithBackend("process", b))
	return err
}

// readNative reads the native word count's output directory.
func readNative(output string) (map[string]int64, error) {
	parts, err := filepath.Glob(filepath.Join(output, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no part files in %s", output)
	}
	m := map[string]int64{}
	for _, part := range parts {
		f, err := os.Open(part)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			w, c, ok := bytes.Cut(sc.Bytes(), []byte{'\t'})
			n, err := strconv.ParseInt(string(c), 10, 64)
			if !ok || err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: bad line %q", part, sc.Text())
			}
			m[string(w)] += n
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sameCounts reports the first difference between got and want.
func sameCounts(got, want map[string]int64) error {
	for w, c := range want {
		if got[w] != c {
			return fmt.Errorf("word %q counted %d, want %d", w, got[w], c)
		}
	}
	if len(got) != len(want) {
		return errors.New("extra words")
	}
	return nil
}

// Words emits the words Beam's wordcount ExtractFn finds in line, the
// matches of [a-zA-Z]+('[a-z])? from left to right, as substrings of
// line. It scans bytes instead of running the regular expression: the
// pattern's leftmost-first matches are the maximal runs of ASCII letters,
// each extended by an apostrophe and a lower-case letter when one follows.
func Words(line string, emit func(string)) {
	n := len(line)
	for i := 0; i < n; {
		if !isLetter(line[i]) {
			i++
			continue
		}
		start := i
		for i < n && isLetter(line[i]) {
			i++
		}
		if i+1 < n && line[i] == '\'' && 'a' <= line[i+1] && line[i+1] <= 'z' {
			i += 2
		}
		emit(line[start:i])
	}
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
