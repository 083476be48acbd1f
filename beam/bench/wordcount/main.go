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
// same lines, and the native counts must equal them. The times, and the
// ratios Prism/Gale, print as a table and are written as JSON.
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
	runs := flag.String("runs", "prism,gale,native", "comma-separated runs: prism, gale (process backend), gale-local, native")
	out := flag.String("out", "", "write the results as JSON to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the driver, and the local backend's tasks) to this file")
	flag.Parse()
	beam.Init() // in a Gale worker process, serves tasks and exits
	if err := run(*sizeFlag, *dir, *runs, *out, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "beam/bench/wordcount:", err)
		os.Exit(1)
	}
}

// result is one run's outcome.
type result struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// CPUSeconds is the user and system time of this process and of the
	// worker processes the run started and waited for.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Load is the machine's 1-minute load average at the end of the run
	// (other processes compete for the cores).
	Load  string `json:"load"`
	Words int    `json:"distinct_words"`
}

// cpuSeconds returns the user and system time of this process and its
// waited-for children.
func cpuSeconds() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return total
}

// loadAverage returns the 1-minute load average, or "" where unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b))[0]
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
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var ref map[string]int64 // the first run's counts
	var refLines []string    // the first Beam run's sorted output lines
	var refName string
	var results []result
	for _, name := range names {
		runtime.GC()
		fmt.Printf("running %s on %s ...\n", name, humanize.IBytes(size))
		start, cpu0 := time.Now(), cpuSeconds()
		var counts map[string]int64
		var lines []string
		switch name {
		case "native":
			counts, err = runNative(ctx, corpus, filepath.Join(outDir, "native"))
		default:
			lines, err = runBeam(ctx, name, corpus, filepath.Join(outDir, name+".txt"))
			if err == nil {
				counts, err = parseBeam(lines)
			}
		}
		secs, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		load := loadAverage()
		fmt.Printf("%-12s %8.1f s  cpu %8.1f s  load %s  %d distinct words\n", name, secs, cpu, load, len(counts))
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
		results = append(results, result{Name: name, Seconds: secs, CPUSeconds: cpu, Load: load, Words: len(counts)})
	}

	fmt.Printf("\nBeam wordcount on a %s generated corpus, %d cores; all outputs identical (%d distinct words)\n",
		humanize.IBytes(size), runtime.NumCPU(), len(ref))
	secs := map[string]float64{}
	for _, r := range results {
		secs[r.Name] = r.Seconds
		fmt.Printf("  %-12s %8.1f s  %7.1f MB/s  cpu %8.1f s  load at end %s\n", r.Name, r.Seconds, float64(size)/1e6/r.Seconds, r.CPUSeconds, r.Load)
	}
	cpu := map[string]float64{}
	for _, r := range results {
		cpu[r.Name] = r.CPUSeconds
	}
	ratios := map[string]float64{}
	if p, ok := secs["prism"]; ok {
		for _, n := range []string{"gale", "gale-local", "native"} {
			if g, ok := secs[n]; ok {
				ratios["prism/"+n] = p / g
				ratios["cpu prism/"+n] = cpu["prism"] / cpu[n]
				fmt.Printf("  prism / %-12s = %.2fx time, %.2fx cpu\n", n, p/g, cpu["prism"]/cpu[n])
			}
		}
	}
	if g, ok := secs["gale"]; ok {
		if n, ok := secs["native"]; ok {
			ratios["gale/native"] = g / n
			fmt.Printf("  gale / native        = %.2fx\n", g/n)
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

// runBeam runs Beam's wordcount on the named runner and returns its output
// lines, sorted.
func runBeam(ctx context.Context, name, corpus, output string) ([]string, error) {
	runner, backend := name, ""
	switch name {
	case "gale":
		runner, backend = "gale", "process"
	case "gale-local":
		runner, backend = "gale", "local"
	}
	if err := flag.Set("runner", runner); err != nil {
		return nil, err
	}
	if backend != "" {
		if err := flag.Set("gale_backend", backend); err != nil {
			return nil, err
		}
	}
	p, s := beam.NewPipelineWithRoot()
	wordcount.Build(s, corpus, output)
	if err := beamx.Run(ctx, p); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(output)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(lines)
	return lines, nil
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
// backend and returns its counts.
func runNative(ctx context.Context, corpus, output string) (map[string]int64, error) {
	b, err := process.New(process.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if _, err := gale.Run(ctx, nativePipeline(corpus, output), gale.WithBackend("process", b)); err != nil {
		return nil, err
	}
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
