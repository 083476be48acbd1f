// Command backends measures Gale's backends side by side in one run:
//
//   - invocation overhead per task — the round trip of a task whose handler
//     does nothing, through the same worker router (engine.Mux) — warm (a
//     worker that already ran a task) and cold (a fresh backend, so a new
//     goroutine slot or a new worker process), median and p99, on the local
//     and process backends;
//   - the same on each cloud backend's local stand-in, reached by the
//     backend's production client: aws (an emulator pool, aws-lambda-rie
//     from scripts/install-standins.sh), gcp (Functions Framework
//     instances), azure (the custom-handler host) and ibm (the loopback
//     OpenWhisk controller); warm over many invocations, cold as the first
//     invocation on a freshly started stand-in (a few samples). The gcp and
//     azure stand-ins start their worker processes before they accept
//     requests, the aws emulator and the OpenWhisk controller on the first
//     invocation, so the stand-in's start time is reported beside the cold
//     figure. A stand-in that cannot start is skipped with a note;
//   - word count on the process backend against the local backend on the
//     same generated corpus, with the same number of workers, runs
//     interleaved round by round, median reported; every output is checked
//     against Gale's reference counter.
//
// The workers of the process backend and of every stand-in are this very
// binary: main serves tasks when started as a worker
// (gale.ServeWorkerIfRequested, which detects each platform's worker mode
// from its environment), after building the word count pipeline so the
// worker knows its kernels and registering the empty task's kind.
//
//	go run ./bench/backends [-size 128MiB] [-rounds 3] [-warm 2000] [-cold 30]
//	    [-cloud-warm 1000] [-cloud-cold 5] [-standin-output] [-out bench/results/backends.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// noopKind is the kind of the benchmark's empty task.
const noopKind = "gale.bench.noop/v1"

var noopPayload = []byte(`{"kind":"` + noopKind + `"}`)

func noop(context.Context, []byte) ([]byte, error) { return []byte("{}"), nil }

func main() {
	// A worker process of the process backend: register what the tasks
	// name, then serve (this call does not return in a worker).
	wordcount.Build(gale.NewPipeline(), []string{"input"}, "output")
	gale.ServeWorkerIfRequested(gale.WorkerHandler(noopKind, noop))

	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/backends:", err)
		os.Exit(1)
	}
}

// latency summarizes invocation round trips.
type latency struct {
	Backend  string  `json:"backend"`
	Start    string  `json:"start"` // "warm" or "cold"
	N        int     `json:"n"`
	MedianUS float64 `json:"median_us"`
	P99US    float64 `json:"p99_us"`
	// SetupMedianMS is, for cold samples, the median time to start the
	// fresh backend (its stand-in, for a cloud one) before the invocation.
	SetupMedianMS float64 `json:"setup_median_ms,omitempty"`
}

func summarize(backend, start string, d []time.Duration) latency {
	slices.Sort(d)
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	return latency{Backend: backend, Start: start, N: len(d), MedianUS: us(d[len(d)/2]), P99US: us(d[min(len(d)-1, len(d)*99/100)])}
}

// factory makes a fresh backend with the given concurrency.
type factory struct {
	name string
	make func(conc int) (backends.Backend, error)
}

