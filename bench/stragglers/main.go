// Command stragglers measures backup tasks (engine.Speculation) side by
// side, in one run, on the process backend (real worker processes of this
// binary) and on simulated platforms (sim:aws, sim:azure): word count and
// text sort of one generated corpus,
//
//   - clean: no stragglers, speculation off and on (what speculation costs
//     when nothing straggles, in time and billed seconds);
//   - slowed: 5% of the invocations slowed 10x, speculation off and on. On
//     the process backend it is backends/faulty's Slow fault (the answer
//     is held back for ten times the task's time; the same invocations in
//     both runs); on sim:* it is the platform model's straggler model
//     (sim.Stragglers{Fraction: 0.05, Factor: 10}, in place of the
//     preset's own), and the clean case has none;
//   - sigstop (word count, process backend): one worker process is
//     stopped with SIGSTOP once half of the first stage is done and
//     continued -stop later (the case of issue 16: a stopped process made
//     a 9 s word count take 64 s), speculation off and on.
//
// On sim:* a job's time is its simulated makespan (Report.SimulatedSeconds)
// and its billed seconds are the simulated in-function time of every
// invocation it sent, run to their end (sim.Backend.Drain): an abandoned
// straggler is billed in full, as a platform bills it. The engine runs its
// straggler test in the platform's simulated time.
//
// Every run's output is checked against the reference word counter or the
// sorted input. Each configuration runs -rounds times, interleaved; the
// table gives the medians of each run's time and billed seconds and the
// ratios the targets refer to (on/off with stragglers, on-with-stragglers
// over clean, on/off when clean). Linux only (SIGSTOP, /proc).
//
//	go run ./bench/stragglers [-size 128MiB] [-tasks 40] [-rounds 3] [-sim aws,azure] [-sim-aws-memory 256] [-stop 20s] [-out bench/results/stragglers.json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func main() {
	// The worker processes are this binary: register the jobs' kernels,
	// then serve if started as a worker.
	wordcount.Build(gale.NewPipeline(), []string{"in"}, "out")
	_ = gsort.Build(gale.NewPipeline(), gsort.Text, []string{"in"}, "out")
	gale.ServeWorkerIfRequested()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/stragglers:", err)
		os.Exit(1)
	}
}

type result struct {
	Backend       string  `json:"backend"`
	Job           string  `json:"job"`
	Case          string  `json:"case"`
	Speculation   bool    `json:"speculation"`
	Seconds       float64 `json:"seconds"`
	BilledSeconds float64 `json:"billed_seconds"`
	Backups       int     `json:"backups"`
	BackupsWon    int     `json:"backups_won"`
	Slowed        int64   `json:"slowed"`
	Runs          int     `json:"runs"` // the medians are of this many runs
}

var (
	sizeFlag = flag.String("size", "128MiB", "corpus size (128MiB: a word count task runs about 0.4 s on the process backend)")
	rounds   = flag.Int("rounds", 3, "runs of each configuration, interleaved; the table gives medians")
	sims     = flag.String("sim", "aws,azure", "simulated platforms to run on besides the process backend (comma-separated presets; empty: none)")
	eventsTo = flag.String("events", "", "directory to write each run's job events to (JSON lines; empty: none)")
	onProc   = flag.Bool("process", true, "run on the process backend")
	simMem   = flag.Int("sim-aws-memory", 256, "memory of the sim:aws function in MiB (256: 0.14 vCPU, so that a task of this corpus runs about a second, as on a small Lambda)")
	tasks    = flag.Int("tasks", 40, "tasks of the first stage")
	workers  = flag.Int("workers", 4, "worker processes")
	minRun   = flag.Duration("min-runtime", 0, "Speculation.MinRuntime of the runs with speculation (0: the engine's default)")
	stop     = flag.Duration("stop", 20*time.Second, "how long the SIGSTOP case stops a worker")
	dir      = flag.String("dir", filepath.Join(os.TempDir(), "gale-bench-stragglers"), "working directory")
	out      = flag.String("out", "bench/results/stragglers.json", "results file")
)

