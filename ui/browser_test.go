package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/engine"
	bt "github.com/galeproject/gale/internal/browsertest"
	"github.com/galeproject/gale/ui"
)

// The browser tests load the dashboard in headless Chromium and read what
// it shows — the DOM's text, and the figures the canvases drew
// (galeUI.stats()) — against the job's report and independent counts.

const wait = 60 * time.Second

// cell returns the text of the stage table's cell k of stage i.
func cell(i int, k string) string {
	return fmt.Sprintf(`(document.querySelector('#stages tr[data-stage="%d"] td[data-k="%s"]')||{}).textContent`, i, k)
}

const stats = `galeUI.stats()`

// TestLiveDashboard runs a job held mid-run by a gate on the local and the
// process backends, and checks that the page shows it live — the plan,
// each stage's counts, the running attempt — then, without a reload, the
// finished job exactly as its report has it.
func TestLiveDashboard(t *testing.T) {
	for _, backend := range []string{"local", "process"} {
		t.Run(backend, func(t *testing.T) { testLive(t, backend) })
	}
}

func testLive(t *testing.T, backend string) {
	b := bt.Start(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	t.Setenv(gateEnv, gate)
	t.Cleanup(func() { _ = os.WriteFile(gate, nil, 0o644) }) // never leave a task waiting
	const files = 6
	inputs, ungated := gatedInputs(t, dir, files)
	srv := serve(t, ui.Config{Interval: 50 * time.Millisecond})
	// The gated task is a straggler by design: with speculation it would
	// get a backup (also held by the gate) once it had run a second, and
	// the page would show one attempt more whenever the browser is slower
	// than that; and on a loaded machine it can outlive the deadline
	// derived from its stage's durations. This test is about the live
	// view, not backups or deadlines.
	opts := []gale.RunOption{gale.Workers(3), gale.Partitions(2), gale.WithMonitor(srv), gale.JobID("job-live-" + backend),
		gale.WithSpeculation(engine.Speculation{Off: true, TimeoutMultiplier: -1})}
	if backend == "process" {
		cfg := process.DefaultConfig()
		cfg.Args = nil // the test binary is the worker (TestMain)
		cfg.Concurrency = 3
		pb, err := process.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pb.Close() })
		opts = append(opts, gale.WithBackend("process", pb))
	}
	p := gale.NewPipeline()
	buildGated(p, inputs, filepath.Join(dir, "out"))
	type outcome struct {
		r   *gale.Report
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := gale.Run(context.Background(), p, opts...)
		done <- outcome{r, err}
	}()

	page := b.Page(t, srv.URL())
	bt.Eval[bool](t, page, `window.__loadedOnce = true`)
	// Mid-run: every task of stage 0 but the gated one is done, the gated
	// one runs, stage 1 waits.
	bt.WaitFor(t, page, cell(0, "done")+` === '`+fmt.Sprint(files-1)+`' && `+cell(0, "running")+` === '1'`, stats, wait)
	check := func(what, expr, want string) {
		t.Helper()
		if got := bt.Eval[string](t, page, expr); got != want {
			t.Errorf("%s: the page shows %q, want %q", what, got, want)
		}
	}
	check("status", `document.getElementById('status').textContent`, "running")
	check("stage 0 pending", cell(0, "pending"), "0")
	check("stage 0 records in", cell(0, "records_in"), num(int64(ungated)))
	check("stage 1 pending", cell(1, "pending"), "2")
	check("stage 1 done", cell(1, "done"), "0")
	check("plan nodes", `String(document.querySelectorAll('#dag g.node').length)`, "2")
	check("running stage", `document.querySelector('#dag g.node[data-stage="0"]').getAttribute('class')`, "node running")
	midStats := bt.Eval[map[string]any](t, page, stats)
	if midStats["bars"].(float64) != files || midStats["running"].(float64) != 1 {
		t.Errorf("mid-run timeline: %v; want %d attempts drawn, 1 running", midStats, files)
	}
	// The docs show the local run mid-way and the process run done.
	if backend == "local" {
		bt.Screenshot(t, page, shotDir(t), "ui-running.png")
	} else {
		bt.Screenshot(t, page, t.TempDir(), "ui-running.png")
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	rep := res.r
	bt.WaitFor(t, page, `document.getElementById('status').textContent === 'succeeded'`, stats, wait)
	if !bt.Eval[bool](t, page, `window.__loadedOnce === true`) {
		t.Error("the page reloaded; it should update in place")
	}
	if u := bt.Eval[map[string]any](t, page, stats)["updates"].(float64); u <= midStats["updates"].(float64) {
		t.Errorf("the page got %v updates in all, %v by mid-run: it did not update live", u, midStats["updates"])
	}
	attempts, cold := 0, 0
	for i, s := range rep.Stages {
		check(fmt.Sprintf("stage %d name", i), cell(i, "name"), s.Name)
		check(fmt.Sprintf("stage %d done", i), cell(i, "done"), num(int64(s.Done)))
		check(fmt.Sprintf("stage %d tasks", i), cell(i, "tasks"), num(int64(s.Tasks)))
		check(fmt.Sprintf("stage %d records in", i), cell(i, "records_in"), num(s.Metrics.RecordsIn))
		check(fmt.Sprintf("stage %d records out", i), cell(i, "records_out"), num(s.Metrics.RecordsOut))
		check(fmt.Sprintf("stage %d status", i), cell(i, "status"), "done")
		for _, r := range s.TaskRows {
			attempts += r.Attempts
			if r.Cold {
				cold++
			}
		}
	}
	check("invocations", `document.getElementById('tot-invocations').textContent`, num(rep.Invocations))
	sh := rep.Shuffles[0]
	check("shuffle edge", `Array.from(document.querySelectorAll('#dag g.elabel[data-shuffle="0"] text')).map(e => e.textContent).slice(0, 2).join(' / ')`,
		fmt.Sprintf("shuffle 0: %s / %d partitions, combined", sh.Strategy, sh.Partitions))
	st := bt.Eval[map[string]any](t, page, stats)
	if int(st["bars"].(float64)) != attempts || int(st["cold"].(float64)) != cold || st["running"].(float64) != 0 {
		t.Errorf("final timeline: %v; the report has %d attempts, %d cold starts", st, attempts, cold)
	}
	if st["peak"].(float64) < 1 || st["peak"].(float64) > 3 {
		t.Errorf("concurrency peak %v, want 1 to 3 (the job's limit)", st["peak"])
	}
	if backend == "process" {
		bt.Screenshot(t, page, shotDir(t), "ui-done.png")
	} else {
		bt.Screenshot(t, page, t.TempDir(), "ui-done.png")
	}
}

