package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

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

// Tick tells the scheduler that time has passed: Now is the driver's
// clock. The scheduler reads no clock of its own; it measures attempts
// (how long they run, when they time out, when they straggle) against the
// latest Tick, so a driver feeds one before Start, before every other
// event and periodically while nothing else happens.
type Tick struct{ Now time.Time }

func (TaskSucceeded) isEvent() {}
func (TaskFailed) isEvent()    {}
func (Tick) isEvent()          {}

// Action is an output of the Scheduler.
type Action interface{ isAction() }

// Invoke asks the driver to run an attempt of a task. Backup marks a
// speculative attempt launched beside a straggling one; Reason says why.
type Invoke struct {
	TaskRef
	Attempt int
	Backup  bool
	Reason  string
}

// Cancel asks the driver to abandon an attempt in flight: cancel it where
// the backend can, and ignore it where it cannot. Whatever the attempt
// reports later only frees its slot; its outputs are never committed.
// TimedOut tells a deadline passed (the scheduler has already counted it
// as a failure and queued a retry); otherwise another attempt of the task
// won.
type Cancel struct {
	TaskRef
	Attempt  int
	TimedOut bool
	Reason   string
}

// StageDone reports that every task of a stage has a winning attempt.
type StageDone struct{ Stage int }

// JobDone reports that every stage is done.
type JobDone struct{}

// JobFailed reports that the job cannot finish.
type JobFailed struct{ Err error }

func (Invoke) isAction()    {}
func (Cancel) isAction()    {}
func (StageDone) isAction() {}
func (JobDone) isAction()   {}
func (JobFailed) isAction() {}

// ErrTaskTimeout is wrapped by the failure of an attempt the scheduler
// abandoned because it ran past its deadline.
var ErrTaskTimeout = errors.New("engine: task timed out")

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Concurrency bounds the attempts in flight, backups and abandoned
	// attempts that have not reported yet included. Default 1.
	Concurrency int
	// MaxAttempts bounds the failed attempts per task (a timed-out one
	// counts; an attempt that lost to another does not). Default 1.
	MaxAttempts int
	// TaskTimeout abandons an attempt that has run this long and retries
	// the task (the function platform's own limit, or an override). Zero
	// means no fixed limit.
	TaskTimeout time.Duration
	// GangTimeout replaces TaskTimeout for tasks that wait for each other
	// (an iterate stage's workers), which may run for many rounds. Zero
	// means no limit.
	GangTimeout time.Duration
	// Speculation configures backup attempts for stragglers and the
	// deadline derived from a stage's observed task durations.
	Speculation Speculation
}

// Speculation configures backup tasks (MapReduce's backup tasks, Spark's
// speculation) and the adaptive deadline. Both use a stage's median
// duration of finished tasks, so both wait until Quantile of the stage's
// tasks have finished; a task far slower than that median (EarlyMultiplier
// times) gets its backup sooner, once EarlyQuantile have finished, so that
// a straggler of the stage's first wave does not hold its slot until most
// of the stage is done. Neither applies to tasks that wait for each other
// (an iterate stage's workers): a copy of one would never meet the others
// at their barriers.
type Speculation struct {
	// Off disables backup attempts. The adaptive deadline still applies.
	Off bool
	// Quantile is the share of a stage's tasks that must have finished
	// before backups are considered, in (0, 1]. Default 0.75 (Spark's).
	Quantile float64
	// Multiplier: an attempt running longer than Multiplier times the
	// stage's median is a straggler. Default 1.5 (Spark's).
	Multiplier float64
	// EarlyQuantile is the share of a stage's tasks that must have
	// finished before an attempt running EarlyMultiplier times their
	// median gets a backup, in (0, Quantile]. Default 0.25.
	EarlyQuantile float64
	// EarlyMultiplier: before Quantile of the stage has finished, an
	// attempt running longer than EarlyMultiplier times the median of the
	// finished tasks is a straggler. The finished tasks are the fastest so
	// far, so their median is low; hence a larger multiple than
	// Multiplier. Default 3; negative disables early backups.
	EarlyMultiplier float64
	// MinRuntime is the least an attempt runs before it can be a
	// straggler, so that stages of very short tasks, whose durations
	// scatter, do not launch backups. Default 100ms (Spark's
	// spark.speculation.minTaskRuntime).
	MinRuntime time.Duration
	// TimeoutMultiplier: an attempt running longer than TimeoutMultiplier
	// times the stage's median (and at least MinTimeout) is hung; it is
	// abandoned and retried. Default 10; negative disables the adaptive
	// deadline.
	TimeoutMultiplier float64
	// MinTimeout is the least the adaptive deadline allows. Default 1m.
	MinTimeout time.Duration
	// IgnoreEmpty leaves out of a stage's median the tasks that read no
	// records (Metrics.RecordsIn is 0), whose durations say nothing about
	// the others'. Front ends whose partitions are often empty set it
	// (the Beam runner: a redistribution of one file's restriction gives
	// one task all the work and the others none).
	IgnoreEmpty bool
}

