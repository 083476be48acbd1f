package gale_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/engine/enginetest"
	"github.com/galeproject/gale/examples/wordcount"
)

func init() {
	workerPipelines["interrupt"] = func(p *gale.Pipeline) { buildSlowCount(p, nil, "out") }
}

// slowLine stands for a task's real work: it takes a while per line, so
// that a job of a few dozen one-line files is still running when the test
// cancels it.
func slowLine(s string) string {
	time.Sleep(50 * time.Millisecond)
	return strings.ToUpper(s)
}

// buildSlowCount counts the slowed lines of inputs into out.
func buildSlowCount(p *gale.Pipeline, inputs []string, out string) {
	gale.WriteText(gale.CountPerElement(gale.Map(gale.ReadText(p, inputs...), slowLine)), out)
}

// interruptedRun runs a job until the events show it running, then
// cancels its context, and checks what a user of the API may rely on: the
// error says the job was interrupted (gale.ErrInterrupted, and the
// context's error), nothing was retried, failed or started after the
// cancellation, the events and the report record the interruption, and
// no output or staging area is left. It returns the events.
func interruptedRun(t *testing.T, p *gale.Pipeline, parent, tmp string, started func(w *eventWatch), opts ...gale.RunOption) *eventWatch {
	t.Helper()
	w := newEventWatch()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		r   *gale.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := gale.Run(ctx, p, append([]gale.RunOption{gale.EventsTo(w), gale.MaxAttempts(3)}, opts...)...)
		done <- result{r, err}
	}()
	started(w)
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the cancelled job did not return within a minute")
	}
	if res.err == nil {
		t.Fatal("the cancelled job succeeded")
	}
	if !errors.Is(res.err, gale.ErrInterrupted) || !errors.Is(res.err, context.Canceled) {
		t.Errorf("error %q: want gale.ErrInterrupted and context.Canceled", res.err)
	}
	if msg := res.err.Error(); !strings.Contains(msg, "interrupted") || strings.Contains(msg, "failed") {
		t.Errorf("error %q: want it to say the job was interrupted, not that a task failed", msg)
	}

	w.mu.Lock()
	events := append([]map[string]any(nil), w.events...)
	w.mu.Unlock()
	at := -1
	for i, ev := range events {
		if ev["event"] == "job_interrupted" {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("no job_interrupted event among %d events", len(events))
	}
	inflight := map[string]bool{}
	for _, ev := range events[:at] {
		key := fmt.Sprint(ev["stage"], "/", ev["task"], "/", ev["attempt"])
		switch ev["event"] {
		case "task_start":
			inflight[key] = true
		case "task_end", "task_failed":
			delete(inflight, key)
		case "task_interrupted":
			t.Errorf("task_interrupted before job_interrupted: %v", ev)
		}
		if ev["event"] == "task_failed" {
			t.Errorf("a task failed before the cancellation: %v", ev)
		}
	}
	if running := events[at]["running"]; running != float64(len(inflight)) {
		t.Errorf("job_interrupted says %v attempts were running; the events before it left %d running", running, len(inflight))
	}
	for _, ev := range events[at+1:] {
		key := fmt.Sprint(ev["stage"], "/", ev["task"], "/", ev["attempt"])
		switch ev["event"] {
		case "task_start", "task_failed", "stage_end":
			t.Errorf("%s after the job was interrupted: %v", ev["event"], ev)
		case "task_interrupted", "task_end":
			if !inflight[key] {
				t.Errorf("%s of an attempt that was not in flight: %v", ev["event"], ev)
			}
			delete(inflight, key)
		}
	}
	if len(inflight) > 0 {
		t.Errorf("attempts in flight at the interruption never reported: %v", inflight)
	}
	end := events[len(events)-1]
	if end["event"] != "job_end" || end["ok"] != false || end["interrupted"] != true {
		t.Errorf("last event %v: want job_end with ok false and interrupted true", end)
	}

	r := res.r
	if r == nil {
		t.Fatal("no report")
	}
	if r.Interrupted == "" {
		t.Error("the report does not say the job was interrupted")
	}
	for _, s := range r.Stages {
		if s.Failed != 0 || s.Retries != 0 || s.Running != 0 {
			t.Errorf("stage %d: %d failed attempts, %d retries, %d running; want none", s.ID, s.Failed, s.Retries, s.Running)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "out")); !os.IsNotExist(err) {
		t.Errorf("the interrupted job's output exists (stat: %v)", err)
	}
	noLeftovers(t, parent, tmp)
	return w
}

// Cancelling a running job's context interrupts it on every backend: it
// stops scheduling, retries nothing, reports the interruption (not task
// failures) and leaves no output.
func TestCancelledJobIsInterrupted(t *testing.T) {
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		dir := t.TempDir()
		var inputs []string
		for i := range 40 {
			in := filepath.Join(dir, fmt.Sprintf("in-%02d.txt", i))
			if err := os.WriteFile(in, []byte(fmt.Sprintf("line %d\n", i%7)), 0o644); err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, in)
		}
		tmp := isolateTemp(t)
		parent := t.TempDir()
		p := gale.NewPipeline()
		buildSlowCount(p, inputs, filepath.Join(parent, "out"))
		w := interruptedRun(t, p, parent, tmp, func(w *eventWatch) {
			// Tasks are running (one finished, others started after it).
			w.waitFor(t, "a first task done", 1, isEvent("task_end", 0))
			w.waitFor(t, "another task started", 4, isEvent("task_start", 0))
		}, opts...)
		if n := w.count(func(ev map[string]any) bool { return ev["event"] == "task_start" }); n >= 40 {
			t.Errorf("%d attempts started: the job was not stopped early", n)
		}
	})
}

// A job interrupted while a straggler's backup runs beside it ends both
// attempts as interrupted: a cancelled backup is not a failure, and the
// task is not retried.
func TestJobInterruptedDuringBackup(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 5, nil)
	tmp := isolateTemp(t)
	parent := t.TempDir()
	hung := make(chan struct{}, 2)
	// Every attempt of task 1 hangs, its backup too.
	fb := newFaulty(t, faulty.Config{Rule: func(tk backends.Task, _ int) faulty.Fault {
		if strings.Contains(tk.ID, "/stage-0/task-1/") {
			hung <- struct{}{}
			return faulty.Hang
		}
		return faulty.None
	}})
	clock := enginetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := gale.NewPipeline()
	wordcount.Build(p, []string{in}, filepath.Join(parent, "out"))
	w := interruptedRun(t, p, parent, tmp, func(w *eventWatch) {
		<-hung
		w.waitFor(t, "the job start", 1, func(ev map[string]any) bool { return ev["event"] == "job_start" })
		w.waitFor(t, "every other task of stage 0 finished", stageTasks(t, w)-1, isEvent("task_end", 0))
		clock.Advance(500 * time.Millisecond)
		clock.Advance(time.Second) // past Speculation.MinRuntime: a backup starts, and hangs
		<-hung
	}, gale.WithBackend("faulty", fb), gale.Workers(4), gale.ChunkSize(48<<10), gale.Partitions(3),
		gale.WithClock(clock))
	backups := w.count(func(ev map[string]any) bool { return ev["event"] == "task_start" && ev["backup"] == true })
	ended := w.count(func(ev map[string]any) bool {
		return ev["event"] == "task_interrupted" && ev["stage"] == float64(0) && ev["task"] == float64(1)
	})
	if backups != 1 || ended != 2 {
		t.Errorf("%d backups, %d attempts of the straggler ended interrupted; want 1 and 2 (it and its backup)", backups, ended)
	}
}