// TestFailedJobView checks that a failed job's page shows its error and
// points at the failing stage and task in the plan, the table and the
// timeline.
func TestFailedJobView(t *testing.T) {
	b := bt.Start(t)
	srv := serve(t, ui.Config{Interval: 50 * time.Millisecond})
	p := gale.NewPipeline()
	buildPoisoned(p)
	_, err := gale.Run(context.Background(), p, gale.Workers(2), gale.MaxAttempts(2), gale.WithMonitor(srv),
		gale.JobID("job-poisoned"))
	if err == nil {
		t.Fatal("the poisoned job succeeded")
	}
	page := b.Page(t, srv.URL())
	bt.WaitFor(t, page, `document.getElementById('status') && document.getElementById('status').textContent === 'failed'`, stats, wait)
	if !bt.Eval[bool](t, page, `!document.getElementById('error').hidden`) {
		t.Fatal("the error section is hidden")
	}
	// Run's error is "job ID: " and the job's error; the page shows its
	// first lines, and the whole of it (with the worker's stack) folded.
	want := strings.TrimPrefix(err.Error(), "job job-poisoned: ")
	if text := bt.Eval[string](t, page, `document.getElementById('errfull').textContent`); text != want {
		t.Errorf("the page holds the error %q, want %q", text, want)
	}
	head := bt.Eval[string](t, page, `document.getElementById('errtext').textContent`)
	if first := strings.SplitN(want, "\n", 2)[0]; !strings.HasPrefix(head, first) || !strings.Contains(head, "task 7 failed after 2 attempt(s)") {
		t.Errorf("the page's error begins %q, want %q", head, first)
	}
	// FromSlice cuts 40 elements into 8 splits for 2 workers: element 37
	// is in task 7.
	if got := bt.Eval[string](t, page, `document.getElementById('failingtask').textContent`); got != "stage 0 task 7 (attempt 2)" {
		t.Errorf("failing task: %q", got)
	}
	if got := bt.Eval[string](t, page, `document.querySelector('#dag g.node[data-stage="0"]').getAttribute('class')`); got != "node failed" {
		t.Errorf("the failing stage's node has class %q", got)
	}
	if got := bt.Eval[string](t, page, `document.querySelector('#stages tr[data-stage="0"]').className`); got != "failed" {
		t.Errorf("the failing stage's row has class %q", got)
	}
	st := bt.Eval[map[string]any](t, page, stats)
	hl, _ := st["highlighted"].([]any)
	if len(hl) != 2 || hl[0].(float64) != 0 || hl[1].(float64) != 7 || st["failed"].(float64) < 2 || st["retries"].(float64) < 1 {
		t.Errorf("timeline: %v; want task 0/7 highlighted, its 2 failed attempts and a retry drawn", st)
	}
	bt.Screenshot(t, page, shotDir(t), "ui-failed.png")
}

