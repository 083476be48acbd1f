package ui

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/galeproject/gale/engine"
)

// event is one job event line (docs/engine.md lists them). Fields absent
// from a line keep their zero values; Stage and Task are pointers because
// 0 is a valid index.
type event struct {
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	Job   string    `json:"job"`

	// job_start
	Backend     string           `json:"backend"`
	Concurrency int              `json:"concurrency"`
	MaxAttempts int              `json:"max_attempts"`
	Plan        *engine.PlanInfo `json:"plan"`
	Stages      int              `json:"stages"`

	// task_start, task_end, task_failed, stage_end; job_end of a job that
	// a task's failure failed.
	Stage      *int           `json:"stage"`
	Task       *int           `json:"task"`
	Attempt    int            `json:"attempt"`
	Instance   string         `json:"instance"`
	Cold       bool           `json:"cold"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Metrics    engine.Metrics `json:"metrics"`
	NotStarted bool           `json:"not_started"`
	Cancelled  bool           `json:"cancelled"`
	Error      string         `json:"error"`

	// shuffle_stored
	Shuffle int   `json:"shuffle"`
	Bytes   int64 `json:"bytes"`

	// throttled
	Count int64 `json:"count"`
	Total int64 `json:"total"`

	// job_end
	OK bool `json:"ok"`
	totals
}

// totals are a job's report figures, from its job_end event or its
// report.
type totals struct {
	Invocations      int64                  `json:"invocations"`
	BilledSeconds    float64                `json:"billed_seconds"`
	CostUSD          float64                `json:"cost_usd"`
	SimulatedSeconds float64                `json:"simulated_seconds"`
	Throttled        int64                  `json:"throttled"`
	Shuffles         []engine.ShuffleReport `json:"shuffles,omitempty"`
	Outputs          []string               `json:"outputs,omitempty"`
	Warnings         []string               `json:"warnings,omitempty"`
}

// Job statuses.
const (
	statusRunning   = "running"
	statusSucceeded = "succeeded"
	statusFailed    = "failed"
	// statusUnfinished is a job loaded from an events file that ends
	// before its job_end: the driver stopped without finishing it.
	statusUnfinished = "unfinished"
)

// Attempt states.
const (
	attemptRunning = 0
	attemptDone    = 1
	attemptFailed  = 2
	// attemptLost is a successful attempt of a task another attempt had
	// already won (a duplicate; its result was ignored).
	attemptLost = 3
	// attemptCancelled failed because the job was failing or cancelled
	// (counted among failed attempts, as the report does).
	attemptCancelled = 4
)

// job is the state of one job, folded from its events. The Server's lock
// guards it.
type job struct {
	id          string
	seq         int // order of arrival among the server's jobs
	backend     string
	concurrency int
	maxAttempts int
	status      string
	start, end  time.Time
	plan        engine.PlanInfo
	stages      []stageState
	attempts    []attempt
	byKey       map[[3]int]int // (stage, task, attempt) -> index in attempts
	instances   []string
	instVer     []uint64 // the version at which each instance appeared
	instanceIdx map[string]int
	throttles   []throttleMark
	stored      map[int]int64 // shuffle -> bytes stored between its stages
	totals      totals
	hasTotals   bool
	err         string
	failed      *[3]int // stage, task, attempt whose failure failed the job
	ver         uint64  // server version of the last change
	problems    []string
}

type stageState struct {
	done, running, failedAttempts, retries int
	start, end                             time.Time
	ended                                  bool
	won                                    []bool // per task: a winning attempt reported
	metrics                                engine.Metrics
}

type attempt struct {
	stage, task, attempt int
	start, end           time.Time // on the driver's clock
	state                int
	instance             int // index into job.instances, -1 unknown
	cold, notStarted     bool
	err                  string
	ver                  uint64
}

type throttleMark struct {
	at    time.Time
	count int64
}

func newJob(id string, seq int) *job {
	return &job{id: id, seq: seq, status: statusRunning, byKey: map[[3]int]int{}, instanceIdx: map[string]int{},
		stored: map[int]int64{}}
}

// maxErrorLen bounds the error text kept per failed attempt; the job's
// own error is kept whole.
const maxErrorLen = 2000

// apply folds one event into j at server version ver.
func (j *job) apply(e *event, ver uint64) {
	j.ver = ver
	switch e.Event {
	case "job_start":
		j.start, j.backend, j.concurrency, j.maxAttempts = e.Time, e.Backend, e.Concurrency, e.MaxAttempts
		if e.Plan != nil {
			j.plan = *e.Plan
		} else {
			// Events of a Gale that did not describe its plan: stages
			// without names or shapes.
			j.plan.Stages = make([]engine.StageInfo, e.Stages)
			for i := range j.plan.Stages {
				j.plan.Stages[i] = engine.StageInfo{ID: i, Name: fmt.Sprintf("stage %d", i), Shuffle: -1}
			}
		}
		j.stages = make([]stageState, len(j.plan.Stages))
		for i, s := range j.plan.Stages {
			j.stages[i].won = make([]bool, s.Tasks)
		}
	case "task_start":
		st := j.stage(e.Stage)
		if st == nil || e.Task == nil {
			return
		}
		if st.start.IsZero() {
			st.start = e.Time
		}
		st.running++
		if e.Attempt > 1 {
			st.retries++
		}
		j.byKey[[3]int{*e.Stage, *e.Task, e.Attempt}] = len(j.attempts)
		j.attempts = append(j.attempts, attempt{stage: *e.Stage, task: *e.Task, attempt: e.Attempt, start: e.Time,
			instance: -1, ver: ver})
	case "task_end", "task_failed":
		st := j.stage(e.Stage)
		if st == nil || e.Task == nil {
			return
		}
		i, ok := j.byKey[[3]int{*e.Stage, *e.Task, e.Attempt}]
		if !ok {
			return
		}
		a := &j.attempts[i]
		if a.state != attemptRunning {
			return
		}
		st.running--
		a.end, a.ver = e.Time, ver
		if e.Event == "task_failed" {
			a.state, a.notStarted, a.err = attemptFailed, e.NotStarted, truncate(e.Error, maxErrorLen)
			if e.Cancelled {
				a.state = attemptCancelled
			}
			st.failedAttempts++
			return
		}
		a.cold, a.instance = e.Cold, j.instance(e.Instance, ver)
		if *e.Task < len(st.won) && st.won[*e.Task] {
			a.state = attemptLost
			return
		}
		a.state = attemptDone
		if *e.Task < len(st.won) {
			st.won[*e.Task] = true
		}
		st.done++
		st.metrics.Add(e.Metrics)
	case "task_interrupted":
		// The job was interrupted while the attempt ran: it was
		// cancelled, and neither failed nor won.
		st := j.stage(e.Stage)
		if st == nil || e.Task == nil {
			return
		}
		i, ok := j.byKey[[3]int{*e.Stage, *e.Task, e.Attempt}]
		if !ok || j.attempts[i].state != attemptRunning {
			return
		}
		a := &j.attempts[i]
		st.running--
		a.state, a.end, a.ver, a.err = attemptCancelled, e.Time, ver, "cancelled: the job was interrupted"
	case "stage_end":
		if st := j.stage(e.Stage); st != nil {
			st.ended, st.end = true, e.Time
		}
	case "shuffle_stored":
		j.stored[e.Shuffle] = e.Bytes
	case "throttled":
		j.throttles = append(j.throttles, throttleMark{at: e.Time, count: e.Count})
	case "job_end":
		j.end = e.Time
		j.status = statusSucceeded
		if !e.OK {
			j.status, j.err = statusFailed, e.Error
			if e.Stage != nil && e.Task != nil {
				j.failed = &[3]int{*e.Stage, *e.Task, e.Attempt}
			}
		}
		j.totals, j.hasTotals = e.totals, true
		for _, sh := range e.Shuffles {
			j.stored[sh.ID] = sh.BytesStored
		}
		// Attempts still running when the job ended were abandoned (the
		// job failed and cancelled them): they end with it.
		for i := range j.attempts {
			if a := &j.attempts[i]; a.state == attemptRunning {
				a.state, a.end, a.err, a.ver = attemptCancelled, e.Time, "abandoned when the job ended", ver
				j.stages[a.stage].running--
			}
		}
	}
}

func (j *job) stage(id *int) *stageState {
	if id == nil || *id < 0 || *id >= len(j.stages) {
		return nil
	}
	return &j.stages[*id]
}

func (j *job) instance(name string, ver uint64) int {
	if name == "" {
		return -1
	}
	if i, ok := j.instanceIdx[name]; ok {
		return i
	}
	j.instanceIdx[name] = len(j.instances)
	j.instances = append(j.instances, name)
	j.instVer = append(j.instVer, ver)
	return len(j.instances) - 1
}

func (j *job) instanceVer(i int) uint64 { return j.instVer[i] }

// addReport takes a job's totals from its report, which a job_end event
// may lack (the events of an older Gale, or a log cut short).
func (j *job) addReport(r *engine.Report, ver uint64) {
	j.ver = ver
	j.totals = totals{Invocations: r.Invocations, BilledSeconds: r.BilledSeconds, CostUSD: r.Cost,
		SimulatedSeconds: r.SimulatedSeconds, Throttled: r.Throttled, Shuffles: r.Shuffles, Outputs: r.Outputs,
		Warnings: r.Warnings}
	j.hasTotals = true
	for _, sh := range r.Shuffles {
		j.stored[sh.ID] = sh.BytesStored
	}
	if j.start.IsZero() {
		j.start = r.Start
	}
	if j.end.IsZero() && !r.End.IsZero() {
		j.end = r.End
	}
	if j.backend == "" {
		j.backend = r.Backend
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// decodeEvent decodes one event line.
func decodeEvent(line []byte) (*event, error) {
	var e event
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, err
	}
	if e.Event == "" || e.Job == "" {
		return nil, fmt.Errorf("not a Gale job event (no \"event\" and \"job\" fields)")
	}
	return &e, nil
}