func run() error {
	sizeFlag := flag.String("size", "128MiB", "word count corpus size")
	rounds := flag.Int("rounds", 3, "word count rounds (median reported)")
	warmN := flag.Int("warm", 2000, "warm invocations measured per backend")
	coldN := flag.Int("cold", 30, "cold invocations measured per backend")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (cached)")
	out := flag.String("out", "bench/results/backends.json", "results file")
	cloudWarmN := flag.Int("cloud-warm", 1000, "warm invocations measured per cloud stand-in")
	cloudColdN := flag.Int("cloud-cold", 5, "cold invocations measured per cloud stand-in (each on a freshly started stand-in)")
	standInOutput := flag.Bool("standin-output", false, "show the cloud stand-ins' and their workers' output")
	flag.Parse()
	size, err := humanize.ParseBytes(*sizeFlag)
	if err != nil {
		return err
	}
	ctx := context.Background()

	mux, err := gale.NewWorkerMux(gale.WorkerHandler(noopKind, noop))
	if err != nil {
		return err
	}
	processCfg := func(conc int) process.Config {
		cfg := process.DefaultConfig()
		cfg.Args = nil // the worker needs no flags
		cfg.Concurrency = conc
		return cfg
	}
	factories := []factory{
		{"local", func(conc int) (backends.Backend, error) {
			return local.New(local.Config{Handler: mux.Handle, Concurrency: conc})
		}},
		{"process", func(conc int) (backends.Backend, error) { return process.New(processCfg(conc)) }},
	}

	// Invocation overhead.
	var lats []latency
	for _, f := range factories {
		warm, err := measureWarm(ctx, f, *warmN)
		if err != nil {
			return err
		}
		cold, err := measureCold(ctx, f, *coldN)
		if err != nil {
			return err
		}
		lats = append(lats, warm, cold)
	}
	cloud, skipped, err := measureCloud(ctx, *cloudWarmN, *cloudColdN, *standInOutput)
	if err != nil {
		return err
	}
	lats = append(lats, cloud...)
	fmt.Printf("invocation round trip of an empty task (through engine.Mux)\n")
	fmt.Printf("  %-8s %-5s %6s %12s %12s\n", "backend", "start", "n", "median", "p99")
	for _, l := range lats {
		fmt.Printf("  %-8s %-5s %6d %10.1fµs %10.1fµs\n", l.Backend, l.Start, l.N, l.MedianUS, l.P99US)
	}
	table := overheadTable(lats)
	printOverhead(table, skipped)

	// Word count.
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
	want, err := countFile(corpus)
	if err != nil {
		return err
	}
	workers := runtime.GOMAXPROCS(0)
	seconds := map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, f := range factories {
			d, err := wordCount(ctx, f, workers, corpus, *dir, want)
			if err != nil {
				return fmt.Errorf("word count on %s: %w", f.name, err)
			}
			seconds[f.name] = append(seconds[f.name], d.Seconds())
			fmt.Printf("round %d  word count on %-8s %7.3fs\n", r+1, f.name, d.Seconds())
		}
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	lm, pm := median(seconds["local"]), median(seconds["process"])
	warmLocal, warmProc := lats[0], lats[2]
	fmt.Printf("\nword count of %s with %d workers, median of %d rounds: local %.3fs, process %.3fs\n",
		humanize.IBytes(size), workers, *rounds, lm, pm)
	fmt.Printf("  process / local word count time = %.2fx (target <= 1.3x)\n", pm/lm)
	fmt.Printf("  process warm invoke median       = %.1fµs (target < 1000µs), %.1fx local's\n",
		warmProc.MedianUS, warmProc.MedianUS/warmLocal.MedianUS)

	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "cores": runtime.NumCPU(), "go": runtime.Version(),
		"invoke":       lats,
		"invoke_table": table, "invoke_skipped": skipped,
		"wordcount": map[string]any{
			"corpus_bytes": size, "workers": workers, "rounds": *rounds,
			"local_s": seconds["local"], "process_s": seconds["process"],
			"local_median_s": lm, "process_median_s": pm,
		},
		"ratios": map[string]float64{
			"wordcount_process_over_local":        pm / lm,
			"warm_invoke_process_over_local":      warmProc.MedianUS / warmLocal.MedianUS,
			"cold_invoke_process_over_local":      lats[3].MedianUS / lats[1].MedianUS,
			"cold_over_warm_invoke_process":       lats[3].MedianUS / warmProc.MedianUS,
			"warm_invoke_process_median_over_1ms": warmProc.MedianUS / 1000,
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// measureWarm times n sequential invocations on one warm worker.
func measureWarm(ctx context.Context, f factory, n int) (latency, error) {
	b, err := f.make(1)
	if err != nil {
		return latency{}, err
	}
	defer b.Close()
	invoke := func() (time.Duration, error) {
		start := time.Now()
		_, err := b.Invoke(ctx, backends.Task{ID: "noop", Payload: noopPayload})
		return time.Since(start), err
	}
	for range 100 { // warm up: start the worker, settle the runtime
		if _, err := invoke(); err != nil {
			return latency{}, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	ds := make([]time.Duration, 0, n)
	for range n {
		d, err := invoke()
		if err != nil {
			return latency{}, fmt.Errorf("%s: %w", f.name, err)
		}
		ds = append(ds, d)
	}
	return summarize(f.name, "warm", ds), nil
}

// measureCold times the first invocation of n fresh backends.
func measureCold(ctx context.Context, f factory, n int) (latency, error) {
	ds := make([]time.Duration, 0, n)
	setups := make([]time.Duration, 0, n)
	for range n {
		setup := time.Now()
		b, err := f.make(1)
		if err != nil {
			return latency{}, fmt.Errorf("%s: %w", f.name, err)
		}
		setups = append(setups, time.Since(setup))
		start := time.Now()
		res, err := b.Invoke(ctx, backends.Task{ID: "noop", Payload: noopPayload})
		d := time.Since(start)
		if cerr := b.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return latency{}, fmt.Errorf("%s: %w", f.name, err)
		}
		if !res.Invocation.Cold {
			return latency{}, fmt.Errorf("%s: the first invocation of a fresh backend was not cold", f.name)
		}
		ds = append(ds, d)
	}
	l := summarize(f.name, "cold", ds)
	slices.Sort(setups)
	l.SetupMedianMS = float64(setups[len(setups)/2].Nanoseconds()) / 1e6
	return l, nil
}

// wordCount runs word count on a fresh backend (its cold starts count)
// and checks the output against the reference counts.
func wordCount(ctx context.Context, f factory, workers int, corpus, dir string, want map[string]int64) (time.Duration, error) {
	tmp, err := os.MkdirTemp(dir, "out-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	b, err := f.make(workers)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	p := gale.NewPipeline()
	outDir := filepath.Join(tmp, "out")
	wordcount.Build(p, []string{corpus}, outDir)
	runtime.GC()
	start := time.Now()
	if _, err := gale.Run(ctx, p, gale.WithBackend(f.name, b), gale.Workers(workers)); err != nil {
		return 0, err
	}
	d := time.Since(start)
	got, err := wordref.ReadCountDir(outDir)
	if err != nil {
		return 0, err
	}
	if len(got) != len(want) {
		return 0, fmt.Errorf("%d distinct words, the reference counts %d", len(got), len(want))
	}
	for w, c := range want {
		if got[w] != c {
			return 0, fmt.Errorf("word %q counted %d, the reference %d", w, got[w], c)
		}
	}
	return d, nil
}

func countFile(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return wordref.Count(f)
}
