package galerunner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/beam/internal/worker"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/engine/enginetest"
)

func init() {
	register.Function2x1(sumAges)
}

func sumAges(key string, ages func(*int) bool) string {
	total, n := 0, 0
	var a int
	for ages(&a) {
		total += a
		n++
	}
	return fmt.Sprintf("%s %d %d", key, n, total)
}

// summed: a GroupByKey over 4 partitions, every one of them holding keys,
// summed per key.
func summed(out string) (func(s beam.Scope), []string) {
	var ages []string
	totals := map[string][2]int{}
	for i := range 2000 {
		key := fmt.Sprintf("p%03d", (i*37)%160)
		ages = append(ages, fmt.Sprintf("%s,%d", key, i%83))
		t := totals[key]
		totals[key] = [2]int{t[0] + 1, t[1] + i%83}
	}
	var want []string
	for k, t := range totals {
		want = append(want, fmt.Sprintf("%s %d %d", k, t[0], t[1]))
	}
	slices.Sort(want)
	return func(s beam.Scope) {
		textio.Write(s, out, beam.ParDo(s, sumAges, beam.GroupByKey(s, beam.ParDo(s, parseAge, beam.CreateList(s, ages)))))
	}, want
}

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

// waitFor waits until at least n events match: the job runs on a fake
// clock, so this is a point the job reaches by itself, not a timing.
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

// doneWatch is a progress display that tells when a stage has n tasks
// done. The driver loop updates it after it has applied an event, so
// unlike a task_end event (written before) it marks a point where the
// scheduler has counted the task.
type doneWatch struct {
	stage, n int
	once     sync.Once
	reached  chan struct{}
}

func (w *doneWatch) Update(r *engine.Report) {
	if st := r.Snapshot(); len(st) > w.stage && st[w.stage].Done >= w.n {
		w.once.Do(func() { close(w.reached) })
	}
}

func (w *doneWatch) Finish(*engine.Report, error) {}

func isEvent(name string, stage int) func(map[string]any) bool {
	return func(ev map[string]any) bool { return ev["event"] == name && ev["stage"] == float64(stage) }
}

// stragglerRun runs summed on the local backend behind a faulty one that
// hangs the first attempt of task (stage, task), on a fake clock that
// step moves; it checks the output against the independent answer.
func stragglerRun(t *testing.T, stage, task int, cfg galerunner.Config,
	step func(w *eventWatch, clock *enginetest.FakeClock, hung <-chan struct{}, others <-chan struct{})) *galerunner.Result {
	t.Helper()
	wk, err := worker.New(worker.Config{OpenStore: openFS})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: wk.Handle, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	hung := make(chan struct{}, 1)
	id := fmt.Sprintf("/stage-%d/task-%d/attempt-1", stage, task)
	fb := faulty.New(lb, faulty.Config{Rule: func(tk backends.Task, _ int) faulty.Fault {
		if strings.HasSuffix(tk.ID, id) {
			select {
			case hung <- struct{}{}:
			default:
			}
			return faulty.Hang
		}
		return faulty.None
	}})
	defer fb.Close()
	out := filepath.Join(t.TempDir(), "out.txt")
	build, want := summed(out)
	p, s := beam.NewPipelineWithRoot()
	build(s)
	pp, err := galerunner.Marshal(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	clock := enginetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := newEventWatch()
	cfg.Backend, cfg.Workers, cfg.Partitions, cfg.Clock, cfg.Events = fb, 4, 4, clock, w
	dw := &doneWatch{stage: stage, n: 3, reached: make(chan struct{})}
	cfg.Progress = dw
	var rep strings.Builder
	cfg.Report = &rep
	type result struct {
		r   *galerunner.Result
		err error
	}
	done := make(chan result, 1)
	// A step that fails the test ends the job (before the backends close).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		r, err := galerunner.Run(ctx, pp, cfg)
		done <- result{r, err}
	}()
	step(w, clock, hung, dw.reached)
	res := <-done
	t.Log(rep.String())
	if res.err != nil {
		t.Fatalf("run failed (faults %+v): %v", fb.Stats(), res.err)
	}
	if s := fb.Stats(); s.Hung != 1 {
		t.Errorf("%d invocations hung, want 1", s.Hung)
	}
	if got := sortedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("output differs from the independent sums: %d vs %d lines\ngot:  %.10q\nwant: %.10q", len(got), len(want), got, want)
	}
	return res.r
}

// The group stage of summed: its 4 tasks each read records.
const groupStage = 1

// A straggling task of a Beam job gets a backup once most of its stage is
// done; the backup wins, the original is cancelled, and the output counts
// every element once.
func TestBeamStragglerGetsBackupThatWins(t *testing.T) {
	r := stragglerRun(t, groupStage, 1, galerunner.Config{}, func(w *eventWatch, clock *enginetest.FakeClock, hung, others <-chan struct{}) {
		<-hung
		select {
		case <-others: // the 3 other tasks of the group stage are done
		case <-time.After(time.Minute):
			t.Fatal("the other tasks of the group stage never finished")
		}
		clock.Advance(50 * time.Millisecond) // under Speculation.MinRuntime: no backup yet
		clock.Advance(time.Second)
		w.waitFor(t, "the backup's cancel of the original", 1, isEvent("task_cancel", groupStage))
	})
	rep := r.Report
	if got := rep.Stages[groupStage].Tasks; got != 4 {
		t.Fatalf("stage %d has %d tasks, want 4 (the test's plan changed)", groupStage, got)
	}
	if rep.Backups != 1 || rep.BackupsWon != 1 || rep.TimedOut != 0 {
		t.Errorf("report: %d backups, %d won, %d timed out; want 1, 1, 0", rep.Backups, rep.BackupsWon, rep.TimedOut)
	}
	if st := rep.Stages[groupStage]; st.Retries != 0 || st.Backups != 1 {
		t.Errorf("stage %d: %d retries, %d backups; want 0 and 1", groupStage, st.Retries, st.Backups)
	}
}

// With speculation off, a hung task of a Beam job is abandoned at its
// deadline and retried: the job finishes with the right output instead of
// hanging.
func TestBeamHungTaskTimesOutAndIsRetried(t *testing.T) {
	r := stragglerRun(t, 0, 0, galerunner.Config{TaskTimeout: time.Minute, Speculation: engine.Speculation{Off: true}},
		func(w *eventWatch, clock *enginetest.FakeClock, hung, _ <-chan struct{}) {
			<-hung // the only task of stage 0 hangs: nothing else runs
			clock.Advance(59 * time.Second)
			clock.Advance(2 * time.Second)
		})
	rep := r.Report
	if rep.TimedOut != 1 || rep.Backups != 0 {
		t.Errorf("report: %d timed out, %d backups; want 1 and 0", rep.TimedOut, rep.Backups)
	}
	if rep.Stages[0].Retries != 1 {
		t.Errorf("stage 0 shows %d retries, want 1", rep.Stages[0].Retries)
	}
}