// DefaultSpeculation returns the default settings, spelled out.
func DefaultSpeculation() Speculation {
	return Speculation{Quantile: 0.75, Multiplier: 1.5, EarlyQuantile: 0.25, EarlyMultiplier: 3,
		MinRuntime: 100 * time.Millisecond, TimeoutMultiplier: 10, MinTimeout: time.Minute}
}

// withDefaults fills zero fields with the defaults.
func (sp Speculation) withDefaults() Speculation {
	d := DefaultSpeculation()
	if sp.Quantile == 0 {
		sp.Quantile = d.Quantile
	}
	if sp.Multiplier == 0 {
		sp.Multiplier = d.Multiplier
	}
	if sp.EarlyQuantile == 0 {
		sp.EarlyQuantile = min(d.EarlyQuantile, sp.Quantile)
	}
	if sp.EarlyMultiplier == 0 {
		sp.EarlyMultiplier = d.EarlyMultiplier
	}
	if sp.MinRuntime == 0 {
		sp.MinRuntime = d.MinRuntime
	}
	if sp.TimeoutMultiplier == 0 {
		sp.TimeoutMultiplier = d.TimeoutMultiplier
	}
	if sp.MinTimeout == 0 {
		sp.MinTimeout = d.MinTimeout
	}
	return sp
}

// Validate reports every problem with sp.
func (sp Speculation) Validate() error {
	var errs []error
	if !(sp.Quantile >= 0 && sp.Quantile <= 1) {
		errs = append(errs, fmt.Errorf("engine: Speculation.Quantile is %v; must be in (0, 1] (0 for the default %v)", sp.Quantile, DefaultSpeculation().Quantile))
	}
	if sp.Multiplier != 0 && !(sp.Multiplier >= 1) {
		errs = append(errs, fmt.Errorf("engine: Speculation.Multiplier is %v; must be at least 1 (0 for the default %v)", sp.Multiplier, DefaultSpeculation().Multiplier))
	}
	if !(sp.EarlyQuantile >= 0 && sp.EarlyQuantile <= 1) || sp.Quantile > 0 && sp.EarlyQuantile > sp.Quantile {
		errs = append(errs, fmt.Errorf("engine: Speculation.EarlyQuantile is %v; must be in (0, Quantile] (0 for the default %v)", sp.EarlyQuantile, DefaultSpeculation().EarlyQuantile))
	}
	if sp.EarlyMultiplier > 0 && sp.EarlyMultiplier < 1 || sp.EarlyMultiplier != sp.EarlyMultiplier {
		errs = append(errs, fmt.Errorf("engine: Speculation.EarlyMultiplier is %v; must be at least 1, 0 for the default or negative for no early backups", sp.EarlyMultiplier))
	}
	if sp.TimeoutMultiplier > 0 && sp.TimeoutMultiplier < 1 || sp.TimeoutMultiplier != sp.TimeoutMultiplier {
		errs = append(errs, fmt.Errorf("engine: Speculation.TimeoutMultiplier is %v; must be at least 1, 0 for the default or negative for none", sp.TimeoutMultiplier))
	}
	if sp.MinRuntime < 0 || sp.MinTimeout < 0 {
		errs = append(errs, errors.New("engine: Speculation.MinRuntime and MinTimeout must not be negative"))
	}
	return errors.Join(errs...)
}

// SpeculationStats counts what the scheduler did about slow attempts.
type SpeculationStats struct {
	// Backups counts backup attempts launched; BackupsWon those that
	// finished before the attempt they backed up.
	Backups, BackupsWon int
	// TimedOut counts attempts abandoned at their deadline.
	TimedOut int
}