// TestJobList runs several jobs on one dashboard — the rounds of an
// iterative job, one job per round, and a failed job — and checks that
// the page lists each with its status, and shows the one chosen.
func TestJobList(t *testing.T) {
	b := bt.Start(t)
	srv := serve(t, ui.Config{Interval: 50 * time.Millisecond})
	dir := t.TempDir()
	inputs, _ := gatedInputs(t, dir, 3)
	var want [][2]string
	for round := range 3 {
		p := gale.NewPipeline()
		// The gate line is released at once: no gate file is set.
		buildGated(p, inputs, filepath.Join(dir, fmt.Sprint("out", round)))
		id := fmt.Sprintf("job-round-%d", round)
		if _, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WithMonitor(srv), gale.JobID(id)); err != nil {
			t.Fatal(err)
		}
		want = append(want, [2]string{id, "succeeded"})
	}
	p := gale.NewPipeline()
	buildPoisoned(p)
	if _, err := gale.Run(context.Background(), p, gale.Workers(2), gale.MaxAttempts(1), gale.WithMonitor(srv),
		gale.JobID("job-round-3")); err == nil {
		t.Fatal("the poisoned job succeeded")
	}
	want = append(want, [2]string{"job-round-3", "failed"})

	page := b.Page(t, srv.URL())
	bt.WaitFor(t, page, `galeUI.stats().jobs.length === 4`, stats, wait)
	got := bt.Eval[[][2]string](t, page, `galeUI.stats().jobs`)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the page lists %v, want %v", got, want)
	}
	// The list as shown: newest first, each with its status badge.
	shown := bt.Eval[[]string](t, page, `Array.from(document.querySelectorAll('#joblist button')).map(b => b.dataset.job + ' ' + b.querySelector('.badge').textContent)`)
	if len(shown) != 4 || shown[0] != "job-round-3 failed" || shown[3] != "job-round-0 succeeded" {
		t.Errorf("the job list shows %v", shown)
	}
	// Following the newest job shows the failed one; choosing a round
	// shows that round.
	bt.WaitFor(t, page, `galeUI.stats().job === 'job-round-3'`, stats, wait)
	bt.Eval[bool](t, page, `document.querySelector('#joblist button[data-job="job-round-1"]').click(), true`)
	bt.WaitFor(t, page, `galeUI.stats().job === 'job-round-1' && galeUI.stats().status === 'succeeded' && galeUI.stats().bars > 0`, stats, wait)
	bt.Screenshot(t, page, shotDir(t), "ui-jobs.png")
}

// TestTenThousandTasks loads the events of a job of 10,000 tasks and
// checks that the page draws every attempt on its canvas while its DOM
// stays small.
func TestTenThousandTasks(t *testing.T) {
	b := bt.Start(t)
	srv := serve(t, ui.Config{})
	events, attempts := bigJobEvents(10000, 100, 500)
	if err := srv.LoadEvents(bytes.NewReader(events), "big.jsonl"); err != nil {
		t.Fatal(err)
	}
	page := b.Page(t, srv.URL())
	bt.WaitFor(t, page, `galeUI.stats().status === 'succeeded' && galeUI.stats().bars > 0`, stats, wait)
	st := bt.Eval[map[string]any](t, page, stats)
	if int(st["bars"].(float64)) != attempts {
		t.Errorf("the timeline drew %v attempts, want %d", st["bars"], attempts)
	}
	if n := st["domNodes"].(float64); n > 1500 {
		t.Errorf("the page has %v DOM nodes for 10,000 tasks; the timeline must not make one per task", n)
	}
	if st["throttleMarks"].(float64) == 0 || st["cold"].(float64) == 0 || st["retries"].(float64) == 0 {
		t.Errorf("the timeline marks no throttling, cold start or retry: %v", st)
	}
	if got := bt.Eval[string](t, page, `(document.getElementById('tot-sim')||{}).textContent`); got != "8.98 s" {
		t.Errorf("simulated makespan: the page shows %q, want 8.98 s", got)
	}
	if got := bt.Eval[string](t, page, cell(0, "done")); got != "10,000" {
		t.Errorf("stage 0 shows %q tasks done, want 10,000", got)
	}
	bt.Screenshot(t, page, shotDir(t), "ui-10k-tasks.png")
}

