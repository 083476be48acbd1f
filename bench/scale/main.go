// Command scale measures how Gale's cost grows with the number of tasks:
// word count of one generated corpus on the local backend, only the map
// task count (the chunk size) and the partition count changed, side by
// side in one run. Each configuration runs in a child process of its own,
// so its peak RSS (getrusage's ru_maxrss of that child) is its own; rounds
// are interleaved so machine noise hits every configuration alike, and the
// median is reported. Every run's counts are checked against the first.
//
//	go run ./bench/scale [-size 64MiB] [-rounds 3] [-configs 64MiB/2,1MiB/64,...]
//	go run ./bench/scale -configs 16KiB/4000 -rounds 1 -cpuprofile cpu.out -memprofile heap.out
//	go run ./bench/scale -large     # adds 8KiB/8000: 16,192 tasks
//
// The table prints tasks, wall time, time per task, peak RSS and the
// ratios #22 states its targets in (the 8,096-task run against the
// 128-task run).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		err = child(os.Args[2:])
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/scale:", err)
		os.Exit(1)
	}
}

type config struct {
	Chunk      uint64 `json:"chunk_bytes"`
	Partitions int    `json:"partitions"`
}

func (c config) String() string {
	return fmt.Sprintf("%s/%d", strings.ReplaceAll(humanize.IBytes(c.Chunk), " ", ""), c.Partitions)
}

type result struct {
	Config   string    `json:"config"`
	Maps     int       `json:"map_tasks"`
	Tasks    int       `json:"tasks"`
	Seconds  []float64 `json:"seconds"`
	Median   float64   `json:"median_s"`
	PeakRSS  []int64   `json:"peak_rss_bytes"`
	MedRSS   int64     `json:"median_peak_rss_bytes"`
	PerTask  float64   `json:"ms_per_task"`
	LoadAvgs []string  `json:"load_averages"`
}