// Scheduler is the job coordinator's deterministic, single-threaded state
// machine: it takes events and returns actions, does no I/O and reads no
// clock (time arrives as Tick events), so its behaviour is a pure function
// of the event sequence. The driver performs the actions and feeds back
// their outcomes.
type Scheduler struct {
	graph       TaskGraph
	cfg         SchedulerConfig
	now         time.Time
	running     int
	inflight    map[attemptRef]bool // attempts launched and not yet reported
	abandoned   map[attemptRef]bool // in flight, but cancelled: can never win
	failed      bool
	stagesLeft  int
	stages      []*stageState
	stats       SpeculationStats
	stageStats  []SpeculationStats
	startedOnce bool
	scratch     []int // tick's copy of a stage's running tasks
}

type stageState struct {
	started  bool
	done     bool
	queue    []pending // tasks waiting for a slot
	attempts []int     // highest attempt launched per task
	failures []int     // failed attempts per task
	live     [][]liveAttempt
	// running lists, in ascending order, the tasks with attempts in
	// live: a tick visits these (at most Concurrency) rather than every
	// task of the stage, so a stage of n tasks costs O(n) ticks of
	// O(Concurrency) each, not O(n²).
	running   []int
	backedUp  []bool // a backup was launched for the task
	winners   []*TaskResult
	winnerA   []int           // the winning attempt per task
	durations []time.Duration // of the winning attempts, sorted
	left      int             // tasks without a winner
	retries   int
}

type pending struct {
	task, attempt int
	backup        bool
	reason        string
}

// liveAttempt is an attempt in flight that may still win.
type liveAttempt struct {
	attempt int
	start   time.Time
	backup  bool
}

// attemptRef names one attempt of a task.
type attemptRef struct {
	TaskRef
	attempt int
}

// NewScheduler returns a scheduler for plan that runs at most concurrency
// attempts at once and tries each task at most maxAttempts times, with no
// deadlines and no backups.
func NewScheduler(plan *planner.Plan, concurrency, maxAttempts int) *Scheduler {
	return NewSchedulerConfig(plan, SchedulerConfig{Concurrency: concurrency, MaxAttempts: maxAttempts,
		Speculation: Speculation{Off: true, TimeoutMultiplier: -1}})
}

// NewSchedulerConfig returns a scheduler for plan configured by cfg:
// NewGraphScheduler(PlanGraph(plan), cfg).
func NewSchedulerConfig(plan *planner.Plan, cfg SchedulerConfig) *Scheduler {
	return NewGraphScheduler(PlanGraph(plan), cfg)
}