// bigJobEvents makes the events of a succeeded two-stage job: maps map
// tasks, then reduces reduce tasks, concurrency at once on instances that
// start cold and are reused, every 97th map task failing once and
// retried, and throttling reported now and then. It returns the events and
// the number of attempts.
func bigJobEvents(maps, reduces, concurrency int) ([]byte, int) {
	var buf bytes.Buffer
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(us int) string { return t0.Add(time.Duration(us) * time.Microsecond).Format(time.RFC3339Nano) }
	plan := engine.PlanInfo{Stages: []engine.StageInfo{
		{ID: 0, Name: "ReadText(big) -> FlatMap(words)", Tasks: maps, Role: "compute", Input: "ReadText(big)", Shuffle: -1,
			Ops: []engine.OpInfo{{Label: "FlatMap(words)", Kind: "narrow", Shuffle: -1}, {Label: "CountPerElement", Kind: "shuffle-write", Shuffle: 0}}},
		{ID: 1, Name: "shuffle 0: CountPerElement -> WriteText(out)", Tasks: reduces, Role: "compute", Input: "CountPerElement", Shuffle: 0,
			Ops: []engine.OpInfo{{Label: "WriteText(out)", Kind: "sink", Shuffle: -1}}, Deps: []int{0}},
	}, Shuffles: []engine.ShuffleInfo{{ID: 0, Label: "CountPerElement", Strategy: "data-shipping", Partitions: reduces, Combined: true,
		Producers: []int{0}, Consumer: 1}}}
	line := func(fields map[string]any) {
		fields["job"] = "job-big"
		b, _ := json.Marshal(fields)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	line(map[string]any{"event": "job_start", "time": at(0), "backend": "sim:aws", "stages": 2, "concurrency": concurrency,
		"max_attempts": 3, "plan": plan})
	attempts := 0
	now := 0
	for stage, tasks := range []int{maps, reduces} {
		slot := make([]int, concurrency) // when each instance is free
		used := make([]bool, concurrency)
		for task := range tasks {
			tries := 1
			if stage == 0 && task%97 == 0 {
				tries = 2
			}
			for a := 1; a <= tries; a++ {
				k := (task + a) % concurrency
				start := max(slot[k], now)
				end := start + 200_000 + (task*7919)%300_000
				if !used[k] {
					end += 250_000 // a cold start
				}
				slot[k] = end
				attempts++
				line(map[string]any{"event": "task_start", "time": at(start), "stage": stage, "task": task, "attempt": a})
				if a < tries {
					line(map[string]any{"event": "task_failed", "time": at(end), "stage": stage, "task": task, "attempt": a,
						"error": "injected"})
					continue
				}
				line(map[string]any{"event": "task_end", "time": at(end), "stage": stage, "task": task, "attempt": a,
					"instance": fmt.Sprintf("sim-%d", k), "cold": !used[k], "metrics": map[string]int64{"records_in": 100, "records_out": 1000}})
				used[k] = true
			}
			if task%1000 == 500 {
				line(map[string]any{"event": "throttled", "time": at(slot[0]), "count": 3, "total": 3 * (task/1000 + 1)})
			}
		}
		for _, s := range slot {
			now = max(now, s)
		}
		line(map[string]any{"event": "stage_end", "time": at(now), "stage": stage})
	}
	line(map[string]any{"event": "job_end", "time": at(now), "ok": true, "invocations": attempts, "billed_seconds": 1234.5,
		"cost_usd": 0.0205, "simulated_seconds": float64(now) / 1e6, "throttled": 30})
	return buf.Bytes(), attempts
}
