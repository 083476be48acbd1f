package gale_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/engine/enginetest"
	"github.com/galeproject/gale/examples/wordcount"
)

// eventWatch collects a job's events and lets a test wait for one.
type eventWatch struct {
	mu     sync.Mutex
	events []map[string]any
	change chan struct{}
}

func newEventWatch() *eventWatch { return &eventWatch{change: make(chan struct{})} }

func (w *eventWatch) Write(p []byte) (int, error) {
	var ev map[string]any
	if err := json.Unmarshal(p, &ev); err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, ev)
	close(w.change)
	w.change = make(chan struct{})
	return len(p), nil
}

// count returns how many events match.
func (w *eventWatch) count(match func(map[string]any) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ev := range w.events {
		if match(ev) {
			n++
		}
	}
	return n
}

// waitFor waits until at least n events match; the job runs on a fake
// clock, so this is an event the job reaches by itself, not a timing.
func (w *eventWatch) waitFor(t *testing.T, what string, n int, match func(map[string]any) bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		w.mu.Lock()
		ch := w.change
		w.mu.Unlock()
		if w.count(match) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the job never reached: %s (%d events)", what, w.count(func(map[string]any) bool { return true }))
		}
	}
}

func isEvent(name string, stage int) func(map[string]any) bool {
	return func(ev map[string]any) bool { return ev["event"] == name && ev["stage"] == float64(stage) }
}

// hangOn makes the first attempt of one task hang, and reports it.
func hangOn(id string, hung chan<- struct{}) func(backends.Task, int) faulty.Fault {
	return func(tk backends.Task, _ int) faulty.Fault {
		if strings.HasSuffix(tk.ID, id+"/attempt-1") {
			select {
			case hung <- struct{}{}:
			default:
			}
			return faulty.Hang
		}
		return faulty.None
	}
}

// stragglerRun runs word count on a fake clock with one hanging task; at
// step it moves the clock as the test says.
func stragglerRun(t *testing.T, chunk int64, hangID string, step func(w *eventWatch, clock *enginetest.FakeClock, hung <-chan struct{}),
	opts ...gale.RunOption) *gale.Report {
	t.Helper()
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 5, nil)
	want := refCount(t, in)
	tmp := isolateTemp(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	hung := make(chan struct{}, 1)
	fb := newFaulty(t, faulty.Config{Rule: hangOn(hangID, hung)})
	clock := enginetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := newEventWatch()
	p := gale.NewPipeline()
	wordcount.Build(p, []string{in}, out)
	type result struct {
		r   *gale.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		opts := append([]gale.RunOption{gale.WithBackend("faulty", fb), gale.Workers(4), gale.ChunkSize(chunk),
			gale.Partitions(3), gale.JobID("straggler"), gale.WithClock(clock), gale.EventsTo(w)}, opts...)
		r, err := gale.Run(context.Background(), p, opts...)
		done <- result{r, err}
	}()
	step(w, clock, hung)
	res := <-done
	if err := fb.Close(); err != nil {
		t.Errorf("closing the backend: %v", err)
	}
	if res.err != nil {
		t.Fatalf("run failed (faults %+v): %v", fb.Stats(), res.err)
	}
	if s := fb.Stats(); s.Hung != 1 {
		t.Errorf("%d invocations hung, want 1", s.Hung)
	}
	sameCounts(t, readCounts(t, out), want)
	noLeftovers(t, parent, tmp)
	return res.r
}

// A task that hangs is abandoned at its deadline and retried: the job
// finishes with the right output instead of hanging.
func TestHungTaskTimesOutAndIsRetried(t *testing.T) {
	r := stragglerRun(t, 1<<20, "stage-0/task-0", func(w *eventWatch, clock *enginetest.FakeClock, hung <-chan struct{}) {
		<-hung // the only task of stage 0 hangs: nothing else runs
		clock.Advance(59 * time.Second)
		clock.Advance(2 * time.Second)
	}, gale.TaskTimeout(time.Minute))
	if r.TimedOut != 1 || r.Backups != 0 {
		t.Errorf("report: %d timed out, %d backups; want 1 and 0", r.TimedOut, r.Backups)
	}
	if r.Stages[0].Retries != 1 {
		t.Errorf("stage 0 shows %d retries, want 1", r.Stages[0].Retries)
	}
}

