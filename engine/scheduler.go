package engine

import (
	"fmt"

	"github.com/galeproject/gale/planner"
)

// TaskRef names one task of a stage.
type TaskRef struct {
	Stage, Task int
}

// Event is an input to the Scheduler.
type Event interface{ isEvent() }

// TaskSucceeded reports a successful attempt.
type TaskSucceeded struct {
	TaskRef
	Attempt int
	Result  *TaskResult
}

// TaskFailed reports a failed attempt. NotStarted tells that the task
// certainly did not run.
type TaskFailed struct {
	TaskRef
	Attempt    int
	Err        error
	NotStarted bool
}

func (TaskSucceeded) isEvent() {}
func (TaskFailed) isEvent()    {}

// Action is an output of the Scheduler.
type Action interface{ isAction() }

// Invoke asks the driver to run an attempt of a task.
type Invoke struct {
	TaskRef
	Attempt int
}

// StageDone reports that every task of a stage has a winning attempt.
type StageDone struct{ Stage int }

// JobDone reports that every stage is done.
type JobDone struct{}

// JobFailed reports that the job cannot finish.
type JobFailed struct{ Err error }

func (Invoke) isAction()    {}
func (StageDone) isAction() {}
func (JobDone) isAction()   {}
func (JobFailed) isAction() {}

// Scheduler is the job coordinator's deterministic, single-threaded state
// machine: it takes events and returns actions, does no I/O and reads no
// clock, so its behaviour is a pure function of the event sequence. The
// driver performs the actions and feeds back their outcomes.
type Scheduler struct {
	plan        *planner.Plan
	maxAttempts int
	concurrency int
	running     int
	inflight    map[attemptRef]bool // attempts launched and not yet reported
	failed      bool
	stagesLeft  int
	stages      []*stageState
}

type stageState struct {
	started  bool
	done     bool
	queue    []pending // tasks waiting for a slot
	attempts []int     // attempts launched per task
	winners  []*TaskResult
	left     int // tasks without a winner
	retries  int
}

type pending struct{ task, attempt int }

// attemptRef names one attempt of a task.
type attemptRef struct {
	TaskRef
	attempt int
}

// NewScheduler returns a scheduler for plan that runs at most concurrency
// attempts at once and tries each task at most maxAttempts times.
func NewScheduler(plan *planner.Plan, concurrency, maxAttempts int) *Scheduler {
	s := &Scheduler{plan: plan, maxAttempts: max(maxAttempts, 1), concurrency: max(concurrency, 1),
		stagesLeft: len(plan.Stages), inflight: map[attemptRef]bool{}}
	for _, st := range plan.Stages {
		s.stages = append(s.stages, &stageState{attempts: make([]int, st.Tasks),
			winners: make([]*TaskResult, st.Tasks), left: st.Tasks})
	}
	return s
}

// Start returns the first actions.
func (s *Scheduler) Start() []Action {
	if s.stagesLeft == 0 {
		return []Action{JobDone{}}
	}
	return s.schedule(nil)
}

// Winner returns the winning result of a task, or nil.
func (s *Scheduler) Winner(r TaskRef) *TaskResult { return s.stages[r.Stage].winners[r.Task] }

// Retries returns how many retries a stage needed.
func (s *Scheduler) Retries(stage int) int { return s.stages[stage].retries }

// Step applies an event and returns the resulting actions. An event for an
// attempt that is not in flight (never launched, or already reported: a
// duplicated event) changes nothing.
func (s *Scheduler) Step(ev Event) []Action {
	var a attemptRef
	switch e := ev.(type) {
	case TaskSucceeded:
		a = attemptRef{e.TaskRef, e.Attempt}
	case TaskFailed:
		a = attemptRef{e.TaskRef, e.Attempt}
	}
	if !s.inflight[a] {
		return nil
	}
	delete(s.inflight, a)
	s.running--
	var out []Action
	switch e := ev.(type) {
	case TaskSucceeded:
		st := s.stages[e.Stage]
		if s.failed || st.winners[e.Task] != nil {
			// A duplicate or late success: the first result won; this
			// attempt's outputs are never committed.
			break
		}
		st.winners[e.Task] = e.Result
		st.left--
		if st.left == 0 {
			st.done = true
			s.stagesLeft--
			out = append(out, StageDone{Stage: e.Stage})
			if s.stagesLeft == 0 {
				return append(out, JobDone{})
			}
		}
	case TaskFailed:
		st := s.stages[e.Stage]
		if s.failed || st.winners[e.Task] != nil {
			break
		}
		if st.attempts[e.Task] >= s.maxAttempts {
			s.failed = true
			stage := s.plan.Stages[e.Stage]
			return []Action{JobFailed{Err: fmt.Errorf("stage %d (%s) task %d failed after %d attempt(s): %w",
				e.Stage, stageLabel(s.plan, stage), e.Task, st.attempts[e.Task], e.Err)}}
		}
		st.retries++
		// Retries go first so a failing task does not wait behind the rest.
		st.queue = append([]pending{{e.Task, st.attempts[e.Task] + 1}}, st.queue...)
	}
	if s.failed {
		return out
	}
	return s.schedule(out)
}

// schedule starts ready stages and fills free slots.
func (s *Scheduler) schedule(out []Action) []Action {
	for i, st := range s.stages {
		if st.started || !s.depsDone(i) {
			continue
		}
		st.started = true
		for t := range st.attempts {
			st.queue = append(st.queue, pending{t, 1})
		}
	}
	for i, st := range s.stages {
		for len(st.queue) > 0 && s.running < s.concurrency {
			p := st.queue[0]
			st.queue = st.queue[1:]
			st.attempts[p.task] = p.attempt
			s.running++
			s.inflight[attemptRef{TaskRef{i, p.task}, p.attempt}] = true
			out = append(out, Invoke{TaskRef: TaskRef{i, p.task}, Attempt: p.attempt})
		}
	}
	return out
}

func (s *Scheduler) depsDone(stage int) bool {
	for _, d := range s.plan.Stages[stage].Deps {
		if !s.stages[d].done {
			return false
		}
	}
	return true
}

// stageLabel names a stage by its input and first operation, e.g.
// "ReadText(books) -> FlatMap(main.words)", or "sampling ReadRecords(in)
// -> Sort" for a sort's sampling stage.
func stageLabel(p *planner.Plan, st planner.Stage) string {
	label := p.Logical.Nodes[st.Source].Label
	if st.Input == planner.FromShuffle {
		label = fmt.Sprintf("shuffle %d: %s", st.Shuffle, label)
	}
	if len(st.Roots) > 0 {
		label += " -> " + p.Logical.Nodes[st.Ops[st.Roots[0]].Node].Label
	}
	if st.Role == planner.Sampling {
		label = "sampling " + label
	}
	return label
}