func run() error {
	sizeFlag := flag.String("size", "64MiB", "corpus size")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	workers := flag.Int("workers", 2, "tasks run at once")
	configs := flag.String("configs", "64MiB/2,1MiB/64,64KiB/1000,16KiB/4000", "chunk size/partitions of each configuration")
	large := flag.Bool("large", false, "add 8KiB/8000 (16,192 tasks) to the configurations")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "where the corpus is generated (cached)")
	out := flag.String("out", "bench/results/scale.json", "results file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of each child to this name plus .N (N: the configuration's index)")
	memprofile := flag.String("memprofile", "", "write a heap profile of each child at its end to this name plus .N")
	flag.Parse()
	size, err := humanize.ParseBytes(*sizeFlag)
	if err != nil {
		return err
	}
	var cfgs []config
	list := *configs
	if *large {
		list += ",8KiB/8000"
	}
	for _, s := range strings.Split(list, ",") {
		chunk, parts, ok := strings.Cut(s, "/")
		c, err := humanize.ParseBytes(chunk)
		if !ok || err != nil {
			return fmt.Errorf("-configs: %q: want CHUNK/PARTITIONS, e.g. 64KiB/1000", s)
		}
		var p int
		if _, err := fmt.Sscan(parts, &p); err != nil || p < 1 {
			return fmt.Errorf("-configs: %q: partitions must be a positive number", s)
		}
		cfgs = append(cfgs, config{c, p})
	}
	cfg := textgen.DefaultConfig()
	cfg.Size = int64(size)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	corpus := filepath.Join(*dir, fmt.Sprintf("corpus-%d-%d.txt", cfg.Seed, cfg.Size))
	if fi, err := os.Stat(corpus); err != nil || fi.Size() != cfg.Size {
		fmt.Printf("generating %s corpus at %s\n", humanize.IBytes(size), corpus)
		if err := textgen.GenerateFile(context.Background(), corpus, cfg); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Open(corpus)
	if err != nil {
		return err
	}
	want, err := wordref.Count(f)
	f.Close()
	if err != nil {
		return err
	}
	results := make([]result, len(cfgs))
	for r := 0; r < *rounds; r++ {
		for i, c := range cfgs {
			outDir, err := os.MkdirTemp(*dir, "scale-out-")
			if err != nil {
				return err
			}
			args := []string{"-child", corpus, filepath.Join(outDir, "out"), fmt.Sprint(c.Chunk), fmt.Sprint(c.Partitions), fmt.Sprint(*workers)}
			args = append(args, "", "")
			if *cpuprofile != "" {
				args[len(args)-2] = fmt.Sprintf("%s.%d", *cpuprofile, i)
			}
			if *memprofile != "" {
				args[len(args)-1] = fmt.Sprintf("%s.%d", *memprofile, i)
			}
			cmd := exec.Command(self, args...)
			cmd.Stderr = os.Stderr
			load := loadAvg()
			start := time.Now()
			stdout, err := cmd.Output()
			d := time.Since(start).Seconds()
			if err != nil {
				os.RemoveAll(outDir)
				return fmt.Errorf("%s: %w", c, err)
			}
			got, err := wordref.ReadCountDir(filepath.Join(outDir, "out"))
			os.RemoveAll(outDir)
			if err != nil {
				return fmt.Errorf("%s: reading the output: %w", c, err)
			}
			if err := same(got, want); err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			var rep struct{ Maps, Tasks int }
			if err := json.Unmarshal(stdout, &rep); err != nil {
				return fmt.Errorf("%s: child's report: %w", c, err)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
			res := &results[i]
			res.Config, res.Maps, res.Tasks = c.String(), rep.Maps, rep.Tasks
			res.Seconds = append(res.Seconds, d)
			res.PeakRSS = append(res.PeakRSS, rss)
			res.LoadAvgs = append(res.LoadAvgs, load)
			fmt.Printf("round %d  %-12s %6d tasks %8.2fs %8s peak RSS  (load %s)\n", r+1, c, rep.Tasks, d, humanize.IBytes(uint64(rss)), load)
		}
	}
	for i := range results {
		s := slices.Clone(results[i].Seconds)
		slices.Sort(s)
		results[i].Median = s[len(s)/2]
		m := slices.Clone(results[i].PeakRSS)
		slices.Sort(m)
		results[i].MedRSS = m[len(m)/2]
		results[i].PerTask = results[i].Median / float64(results[i].Tasks) * 1000
	}
	fmt.Printf("\nword count of %s, local backend, %d workers, median of %d rounds\n", humanize.IBytes(size), *workers, *rounds)
	fmt.Printf("  %-12s %7s %9s %9s %10s %12s\n", "chunk/parts", "tasks", "wall", "vs first", "ms/task", "peak RSS")
	for _, r := range results {
		fmt.Printf("  %-12s %7d %8.2fs %8.2fx %10.3f %12s\n", r.Config, r.Tasks, r.Median, r.Median/results[0].Median, r.PerTask, humanize.IBytes(uint64(r.MedRSS)))
	}
	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "corpus_bytes": size, "workers": *workers,
		"cores": runtime.NumCPU(), "rounds": *rounds, "go": runtime.Version(), "results": results,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// child runs one word count and prints its task counts as JSON.
func child(args []string) error {
	if len(args) < 5 {
		return fmt.Errorf("-child CORPUS OUT CHUNK PARTITIONS WORKERS [CPUPROFILE [MEMPROFILE]]")
	}
	var chunk int64
	var parts, workers int
	fmt.Sscan(args[2], &chunk)
	fmt.Sscan(args[3], &parts)
	fmt.Sscan(args[4], &workers)
	if len(args) > 5 && args[5] != "" {
		f, err := os.Create(args[5])
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if len(args) > 6 && args[6] != "" {
		// The heap profile samples every allocation (MemProfileRate 1 is
		// too slow at these task counts; 64 KiB is finer than the default).
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(args[6])
			if err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	p := gale.NewPipeline()
	wordcount.Build(p, []string{args[0]}, args[1])
	rep, err := gale.Run(context.Background(), p, gale.Workers(workers), gale.ChunkSize(chunk), gale.Partitions(parts))
	if err != nil {
		return err
	}
	tasks, maps := 0, 0
	for i, st := range rep.Stages {
		tasks += st.Tasks
		if i == 0 {
			maps = st.Tasks
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int{"Maps": maps, "Tasks": tasks})
}

func same(got, want map[string]int64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d distinct words, the reference counter found %d", len(got), len(want))
	}
	for w, c := range want {
		if got[w] != c {
			return fmt.Errorf("word %q counted %d, the reference counter %d", w, got[w], c)
		}
	}
	return nil
}

// loadAvg is the one-minute load average (from /proc/loadavg), recorded
// beside every figure: this machine is shared.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