// NewGraphScheduler returns a scheduler for the task graph g configured
// by cfg; zero fields of cfg.Speculation take their defaults. cfg must be
// valid (SchedulerConfig.Speculation.Validate).
func NewGraphScheduler(g TaskGraph, cfg SchedulerConfig) *Scheduler {
	cfg.Concurrency, cfg.MaxAttempts = max(cfg.Concurrency, 1), max(cfg.MaxAttempts, 1)
	cfg.Speculation = cfg.Speculation.withDefaults()
	s := &Scheduler{graph: g, cfg: cfg, stagesLeft: len(g.Stages), inflight: map[attemptRef]bool{},
		abandoned: map[attemptRef]bool{}, stageStats: make([]SpeculationStats, len(g.Stages))}
	for _, st := range g.Stages {
		n := st.Tasks
		s.stages = append(s.stages, &stageState{attempts: make([]int, n), failures: make([]int, n),
			live: make([][]liveAttempt, n), backedUp: make([]bool, n), winners: make([]*TaskResult, n),
			winnerA: make([]int, n), left: n})
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

// WinningAttempt returns the attempt number of a task's winner, or 0.
func (s *Scheduler) WinningAttempt(r TaskRef) int { return s.stages[r.Stage].winnerA[r.Task] }

// Retries returns how many retries a stage needed.
func (s *Scheduler) Retries(stage int) int { return s.stages[stage].retries }

// Stats returns the job's backup and timeout counts so far.
func (s *Scheduler) Stats() SpeculationStats { return s.stats }

// Failed reports whether the scheduler has failed the job (it returned
// JobFailed).
func (s *Scheduler) Failed() bool { return s.failed }

// StagesLeft returns how many stages are not done yet.
func (s *Scheduler) StagesLeft() int { return s.stagesLeft }

// StageStats returns one stage's backup and timeout counts so far.
func (s *Scheduler) StageStats(stage int) SpeculationStats { return s.stageStats[stage] }

// Step applies an event and returns the resulting actions. An event for an
// attempt that is not in flight (never launched, or already reported: a
// duplicated event) changes nothing; that of an abandoned attempt only
// frees its slot.
func (s *Scheduler) Step(ev Event) []Action {
	if t, ok := ev.(Tick); ok {
		return s.tick(t.Now)
	}
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
	if s.abandoned[a] {
		delete(s.abandoned, a)
		if s.failed {
			return nil
		}
		return s.schedule(nil)
	}
	st := s.stages[a.Stage]
	start, backup := st.dropLive(a.Task, a.attempt)
	var out []Action
	switch e := ev.(type) {
	case TaskSucceeded:
		if s.failed || st.winners[e.Task] != nil {
			// A duplicate or late success: the first result won; this
			// attempt's outputs are never committed.
			break
		}
		st.winners[e.Task], st.winnerA[e.Task] = e.Result, e.Attempt
		if !s.cfg.Speculation.IgnoreEmpty || e.Result == nil || e.Result.Metrics.RecordsIn > 0 {
			d := s.now.Sub(start)
			i := sort.Search(len(st.durations), func(i int) bool { return st.durations[i] >= d })
			st.durations = slices.Insert(st.durations, i, d)
		}
		if backup {
			s.stats.BackupsWon++
			s.stageStats[e.Stage].BackupsWon++
		}
		// The other attempts of the task lost: abandon them.
		for _, l := range st.live[e.Task] {
			s.abandoned[attemptRef{e.TaskRef, l.attempt}] = true
			out = append(out, Cancel{TaskRef: e.TaskRef, Attempt: l.attempt,
				Reason: fmt.Sprintf("attempt %d finished first", e.Attempt)})
		}
		st.live[e.Task] = nil
		st.track(e.Task)
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
		if s.failed || st.winners[e.Task] != nil {
			break
		}
		if f := s.attemptFailed(e.TaskRef, e.Err); f != nil {
			return []Action{f}
		}
	}
	if s.failed {
		return out
	}
	return s.schedule(out)
}

// attemptFailed counts a failed attempt of a task without a winner. While
// another attempt of the task runs, that one may still win; otherwise the
// task is retried first, so a failing task does not wait behind the rest,
// or, past MaxAttempts, the job fails.
func (s *Scheduler) attemptFailed(r TaskRef, err error) Action {
	st := s.stages[r.Stage]
	st.failures[r.Task]++
	if len(st.live[r.Task]) > 0 {
		return nil
	}
	if st.failures[r.Task] >= s.cfg.MaxAttempts {
		s.failed = true
		return JobFailed{Err: fmt.Errorf("stage %d (%s) task %d failed after %d attempt(s): %w",
			r.Stage, s.graph.Stages[r.Stage].Label, r.Task, st.attempts[r.Task], err)}
	}
	st.retries++
	st.queue = append([]pending{{task: r.Task, attempt: st.attempts[r.Task] + 1}}, st.queue...)
	return nil
}

// dropLive removes an attempt from its task's live list and returns when
// it started and whether it was a backup.
func (st *stageState) dropLive(task, attempt int) (time.Time, bool) {
	for i, l := range st.live[task] {
		if l.attempt == attempt {
			st.live[task] = slices.Delete(st.live[task], i, i+1)
			st.track(task)
			return l.start, l.backup
		}
	}
	return time.Time{}, false
}

// track keeps task in running exactly while it has live attempts.
func (st *stageState) track(task int) {
	i, found := slices.BinarySearch(st.running, task)
	switch live := len(st.live[task]) > 0; {
	case live && !found:
		st.running = slices.Insert(st.running, i, task)
	case !live && found:
		st.running = slices.Delete(st.running, i, i+1)
	}
}

// median returns the median duration of a stage's finished tasks, and
// whether enough of them (Speculation.Quantile) have finished to trust it
// (ok), or only enough for an early backup (Speculation.EarlyQuantile).
func (s *Scheduler) median(stage int) (med time.Duration, ok, early bool) {
	st := s.stages[stage]
	n := s.graph.Stages[stage].Tasks
	sp := s.cfg.Speculation
	if len(st.durations) == 0 {
		return 0, false, false
	}
	med = st.durations[len(st.durations)/2]
	if len(st.durations) >= max(1, int(sp.Quantile*float64(n))) {
		return med, true, false
	}
	return med, false, sp.EarlyMultiplier > 0 && len(st.durations) >= max(1, int(sp.EarlyQuantile*float64(n)))
}

// tick advances the scheduler's time to now: attempts past their deadline
// are abandoned and retried, and stragglers get a backup attempt.
func (s *Scheduler) tick(now time.Time) []Action {
	if now.After(s.now) {
		s.now = now
	}
	if s.failed || !s.startedOnce {
		return nil
	}
	sp := s.cfg.Speculation
	var out []Action
	for si, st := range s.stages {
		if !st.started || st.done {
			continue
		}
		med, ok, early := s.median(si)
		if s.graph.Stages[si].Gang {
			ok, early = false, false
		}
		limit := s.cfg.TaskTimeout
		if s.graph.Stages[si].Gang {
			limit = s.cfg.GangTimeout
		}
		if ok && sp.TimeoutMultiplier > 0 {
			adaptive := max(time.Duration(sp.TimeoutMultiplier*float64(med)), sp.MinTimeout)
			if limit == 0 || adaptive < limit {
				limit = adaptive
			}
		}
		s.scratch = append(s.scratch[:0], st.running...)
		for _, t := range s.scratch {
			if st.winners[t] != nil {
				continue
			}
			for i := 0; i < len(st.live[t]); i++ {
				l := st.live[t][i]
				ran := s.now.Sub(l.start)
				if limit <= 0 || ran <= limit {
					continue
				}
				ref := TaskRef{si, t}
				st.live[t] = slices.Delete(st.live[t], i, i+1)
				st.track(t)
				i--
				s.abandoned[attemptRef{ref, l.attempt}] = true
				s.stats.TimedOut++
				s.stageStats[si].TimedOut++
				why := fmt.Sprintf("ran %s, past its deadline of %s", ran, limit)
				out = append(out, Cancel{TaskRef: ref, Attempt: l.attempt, TimedOut: true, Reason: why})
				if f := s.attemptFailed(ref, fmt.Errorf("attempt %d %s: %w", l.attempt, why, ErrTaskTimeout)); f != nil {
					return append(out, f)
				}
			}
			if sp.Off || !ok && !early || st.backedUp[t] || len(st.live[t]) != 1 {
				continue
			}
			l := st.live[t][0]
			ran := s.now.Sub(l.start)
			mult := sp.Multiplier
			if !ok {
				mult = sp.EarlyMultiplier
			}
			if ran <= max(time.Duration(mult*float64(med)), sp.MinRuntime) {
				continue
			}
			st.backedUp[t] = true
			st.queue = append(st.queue, pending{task: t, backup: true,
				reason: fmt.Sprintf("attempt %d has run %s, the stage's median is %s", l.attempt, ran, med)})
		}
	}
	return s.schedule(out)
}

// schedule starts ready stages and fills free slots.
func (s *Scheduler) schedule(out []Action) []Action {
	s.startedOnce = true
	for i, st := range s.stages {
		if st.started || !s.depsDone(i) {
			continue
		}
		st.started = true
		for t := range st.attempts {
			st.queue = append(st.queue, pending{task: t, attempt: 1})
		}
	}
	for i, st := range s.stages {
		for len(st.queue) > 0 && s.running < s.cfg.Concurrency {
			p := st.queue[0]
			st.queue = st.queue[1:]
			if p.backup {
				if st.winners[p.task] != nil || len(st.live[p.task]) == 0 {
					continue // the task finished, or failed and is retried, before the backup got a slot
				}
				p.attempt = st.attempts[p.task] + 1
				s.stats.Backups++
				s.stageStats[i].Backups++
			}
			st.attempts[p.task] = p.attempt
			s.running++
			ref := TaskRef{i, p.task}
			s.inflight[attemptRef{ref, p.attempt}] = true
			st.live[p.task] = append(st.live[p.task], liveAttempt{attempt: p.attempt, start: s.now, backup: p.backup})
			st.track(p.task)
			out = append(out, Invoke{TaskRef: ref, Attempt: p.attempt, Backup: p.backup, Reason: p.reason})
		}
	}
	return out
}

func (s *Scheduler) depsDone(stage int) bool {
	for _, d := range s.graph.Stages[stage].Deps {
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
