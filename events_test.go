package gale_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/examples/wordcount"
)

// jobEvent is one line of a job's events, as docs/engine.md lists them.
type jobEvent struct {
	Event     string          `json:"event"`
	Job       string          `json:"job"`
	Stage     *int            `json:"stage"`
	Task      *int            `json:"task"`
	Attempt   int             `json:"attempt"`
	Instance  string          `json:"instance"`
	Cold      bool            `json:"cold"`
	Metrics   engine.Metrics  `json:"metrics"`
	Plan      engine.PlanInfo `json:"plan"`
	Shuffle   int             `json:"shuffle"`
	Bytes     int64           `json:"bytes"`
	OK        bool            `json:"ok"`
	Cancelled bool            `json:"cancelled"`
	Error     string          `json:"error"`

	Invocations      int64                  `json:"invocations"`
	BilledSeconds    float64                `json:"billed_seconds"`
	SimulatedSeconds float64                `json:"simulated_seconds"`
	Shuffles         []engine.ShuffleReport `json:"shuffles"`
	Outputs          []string               `json:"outputs"`
}

func parseEvents(t *testing.T, b []byte) []jobEvent {
	t.Helper()
	var evs []jobEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e jobEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

// TestEventsDescribeTheJob checks that a job's events alone describe it as
// its report does: the plan's stages and shuffles, every winning attempt,
// the bytes each shuffle stored and the totals.
func TestEventsDescribeTheJob(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 600<<10, 3, nil)
	var buf bytes.Buffer
	p := gale.NewPipeline()
	wordcount.BuildGeneral(p, []string{in}, filepath.Join(dir, "out"))
	rep, err := gale.Run(context.Background(), p, gale.Workers(3), gale.ChunkSize(128<<10), gale.EventsTo(&buf))
	if err != nil {
		t.Fatal(err)
	}
	evs := parseEvents(t, buf.Bytes())
	if evs[0].Event != "job_start" || evs[len(evs)-1].Event != "job_end" {
		t.Fatalf("events run from %s to %s, want job_start to job_end", evs[0].Event, evs[len(evs)-1].Event)
	}
	plan := evs[0].Plan
	if len(plan.Stages) != len(rep.Stages) || len(plan.Shuffles) != len(rep.Shuffles) {
		t.Fatalf("plan has %d stages and %d shuffles, report %d and %d", len(plan.Stages), len(plan.Shuffles), len(rep.Stages), len(rep.Shuffles))
	}
	for i, s := range plan.Stages {
		if s.Name != rep.Stages[i].Name || s.Tasks != rep.Stages[i].Tasks || len(s.Ops) == 0 {
			t.Errorf("plan stage %d = %+v, report stage %+v", i, s, rep.Stages[i])
		}
	}
	// Word count: the read, tokenize and partial count fuse into stage 0,
	// which feeds shuffle 0 read by stage 1.
	if sh := plan.Shuffles[0]; sh.Strategy != "data-shipping" || sh.Partitions != rep.Shuffles[0].Partitions ||
		len(sh.Producers) != 1 || sh.Producers[0] != 0 || sh.Consumer != 1 || !sh.Combined {
		t.Errorf("shuffle 0 = %+v", sh)
	}
	ops := []string{}
	for _, o := range plan.Stages[0].Ops {
		ops = append(ops, o.Kind)
	}
	if got := strings.Join(ops, ","); got != "narrow,shuffle-write" {
		t.Errorf("stage 0 fuses %s, want narrow,shuffle-write", got)
	}
	var m [2]engine.Metrics
	ended := map[[2]int]bool{}
	stored := map[int]int64{}
	for _, e := range evs {
		switch e.Event {
		case "task_end":
			k := [2]int{*e.Stage, *e.Task}
			if !ended[k] {
				ended[k] = true
				m[*e.Stage].Add(e.Metrics)
			}
			if e.Instance == "" {
				t.Errorf("task_end of stage %d task %d names no instance", *e.Stage, *e.Task)
			}
		case "shuffle_stored":
			stored[e.Shuffle] = e.Bytes
		}
	}
	for i, s := range rep.Stages {
		if m[i] != s.Metrics {
			t.Errorf("stage %d: task_end metrics sum to %+v, report %+v", i, m[i], s.Metrics)
		}
	}
	if stored[0] != rep.Shuffles[0].BytesStored || stored[0] == 0 {
		t.Errorf("shuffle_stored says %d bytes, report %d", stored[0], rep.Shuffles[0].BytesStored)
	}
	end := evs[len(evs)-1]
	if !end.OK || end.Invocations != rep.Invocations || end.BilledSeconds != rep.BilledSeconds ||
		len(end.Shuffles) != 1 || end.Shuffles[0] != rep.Shuffles[0] || len(end.Outputs) != 1 {
		t.Errorf("job_end = %+v, report %+v", end, rep)
	}
}

func failOnPoison(s string) string {
	if s == "poison" {
		panic("poisoned element")
	}
	return s
}

// TestJobEndNamesTheFailingTask checks that a failed job's last event
// names the stage, task and attempt whose failure failed it.
func TestJobEndNamesTheFailingTask(t *testing.T) {
	xs := make([]string, 40)
	for i := range xs {
		xs[i] = "ok"
	}
	xs[37] = "poison"
	var buf bytes.Buffer
	p := gale.NewPipeline()
	gale.Collect(gale.Map(gale.FromSlice(p, xs), failOnPoison))
	_, err := gale.Run(context.Background(), p, gale.Workers(2), gale.MaxAttempts(2), gale.EventsTo(&buf))
	if err == nil {
		t.Fatal("the job succeeded")
	}
	evs := parseEvents(t, buf.Bytes())
	end := evs[len(evs)-1]
	if end.Event != "job_end" || end.OK || end.Stage == nil || end.Task == nil || end.Attempt != 2 ||
		!strings.Contains(end.Error, "poisoned element") {
		t.Fatalf("job_end = %+v", end)
	}
	// FromSlice gives 2 workers 4 splits each: element 37 is in the last.
	if *end.Stage != 0 || *end.Task != 7 {
		t.Errorf("job_end names stage %d task %d, want stage 0 task 7", *end.Stage, *end.Task)
	}
	// The poisoned task's attempts failed by themselves; any other
	// failure was the job's cancellation.
	for _, e := range evs {
		if e.Event == "task_failed" && e.Cancelled == (*e.Task == 7) {
			t.Errorf("task %d attempt %d failed with cancelled=%v", *e.Task, e.Attempt, e.Cancelled)
		}
	}
}

// TestSimReportsThePlatformsInstances checks that on a simulated platform
// the report and events name the simulated instance that ran each task and
// its cold start, not the one in-process worker that serves them all.
func TestSimReportsThePlatformsInstances(t *testing.T) {
	cfg, err := sim.DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg.Handler = w.Handle
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := gale.NewPipeline()
	gale.Collect(gale.Map(gale.FromSlice(p, make([]string, 64)), failOnPoison))
	rep, err := gale.Run(context.Background(), p, gale.WithBackend("sim:aws", b), gale.Workers(8))
	if err != nil {
		t.Fatal(err)
	}
	instances, cold := map[string]bool{}, 0
	for _, r := range rep.Stages[0].TaskRows {
		instances[r.Instance] = true
		if r.Cold {
			cold++
		}
	}
	// Lambda starts each instance cold once and reuses it warm.
	if len(instances) < 2 || cold != len(instances) {
		t.Errorf("%d tasks ran on %d instance(s) with %d cold start(s); want several instances, each started cold once",
			len(rep.Stages[0].TaskRows), len(instances), cold)
	}
}