func run() error {
	flag.Parse()
	size, err := humanize.ParseBytes(*sizeFlag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(*dir)
	in := filepath.Join(*dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = int64(size), 16
	if err := textgen.GenerateFile(context.Background(), in, cfg); err != nil {
		return err
	}
	counts, err := wordref.CountFile(in)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	slices.Sort(lines)
	sorted := strings.Join(lines, "\n") + "\n"
	chunk := int64(size) / int64(*tasks)

	jobs := []benchJob{
		{"wordcount", func(p *gale.Pipeline, o string) error { wordcount.Build(p, []string{in}, o); return nil },
			func(o string) error {
				got, err := wordref.ReadCountDir(o)
				if err != nil {
					return err
				}
				return wordref.Diff(got, counts)
			}},
		{"sort", func(p *gale.Pipeline, o string) error { return gsort.Build(p, gsort.Text, []string{in}, o) },
			func(o string) error {
				got, err := partFiles(o)
				if err != nil {
					return err
				}
				if got != sorted {
					return fmt.Errorf("sorted output differs from the sorted input (%d bytes, want %d)", len(got), len(sorted))
				}
				return nil
			}},
	}
	type variant struct {
		backend, job, kase string
		spec               bool
		slow               float64
		sigstop            bool
	}
	var backendsRun []string
	if *onProc {
		backendsRun = append(backendsRun, "process")
	}
	for _, name := range strings.Split(*sims, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if _, err := sim.Preset(name); err != nil {
				return err
			}
			backendsRun = append(backendsRun, "sim:"+name)
		}
	}
	var vs []variant
	for _, be := range backendsRun {
		for _, j := range jobs {
			for _, c := range []struct {
				kase string
				slow float64
			}{{"clean", 0}, {"slowed 5% x10", 0.05}} {
				for _, spec := range []bool{false, true} {
					vs = append(vs, variant{be, j.name, c.kase, spec, c.slow, false})
				}
			}
		}
	}
	if *onProc {
		vs = append(vs, variant{"process", "wordcount", "sigstop", false, 0, true}, variant{"process", "wordcount", "sigstop", true, 0, true})
	}

	runs := map[variant][]result{}
	for round := 1; round <= *rounds; round++ {
		for _, v := range vs {
			j := jobs[slices.IndexFunc(jobs, func(j benchJob) bool { return j.name == v.job })]
			o := filepath.Join(*dir, fmt.Sprintf("out-%s-%s-%s-%v", strings.ReplaceAll(v.backend, ":", "_"), v.job,
				strings.ReplaceAll(v.kase, " ", "_"), v.spec))
			p := gale.NewPipeline()
			if err := j.build(p, o); err != nil {
				return err
			}
			// The same job ID in both runs of a case: on process, the same
			// invocations are slowed (faulty decides from the seed and the
			// task ID).
			opts := []gale.RunOption{gale.Workers(*workers), gale.ChunkSize(chunk), gale.Partitions(2 * *workers),
				gale.JobID("stragglers-" + v.job + "-" + strings.ReplaceAll(v.kase, " ", "_"))}
			if !v.spec {
				opts = append(opts, gale.NoSpeculation())
			} else if *minRun > 0 {
				opts = append(opts, gale.WithSpeculation(engine.Speculation{MinRuntime: *minRun}))
			}
			var events *os.File
			if *eventsTo != "" {
				if err := os.MkdirAll(*eventsTo, 0o755); err != nil {
					return err
				}
				name := fmt.Sprintf("%s-%s-%s-spec=%v-round%d.jsonl", strings.ReplaceAll(v.backend, ":", "_"), v.job,
					strings.ReplaceAll(strings.ReplaceAll(v.kase, " ", "_"), "%", ""), v.spec, round)
				if events, err = os.Create(filepath.Join(*eventsTo, name)); err != nil {
					return err
				}
				opts = append(opts, gale.EventsTo(events))
			}
			var r result
			var err error
			if v.backend == "process" {
				var ev io.Writer // nil, not a nil *os.File, when there is none
				if events != nil {
					ev = events
				}
				r, err = runProcess(p, opts, v.slow, v.sigstop, ev)
			} else {
				r, err = runSim(p, opts, strings.TrimPrefix(v.backend, "sim:"), v.slow)
			}
			if err == nil {
				err = j.check(o)
			}
			if events != nil {
				if cerr := events.Close(); err == nil {
					err = cerr
				}
			}
			os.RemoveAll(o)
			if err != nil {
				return fmt.Errorf("%s %s %s speculation=%v: %w", v.backend, v.job, v.kase, v.spec, err)
			}
			r.Backend, r.Job, r.Case, r.Speculation, r.Runs = v.backend, v.job, v.kase, v.spec, 1
			runs[v] = append(runs[v], r)
			fmt.Printf("round %d  %-9s %-10s %-14s speculation=%-5v %7.2fs  billed %7.2fs  backups %d (won %d)  slowed %d  (validated)\n",
				round, r.Backend, r.Job, r.Case, r.Speculation, r.Seconds, r.BilledSeconds, r.Backups, r.BackupsWon, r.Slowed)
		}
	}
	var results, all []result
	for _, v := range vs {
		results = append(results, median(runs[v]))
		all = append(all, runs[v]...)
	}
	find := func(be, job, kase string, spec bool) result {
		for _, r := range results {
			if r.Backend == be && r.Job == job && r.Case == kase && r.Speculation == spec {
				return r
			}
		}
		return result{}
	}
	fmt.Printf("\nmedians of %d rounds\n", *rounds)
	fmt.Println("backend   job        case           on/off time   on/clean-off time   clean on/off time   clean on/off billed")
	for _, be := range backendsRun {
		kases := []string{"slowed 5% x10"}
		if be == "process" {
			kases = append(kases, "sigstop")
		}
		for _, j := range jobs {
			for _, kase := range kases {
				if kase == "sigstop" && j.name != "wordcount" {
					continue
				}
				off, on := find(be, j.name, kase, false), find(be, j.name, kase, true)
				clean, cleanOn := find(be, j.name, "clean", false), find(be, j.name, "clean", true)
				fmt.Printf("%-9s %-10s %-14s %11.2f   %17.2f   %17.2f   %19.2f\n", be, j.name, kase, on.Seconds/off.Seconds,
					on.Seconds/clean.Seconds, cleanOn.Seconds/clean.Seconds, cleanOn.BilledSeconds/clean.BilledSeconds)
			}
		}
	}
	b, err := json.MarshalIndent(map[string]any{"size": size, "tasks": *tasks, "workers": *workers, "stop_seconds": stop.Seconds(),
		"rounds": *rounds, "results": results, "runs": all}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// runProcess runs p on the process backend behind a faulty backend that
// slows the share slow of the invocations 10x, and with sigstop stops one
// worker process with SIGSTOP halfway through the first stage; ev, if not
// nil, also gets the job's events.
func runProcess(p *gale.Pipeline, opts []gale.RunOption, slow float64, sigstop bool, ev io.Writer) (result, error) {
	pcfg := process.DefaultConfig()
	pcfg.Concurrency = *workers
	pb, err := process.New(pcfg)
	if err != nil {
		return result{}, err
	}
	fb := faulty.New(pb, faulty.Config{Seed: 3, SlowRate: slow, SlowFactor: 10})
	opts = append(opts, gale.WithBackend("process", fb))
	var st *stopper
	if sigstop {
		st = newStopper(*stop)
		opts = append(opts, gale.EventsTo(st))
		if ev != nil {
			opts = append(opts, gale.EventsTo(io.MultiWriter(st, ev)))
		}
	}
	start := time.Now()
	rep, err := gale.Run(context.Background(), p, opts...)
	secs := time.Since(start).Seconds()
	if st != nil {
		st.resume()
	}
	stats := fb.Stats()
	if cerr := fb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return result{}, err
	}
	if st != nil && st.stopped() == 0 {
		return result{}, fmt.Errorf("no worker process was stopped")
	}
	return result{Seconds: secs, BilledSeconds: rep.BilledSeconds, Backups: rep.Backups, BackupsWon: rep.BackupsWon,
		Slowed: stats.Slowed}, nil
}

// runSim runs p on the preset platform, simulated, with the straggler
// model slowing the share slow of the compute invocations 10x (none when
// slow is 0). Time is the simulated makespan; billed seconds are every
// invocation's simulated in-function time, abandoned ones run to their
// end.
func runSim(p *gale.Pipeline, opts []gale.RunOption, preset string, slow float64) (result, error) {
	mux, err := gale.NewWorkerMux()
	if err != nil {
		return result{}, err
	}
	cfg, err := sim.DefaultConfig(preset)
	if err != nil {
		return result{}, err
	}
	cfg.Handler = mux.Handle
	if preset == "aws" {
		cfg.MemoryMiB = *simMem
	}
	cfg.Platform.Stragglers = sim.Stragglers{}
	if slow > 0 {
		cfg.Platform.Stragglers = sim.Stragglers{Fraction: slow, Factor: 10}
	}
	b, err := sim.New(cfg)
	if err != nil {
		return result{}, err
	}
	defer b.Close()
	rep, err := gale.Run(context.Background(), p, append(opts, gale.WithBackend("sim:"+preset, b))...)
	if err != nil {
		return result{}, err
	}
	if err := b.Drain(context.Background()); err != nil {
		return result{}, err
	}
	return result{Seconds: rep.SimulatedSeconds, BilledSeconds: b.SimulatedBilled().Seconds(), Backups: rep.Backups,
		BackupsWon: rep.BackupsWon, Slowed: int64(b.Stragglers())}, nil
}

// median returns the run with the median time, its billed seconds the
// median of the runs' billed seconds, and Runs the number of runs.
func median(rs []result) result {
	byTime := slices.Clone(rs)
	slices.SortFunc(byTime, func(a, b result) int { return cmpFloat(a.Seconds, b.Seconds) })
	m := byTime[len(byTime)/2]
	billed := make([]float64, len(rs))
	for i, r := range rs {
		billed[i] = r.BilledSeconds
	}
	slices.Sort(billed)
	m.BilledSeconds, m.Runs = billed[len(billed)/2], len(rs)
	return m
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// benchJob is a job of the benchmark: how to build it, how to check its
// output.
type benchJob struct {
	name  string
	build func(p *gale.Pipeline, out string) error
	check func(out string) error
}

// partFiles returns a committed output's part files, concatenated.
func partFiles(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "part-") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return "", err
			}
			buf.Write(b)
		}
	}
	return buf.String(), nil
}

