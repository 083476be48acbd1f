// Command stragglers measures backup tasks (engine.Speculation) side by
// side, in one run, on the process backend (real worker processes of this
// binary): word count and text sort of one generated corpus,
//
//   - clean: no stragglers, speculation off and on (what speculation costs
//     when nothing straggles, in time and billed seconds);
//   - slowed: 5% of the invocations slowed 10x (backends/faulty's Slow
//     fault: the answer is held back for ten times the task's time), the
//     same invocations in both runs, speculation off and on;
//   - sigstop (word count): one worker process is stopped with SIGSTOP
//     once half of the first stage is done and continued -stop later (the
//     case of issue 16: a stopped process made a 9 s word count take 64 s),
//     speculation off and on.
//
// Every run's output is checked against the reference word counter or the
// sorted input. The table gives each run's time and billed seconds and the
// ratios the targets refer to (on/off with stragglers, on-with-stragglers
// over clean, on/off when clean). Linux only (SIGSTOP, /proc).
//
//	go run ./bench/stragglers [-size 16MiB] [-tasks 40] [-stop 20s] [-out bench/results/stragglers.json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
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
	Job           string  `json:"job"`
	Case          string  `json:"case"`
	Speculation   bool    `json:"speculation"`
	Seconds       float64 `json:"seconds"`
	BilledSeconds float64 `json:"billed_seconds"`
	Backups       int     `json:"backups"`
	BackupsWon    int     `json:"backups_won"`
	Slowed        int64   `json:"slowed"`
}

var (
	sizeFlag = flag.String("size", "16MiB", "corpus size")
	tasks    = flag.Int("tasks", 40, "tasks of the first stage")
	workers  = flag.Int("workers", 4, "worker processes")
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
		job, kase string
		spec      bool
		slow      float64
		sigstop   bool
	}
	var vs []variant
	for _, j := range jobs {
		for _, c := range []struct {
			kase string
			slow float64
		}{{"clean", 0}, {"slowed 5% x10", 0.05}} {
			for _, spec := range []bool{false, true} {
				vs = append(vs, variant{j.name, c.kase, spec, c.slow, false})
			}
		}
	}
	vs = append(vs, variant{"wordcount", "sigstop", false, 0, true}, variant{"wordcount", "sigstop", true, 0, true})

	var results []result
	for _, v := range vs {
		j := jobs[slices.IndexFunc(jobs, func(j benchJob) bool { return j.name == v.job })]
		pcfg := process.DefaultConfig()
		pcfg.Concurrency = *workers
		pb, err := process.New(pcfg)
		if err != nil {
			return err
		}
		// The same job ID in both runs of a case: the same invocations
		// are slowed (faulty decides from the seed and the task ID).
		fb := faulty.New(pb, faulty.Config{Seed: 3, SlowRate: v.slow, SlowFactor: 10})
		o := filepath.Join(*dir, fmt.Sprintf("out-%s-%s-%v", v.job, strings.ReplaceAll(v.kase, " ", "_"), v.spec))
		p := gale.NewPipeline()
		if err := j.build(p, o); err != nil {
			return err
		}
		opts := []gale.RunOption{gale.WithBackend("process", fb), gale.Workers(*workers), gale.ChunkSize(chunk),
			gale.Partitions(2 * *workers), gale.JobID("stragglers-" + v.job + "-" + strings.ReplaceAll(v.kase, " ", "_"))}
		if !v.spec {
			opts = append(opts, gale.NoSpeculation())
		}
		var stopper *stopper
		if v.sigstop {
			stopper = newStopper(*stop)
			opts = append(opts, gale.EventsTo(stopper))
		}
		start := time.Now()
		rep, err := gale.Run(context.Background(), p, opts...)
		secs := time.Since(start).Seconds()
		if stopper != nil {
			stopper.resume()
		}
		st := fb.Stats()
		if cerr := fb.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = j.check(o)
		}
		os.RemoveAll(o)
		if err != nil {
			return fmt.Errorf("%s %s speculation=%v: %w", v.job, v.kase, v.spec, err)
		}
		if stopper != nil && stopper.stopped() == 0 {
			return fmt.Errorf("%s %s: no worker process was stopped", v.job, v.kase)
		}
		r := result{Job: v.job, Case: v.kase, Speculation: v.spec, Seconds: secs, BilledSeconds: rep.BilledSeconds,
			Backups: rep.Backups, BackupsWon: rep.BackupsWon, Slowed: st.Slowed}
		results = append(results, r)
		fmt.Printf("%-10s %-14s speculation=%-5v %7.2fs  billed %7.2fs  backups %d (won %d)  slowed %d  (validated)\n",
			r.Job, r.Case, r.Speculation, r.Seconds, r.BilledSeconds, r.Backups, r.BackupsWon, r.Slowed)
	}
	find := func(job, kase string, spec bool) result {
		for _, r := range results {
			if r.Job == job && r.Case == kase && r.Speculation == spec {
				return r
			}
		}
		return result{}
	}
	fmt.Println()
	fmt.Println("job        case           on/off time   on/clean-off time   clean on/off time   clean on/off billed")
	for _, row := range []struct{ job, kase string }{{"wordcount", "slowed 5% x10"}, {"sort", "slowed 5% x10"}, {"wordcount", "sigstop"}} {
		off, on := find(row.job, row.kase, false), find(row.job, row.kase, true)
		clean, cleanOn := find(row.job, "clean", false), find(row.job, "clean", true)
		fmt.Printf("%-10s %-14s %11.2f   %17.2f   %17.2f   %19.2f\n", row.job, row.kase, on.Seconds/off.Seconds,
			on.Seconds/clean.Seconds, cleanOn.Seconds/clean.Seconds, cleanOn.BilledSeconds/clean.BilledSeconds)
	}
	b, err := json.MarshalIndent(map[string]any{"size": size, "tasks": *tasks, "workers": *workers, "stop_seconds": stop.Seconds(),
		"results": results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
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