// A straggler gets a backup once most of its stage is done; the backup
// wins, the original is cancelled, and the output counts once.
func TestStragglerGetsBackupThatWins(t *testing.T) {
	var tasks int
	others := &othersDone{reached: make(chan struct{})}
	r := stragglerRun(t, 48<<10, "stage-0/task-1", func(w *eventWatch, clock *enginetest.FakeClock, hung <-chan struct{}) {
		<-hung
		w.waitFor(t, "the job start", 1, func(ev map[string]any) bool { return ev["event"] == "job_start" })
		tasks = stageTasks(t, w)
		w.waitFor(t, "every other task of stage 0 finished", tasks-1, isEvent("task_end", 0))
		// A task_end event is written before the driver loop hands the
		// success to the scheduler; a clock moved in between would make
		// the last of them a straggler too. The progress display is
		// updated after.
		select {
		case <-others.reached:
		case <-time.After(time.Minute):
			t.Fatal("the scheduler never counted the other tasks of stage 0")
		}
		clock.Advance(50 * time.Millisecond) // under Speculation.MinRuntime: no backup yet
		clock.Advance(time.Second)
		w.waitFor(t, "the backup's cancel of the original", 1, isEvent("task_cancel", 0))
	}, gale.WithProgress(others))
	if tasks < 4 {
		t.Fatalf("stage 0 has %d tasks; the test needs at least 4", tasks)
	}
	if r.Backups != 1 || r.BackupsWon != 1 || r.TimedOut != 0 {
		t.Errorf("report: %d backups, %d won, %d timed out; want 1, 1, 0", r.Backups, r.BackupsWon, r.TimedOut)
	}
	if r.Stages[0].Retries != 0 || r.Stages[0].Backups != 1 {
		t.Errorf("stage 0: %d retries, %d backups; want 0 and 1", r.Stages[0].Retries, r.Stages[0].Backups)
	}
	if r.WastedSeconds <= 0 {
		t.Errorf("the cancelled original's time is not counted as wasted: %v", r.WastedSeconds)
	}
}

// With speculation off, the straggler gets no backup; the deadline derived
// from its stage's durations still turns the hang into a retry, with no
// fixed timeout at all.
func TestHungTaskWithoutSpeculationHitsAdaptiveDeadline(t *testing.T) {
	r := stragglerRun(t, 48<<10, "stage-0/task-1", func(w *eventWatch, clock *enginetest.FakeClock, hung <-chan struct{}) {
		<-hung
		w.waitFor(t, "the job start", 1, func(ev map[string]any) bool { return ev["event"] == "job_start" })
		w.waitFor(t, "every other task of stage 0 finished", stageTasks(t, w)-1, isEvent("task_end", 0))
		clock.Advance(30 * time.Second)
		clock.Advance(31 * time.Second) // past Speculation.MinTimeout
	}, gale.NoSpeculation(), gale.TaskTimeout(-1))
	if r.Backups != 0 || r.TimedOut != 1 {
		t.Errorf("report: %d backups, %d timed out; want 0 and 1", r.Backups, r.TimedOut)
	}
}

// othersDone is a progress display that tells when all but one task of
// stage 0 are done, as the scheduler has counted them.
type othersDone struct {
	once    sync.Once
	reached chan struct{}
}

func (p *othersDone) Update(r *engine.Report) {
	if st := r.Snapshot(); len(st) > 0 && st[0].Tasks > 1 && st[0].Done >= st[0].Tasks-1 {
		p.once.Do(func() { close(p.reached) })
	}
}

func (p *othersDone) Finish(*engine.Report, error) {}

// stageTasks reads stage 0's task count from the job_start event.
func stageTasks(t *testing.T, w *eventWatch) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.events {
		if ev["event"] != "job_start" {
			continue
		}
		plan, _ := ev["plan"].(map[string]any)
		stages, _ := plan["stages"].([]any)
		if len(stages) > 0 {
			if st, ok := stages[0].(map[string]any); ok {
				if n, ok := st["tasks"].(float64); ok {
					return int(n)
				}
			}
		}
		t.Fatalf("job_start's plan has no stage 0 task count: %v", ev["plan"])
	}
	t.Fatal("no job_start event")
	return 0
}

// On a simulated platform the driver's clock is the platform's simulated
// clock, so the straggler test sees tasks as the platform runs them: the
// model's stragglers get backups that win, and the output counts once.
func TestSimulatedStragglersGetBackups(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 7, nil)
	want := refCount(t, in)
	run := func(t *testing.T, opts ...gale.RunOption) *gale.Report {
		mux, err := gale.NewWorkerMux()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := sim.DefaultConfig("aws")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Handler, cfg.MemoryMiB = mux.Handle, 128
		// The model slows a task by a hash of the seed and its ID: with
		// this job ID, 5 of the first stage's 13 first attempts, none of
		// their second ones, and neither reduce task. Their CPU is slowed
		// 500x, as sim:aws's storage requests make most of these small
		// tasks' time.
		cfg.Platform.Stragglers = sim.Stragglers{Fraction: 0.3, Factor: 500}
		b, err := sim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		wordcount.Build(p, []string{in}, out)
		r, err := gale.Run(context.Background(), p, append([]gale.RunOption{gale.WithBackend("sim:aws", b), gale.Workers(4),
			gale.ChunkSize(16 << 10), gale.Partitions(2), gale.JobID("sim-stragglers-2")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if b.Stragglers() == 0 {
			t.Fatal("the model slowed no invocation; the run proves nothing")
		}
		sameCounts(t, readCounts(t, out), want)
		return r
	}
	r := run(t, gale.WithSpeculation(engine.Speculation{MinRuntime: time.Millisecond}))
	if r.Backups == 0 || r.BackupsWon == 0 {
		t.Errorf("report: %d backups, %d won; want stragglers backed up on the simulated platform", r.Backups, r.BackupsWon)
	}
	if r := run(t, gale.NoSpeculation()); r.Backups != 0 {
		t.Errorf("speculation off, yet %d backups", r.Backups)
	}
}