// stopper reads a job's events and, once half of stage 0's tasks have
// ended, stops one of this process's worker processes with SIGSTOP; it
// continues it after the stop time, or at resume.
type stopper struct {
	d     time.Duration
	mu    sync.Mutex
	ended int
	tasks int
	pid   int
	timer *time.Timer
}

func newStopper(d time.Duration) *stopper { return &stopper{d: d} }

func (s *stopper) Write(p []byte) (int, error) {
	var ev struct {
		Event string `json:"event"`
		Stage *int   `json:"stage"`
		Plan  *struct {
			Stages []struct {
				Tasks int `json:"tasks"`
			} `json:"stages"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(p, &ev); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ev.Event == "job_start" && ev.Plan != nil && len(ev.Plan.Stages) > 0:
		s.tasks = ev.Plan.Stages[0].Tasks
	case ev.Event == "task_end" && ev.Stage != nil && *ev.Stage == 0:
		s.ended++
		if s.pid == 0 && s.tasks > 0 && s.ended >= s.tasks/2 {
			if pid := busyChild(); pid > 0 && syscall.Kill(pid, syscall.SIGSTOP) == nil {
				s.pid = pid
				s.timer = time.AfterFunc(s.d, func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
			}
		}
	}
	return len(p), nil
}

func (s *stopper) stopped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// resume continues the stopped process now (the job has ended).
func (s *stopper) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid != 0 {
		s.timer.Stop()
		_ = syscall.Kill(s.pid, syscall.SIGCONT)
	}
}

// busyChild returns the child process of this one that has used the most
// CPU time lately enough to be running a task: the first child found in
// state R (running), else any child.
func busyChild() int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	any := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid != self {
			continue
		}
		if f[0] == "R" {
			return pid
		}
		any = pid
	}
	return any
}
