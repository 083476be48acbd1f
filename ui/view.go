package ui

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/galeproject/gale/engine"
)

// The JSON the page reads. Times are Unix milliseconds (job start and end)
// or microseconds since the job started (attempts, throttles), so the
// numbers stay small and exact in JavaScript.

// jobSummary is one row of the job list.
type jobSummary struct {
	ID      string `json:"id"`
	Seq     int    `json:"seq"`
	Status  string `json:"status"`
	Backend string `json:"backend"`
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Stages  int    `json:"stages"`
	Tasks   int    `json:"tasks"`
	Done    int    `json:"done"`
}

// jobView is one job's state, whole (Full) or the part changed since the
// version the client has.
type jobView struct {
	ID          string `json:"id"`
	Full        bool   `json:"full"`
	Status      string `json:"status"`
	Backend     string `json:"backend"`
	Concurrency int    `json:"concurrency"`
	MaxAttempts int    `json:"max_attempts"`
	Start       int64  `json:"start"`
	End         int64  `json:"end"`
	// Now is the server's clock when the view was made, in microseconds
	// since the job started: running attempts extend to it.
	Now    int64            `json:"now"`
	Plan   *engine.PlanInfo `json:"plan,omitempty"`
	Stages []stageView      `json:"stages"`
	// Stored is the bytes each shuffle stored between its stages.
	Stored map[int]int64 `json:"stored"`
	Totals *totals       `json:"totals,omitempty"`
	Error  string        `json:"error,omitempty"`
	// Failed is the stage, task and attempt whose failure failed the job.
	Failed *[3]int `json:"failed,omitempty"`
	// Instances from InstancesFrom on are new since the client's version.
	InstancesFrom int      `json:"instances_from"`
	Instances     []string `json:"instances"`
	// Attempts are the attempts changed since the client's version, each
	// [index, stage, task, attempt, start µs, end µs (-1 running), state,
	// instance (-1 unknown), cold, not started]; state is 0 running, 1
	// done, 2 failed, 3 lost (a duplicate), 4 cancelled (it ended
	// because the job was failing or cancelled). Errors holds the failed ones'
	// messages by index.
	Attempts  [][10]int64      `json:"attempts"`
	Errors    map[int64]string `json:"errors,omitempty"`
	Throttles [][2]int64       `json:"throttles"`
	Problems  []string         `json:"problems,omitempty"`
}

type stageView struct {
	Done    int            `json:"done"`
	Running int            `json:"running"`
	Failed  int            `json:"failed"`
	Retries int            `json:"retries"`
	Pending int            `json:"pending"`
	Ended   bool           `json:"ended"`
	Start   int64          `json:"start"` // µs since the job started, -1 not yet
	End     int64          `json:"end"`   // µs since the job started, -1 not yet
	Metrics engine.Metrics `json:"metrics"`
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (j *job) since(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.Sub(j.start).Microseconds()
}

func (j *job) summary() jobSummary {
	s := jobSummary{ID: j.id, Seq: j.seq, Status: j.status, Backend: j.backend, Start: unixMilli(j.start),
		End: unixMilli(j.end), Stages: len(j.plan.Stages)}
	for i, st := range j.plan.Stages {
		s.Tasks += st.Tasks
		s.Done += j.stages[i].done
	}
	return s
}

// view returns the job's state changed after version since (everything
// when since is 0), as of now. It shares nothing that apply modifies, so
// it may be encoded after the lock is released.
func (j *job) view(since uint64, now time.Time) *jobView {
	full := since == 0
	v := &jobView{ID: j.id, Full: full, Status: j.status, Backend: j.backend, Concurrency: j.concurrency,
		MaxAttempts: j.maxAttempts, Start: unixMilli(j.start), End: unixMilli(j.end), Stored: maps.Clone(j.stored),
		Error: j.err, Failed: j.failed, Attempts: [][10]int64{}, Throttles: [][2]int64{},
		Problems: slices.Clone(j.problems)}
	if j.end.IsZero() {
		v.Now = j.since(now)
	} else {
		v.Now = j.since(j.end)
	}
	if full {
		plan := j.plan
		v.Plan = &plan
	}
	if j.hasTotals {
		t := j.totals
		v.Totals = &t
	}
	for i, st := range j.stages {
		sv := stageView{Done: st.done, Running: st.running, Failed: st.failedAttempts, Retries: st.retries,
			Ended: st.ended, Start: j.since(st.start), End: j.since(st.end), Metrics: st.metrics}
		sv.Pending = max(0, j.plan.Stages[i].Tasks-st.done-st.running)
		v.Stages = append(v.Stages, sv)
	}
	// Instances are appended in version order: the new ones are a
	// suffix. An instance's version is that of the attempt naming it.
	from := len(j.instances)
	if full {
		from = 0
	} else {
		from = sort.Search(len(j.instances), func(i int) bool { return j.instanceVer(i) > since })
	}
	v.InstancesFrom, v.Instances = from, append([]string{}, j.instances[from:]...)
	for i, a := range j.attempts {
		if a.ver <= since {
			continue
		}
		end := int64(-1)
		if a.state != attemptRunning {
			end = j.since(a.end)
		}
		v.Attempts = append(v.Attempts, [10]int64{int64(i), int64(a.stage), int64(a.task), int64(a.attempt),
			j.since(a.start), end, int64(a.state), int64(a.instance), b2i(a.cold), b2i(a.notStarted)})
		if a.err != "" {
			if v.Errors == nil {
				v.Errors = map[int64]string{}
			}
			v.Errors[int64(i)] = a.err
		}
	}
	for _, th := range j.throttles {
		v.Throttles = append(v.Throttles, [2]int64{j.since(th.at), th.count})
	}
	return v
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
