package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/galeproject/gale/planner"
)

// testPlan compiles a small plan with five stages:
//
//	0 ReadText(a) -> Map(f)        4 tasks
//	1 FromSlice(b) -> GroupByKey   3 tasks
//	2 shuffle 0 -> Flatten         3 tasks, after 0
//	3 shuffle 1 -> Flatten         3 tasks, after 1
//	4 shuffle 2 -> WriteText(out)  3 tasks, after 2 and 3
func testPlan(t testing.TB) *planner.Plan {
	t.Helper()
	n := func(id int, k planner.Kind, label string, in ...int) planner.Node {
		return planner.Node{ID: id, Kind: k, Label: label, Inputs: in, Kernel: label, Elem: "e", Liftable: k == planner.Combine}
	}
	a := n(0, planner.Source, "ReadText(a)")
	a.Splits = 4
	b := n(3, planner.Source, "FromSlice(b)")
	b.Splits = 3
	p, err := planner.Compile(planner.Logical{Nodes: []planner.Node{
		a, n(1, planner.Narrow, "Map(f)", 0), n(2, planner.Combine, "CountPerElement", 1), b,
		n(4, planner.GroupByKey, "GroupByKey", 3), n(5, planner.Flatten, "Flatten", 2, 4),
		n(6, planner.Combine, "CombinePerKey(c)", 5), n(7, planner.Sink, "WriteText(out)", 6),
		n(8, planner.Sink, "Collect", 1),
	}}, planner.Options{Parallelism: 2, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 5 {
		t.Fatalf("test plan has %d stages, want 5:\n%s", len(p.Stages), p.Explain())
	}
	return p
}

// outcome decides how an attempt ends.
type verdict int

const (
	succeed        verdict = iota
	failRan                // failed; may have run
	failNotStarted         // certainly did not run
)

// sim steps a Scheduler the way the driver does, with a seeded random
// choice of which attempt in flight reports next, and checks the
// scheduler's invariants after every step.
type sim struct {
	t           testing.TB
	plan        *planner.Plan
	s           *Scheduler
	concurrency int
	maxAttempts int
	rng         *rand.Rand
	decide      func(inv Invoke, rng *rand.Rand) verdict
	// dupEvents, when set, is the probability that an event is delivered
	// twice (a success the second time with another result), to check
	// that the copy changes nothing.
	dupEvents float64

	inflight  []Invoke
	attempts  map[TaskRef]int          // highest attempt launched
	results   map[TaskRef]*TaskResult  // first success reported
	failures  map[TaskRef]int          // failures reported
	stageDone map[int]bool             // StageDone seen
	lastErr   map[TaskRef]error        // last failure reported
	sent      map[*TaskResult]struct{} // results handed to Step
	maxSeen   int                      // most attempts in flight at once
	jobDone   bool
	jobFailed error
	log       []string
}

func newSim(t testing.TB, plan *planner.Plan, concurrency, maxAttempts int, seed uint64) *sim {
	return &sim{t: t, plan: plan, s: NewScheduler(plan, concurrency, maxAttempts), concurrency: concurrency,
		maxAttempts: maxAttempts, rng: rand.New(rand.NewPCG(seed, 99)),
		decide:   func(Invoke, *rand.Rand) verdict { return succeed },
		attempts: map[TaskRef]int{}, results: map[TaskRef]*TaskResult{}, failures: map[TaskRef]int{},
		stageDone: map[int]bool{}, lastErr: map[TaskRef]error{}, sent: map[*TaskResult]struct{}{}}
}

func (m *sim) fatalf(format string, args ...any) {
	m.t.Helper()
	tail := m.log
	if len(tail) > 20 {
		tail = tail[len(tail)-20:]
	}
	m.t.Fatalf(format+"\nlast steps:\n  %s", append(args, strings.Join(tail, "\n  "))...)
}

// apply checks and records actions.
func (m *sim) apply(actions []Action) {
	m.t.Helper()
	for _, a := range actions {
		if m.jobDone || m.jobFailed != nil {
			m.fatalf("action %#v after the job ended", a)
		}
		switch a := a.(type) {
		case Invoke:
			m.log = append(m.log, fmt.Sprintf("invoke s%d t%d a%d", a.Stage, a.Task, a.Attempt))
			for _, d := range m.plan.Stages[a.Stage].Deps {
				if !m.stageDone[d] {
					m.fatalf("stage %d task %d started before stage %d, which it depends on, was done", a.Stage, a.Task, d)
				}
			}
			if m.results[a.TaskRef] != nil {
				m.fatalf("task %v relaunched after it succeeded", a.TaskRef)
			}
			if want := m.attempts[a.TaskRef] + 1; a.Attempt != want {
				m.fatalf("task %v launched attempt %d, want %d", a.TaskRef, a.Attempt, want)
			}
			for _, o := range m.inflight {
				if o.TaskRef == a.TaskRef {
					m.fatalf("task %v has two attempts in flight", a.TaskRef)
				}
			}
			if a.Attempt > m.maxAttempts {
				m.fatalf("task %v launched attempt %d, more than MaxAttempts %d", a.TaskRef, a.Attempt, m.maxAttempts)
			}
			m.attempts[a.TaskRef] = a.Attempt
			m.inflight = append(m.inflight, a)
			m.maxSeen = max(m.maxSeen, len(m.inflight))
			if len(m.inflight) > m.concurrency {
				m.fatalf("%d attempts in flight, concurrency is %d", len(m.inflight), m.concurrency)
			}
		case StageDone:
			m.log = append(m.log, fmt.Sprintf("stage %d done", a.Stage))
			if m.stageDone[a.Stage] {
				m.fatalf("stage %d reported done twice", a.Stage)
			}
			for tk := range m.plan.Stages[a.Stage].Tasks {
				if m.results[TaskRef{a.Stage, tk}] == nil {
					m.fatalf("stage %d done but task %d has not succeeded", a.Stage, tk)
				}
			}
			m.stageDone[a.Stage] = true
		case JobDone:
			m.log = append(m.log, "job done")
			if len(m.stageDone) != len(m.plan.Stages) {
				m.fatalf("job done with %d of %d stages done", len(m.stageDone), len(m.plan.Stages))
			}
			if len(m.inflight) != 0 {
				m.fatalf("job done with %d attempts in flight", len(m.inflight))
			}
			m.jobDone = true
		case JobFailed:
			m.log = append(m.log, "job failed: "+a.Err.Error())
			if a.Err == nil {
				m.fatalf("JobFailed without an error")
			}
			m.jobFailed = a.Err
		default:
			m.fatalf("unknown action %#v", a)
		}
	}
}

// run drives the scheduler until no attempt is in flight.
func (m *sim) run() {
	m.t.Helper()
	m.apply(m.s.Start())
	for len(m.inflight) > 0 {
		i := m.rng.IntN(len(m.inflight))
		inv := m.inflight[i]
		m.inflight = append(m.inflight[:i], m.inflight[i+1:]...)
		var ev Event
		switch m.decide(inv, m.rng) {
		case succeed:
			r := &TaskResult{Instance: fmt.Sprintf("s%d-t%d-a%d", inv.Stage, inv.Task, inv.Attempt)}
			m.sent[r] = struct{}{}
			ev = TaskSucceeded{TaskRef: inv.TaskRef, Attempt: inv.Attempt, Result: r}
			if m.results[inv.TaskRef] == nil && m.jobFailed == nil {
				m.results[inv.TaskRef] = r
			}
			m.log = append(m.log, fmt.Sprintf("success s%d t%d a%d", inv.Stage, inv.Task, inv.Attempt))
		case failRan, failNotStarted:
			err := fmt.Errorf("attempt s%d t%d a%d: %w", inv.Stage, inv.Task, inv.Attempt, errInjected)
			ns := m.decide(inv, m.rng) == failNotStarted
			ev = TaskFailed{TaskRef: inv.TaskRef, Attempt: inv.Attempt, Err: err, NotStarted: ns}
			m.failures[inv.TaskRef]++
			m.lastErr[inv.TaskRef] = err
			m.log = append(m.log, fmt.Sprintf("failure s%d t%d a%d not-started=%v", inv.Stage, inv.Task, inv.Attempt, ns))
		}
		acts := m.s.Step(ev)
		if m.jobFailed != nil && len(acts) > 0 {
			m.fatalf("late event after JobFailed produced actions %v", acts)
		}
		m.apply(acts)
		if m.dupEvents > 0 && m.rng.Float64() < m.dupEvents {
			m.log = append(m.log, "the same event again")
			if e, ok := ev.(TaskSucceeded); ok {
				e.Result = &TaskResult{Instance: "duplicate"}
				ev = e
			}
			if acts := m.s.Step(ev); len(acts) > 0 {
				m.fatalf("a duplicated event produced actions %v", acts)
			}
		}
		m.checkWinners()
	}
}

var errInjected = errors.New("injected failure")

// checkWinners checks that every task's winner is its first success.
func (m *sim) checkWinners() {
	m.t.Helper()
	for ref, r := range m.results {
		if w := m.s.Winner(ref); w != r {
			m.fatalf("task %v: winner %v, want the first success %v", ref, w, r)
		}
	}
}

func TestSchedulerAllSucceed(t *testing.T) {
	plan := testPlan(t)
	for _, conc := range []int{1, 2, 3, 7, 100} {
		for seed := range uint64(20) {
			m := newSim(t, plan, conc, 3, seed)
			m.run()
			if !m.jobDone || m.jobFailed != nil {
				t.Fatalf("concurrency %d seed %d: job did not finish (failed: %v)", conc, seed, m.jobFailed)
			}
			total := 0
			for _, st := range plan.Stages {
				total += st.Tasks
				if r := m.s.Retries(st.ID); r != 0 {
					t.Errorf("stage %d: %d retries without failures", st.ID, r)
				}
			}
			if len(m.attempts) != total {
				t.Errorf("%d tasks launched, want %d", len(m.attempts), total)
			}
			if want := min(conc, 7); m.maxSeen != want {
				// Stages 0 and 1 together have 7 tasks ready at once.
				t.Errorf("concurrency %d: at most %d attempts in flight, want %d", conc, m.maxSeen, want)
			}
		}
	}
}

func TestSchedulerRetriesUntilSuccess(t *testing.T) {
	plan := testPlan(t)
	for seed := range uint64(50) {
		m := newSim(t, plan, 4, 5, seed)
		// Every task fails its first attempts (up to three), with both
		// kinds of failure.
		fails := map[TaskRef]int{}
		m.decide = func(inv Invoke, rng *rand.Rand) verdict {
			if _, ok := fails[inv.TaskRef]; !ok {
				fails[inv.TaskRef] = 1 + int(uint64(inv.Stage*7+inv.Task)*(seed+1)%3)
			}
			if inv.Attempt <= fails[inv.TaskRef] {
				if (inv.Task+inv.Attempt)%2 == 0 {
					return failNotStarted
				}
				return failRan
			}
			return succeed
		}
		m.run()
		if !m.jobDone {
			t.Fatalf("seed %d: job did not finish: %v", seed, m.jobFailed)
		}
		for _, st := range plan.Stages {
			want := 0
			for tk := range st.Tasks {
				ref := TaskRef{st.ID, tk}
				want += fails[ref]
				if got := m.attempts[ref]; got != fails[ref]+1 {
					t.Errorf("seed %d task %v: %d attempts, want %d", seed, ref, got, fails[ref]+1)
				}
				if w := m.s.Winner(ref); w == nil || w.Instance != fmt.Sprintf("s%d-t%d-a%d", st.ID, tk, fails[ref]+1) {
					t.Errorf("seed %d task %v: winner %+v", seed, ref, w)
				}
			}
			if got := m.s.Retries(st.ID); got != want {
				t.Errorf("seed %d stage %d: %d retries, want %d", seed, st.ID, got, want)
			}
		}
	}
}

func TestSchedulerFailsAfterMaxAttempts(t *testing.T) {
	plan := testPlan(t)
	for _, tc := range []struct {
		bad         TaskRef
		maxAttempts int
		notStarted  bool
	}{
		{TaskRef{0, 2}, 3, false},
		{TaskRef{3, 1}, 1, true},
		{TaskRef{4, 0}, 4, false},
		{TaskRef{1, 2}, 2, true},
	} {
		for seed := range uint64(10) {
			m := newSim(t, plan, 3, tc.maxAttempts, seed)
			m.decide = func(inv Invoke, rng *rand.Rand) verdict {
				if inv.TaskRef == tc.bad {
					if tc.notStarted {
						return failNotStarted
					}
					return failRan
				}
				return succeed
			}
			m.run()
			if m.jobDone || m.jobFailed == nil {
				t.Fatalf("%+v seed %d: job did not fail", tc, seed)
			}
			if got := m.attempts[tc.bad]; got != tc.maxAttempts {
				t.Errorf("%+v: %d attempts, want %d", tc, got, tc.maxAttempts)
			}
			msg := m.jobFailed.Error()
			label := stageLabel(plan, plan.Stages[tc.bad.Stage])
			want := fmt.Sprintf("stage %d (%s) task %d failed after %d attempt(s)", tc.bad.Stage, label, tc.bad.Task, tc.maxAttempts)
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
			if !errors.Is(m.jobFailed, errInjected) || !errors.Is(m.jobFailed, m.lastErr[tc.bad]) {
				t.Errorf("error %v does not wrap the last attempt's error", m.jobFailed)
			}
			// No stage that depends on the failed one ever started.
			for _, st := range plan.Stages {
				if m.stageDone[tc.bad.Stage] {
					t.Errorf("the failed stage %d was reported done", tc.bad.Stage)
				}
				for _, d := range st.Deps {
					if d == tc.bad.Stage && m.attempts[TaskRef{st.ID, 0}] > 0 {
						t.Errorf("stage %d started although stage %d failed", st.ID, d)
					}
				}
			}
		}
	}
}

func TestSchedulerRandomOutcomes(t *testing.T) {
	plan := testPlan(t)
	done, failed := 0, 0
	for seed := range uint64(300) {
		conc := 1 + int(seed%6)
		maxAttempts := 1 + int(seed%4)
		m := newSim(t, plan, conc, maxAttempts, seed)
		m.decide = func(inv Invoke, rng *rand.Rand) verdict {
			switch u := rng.Float64(); {
			case u < 0.15:
				return failRan
			case u < 0.3:
				return failNotStarted
			}
			return succeed
		}
		m.run()
		switch {
		case m.jobDone:
			done++
			for ref := range m.attempts {
				if m.s.Winner(ref) == nil {
					t.Errorf("seed %d: job done but task %v has no winner", seed, ref)
				}
			}
		case m.jobFailed != nil:
			failed++
			// The failure names a task whose every attempt failed.
			var culprit *TaskRef
			for ref, n := range m.failures {
				if n == maxAttempts && m.results[ref] == nil {
					want := fmt.Sprintf("stage %d (%s) task %d failed after %d attempt(s)", ref.Stage,
						stageLabel(plan, plan.Stages[ref.Stage]), ref.Task, maxAttempts)
					if strings.Contains(m.jobFailed.Error(), want) {
						culprit = &ref
					}
				}
			}
			if culprit == nil {
				t.Errorf("seed %d: failure %q names no task that failed %d times", seed, m.jobFailed, maxAttempts)
			}
		default:
			t.Fatalf("seed %d: the scheduler stopped with the job neither done nor failed", seed)
		}
	}
	if done == 0 || failed == 0 {
		t.Errorf("%d jobs done and %d failed: the scenarios do not cover both outcomes", done, failed)
	}
}

func TestSchedulerIgnoresDuplicateEvents(t *testing.T) {
	plan := testPlan(t)
	for seed := range uint64(50) {
		m := newSim(t, plan, 3, 3, seed)
		m.dupEvents = 0.5
		// Each task fails its first attempt, so failures are duplicated
		// too.
		m.decide = func(inv Invoke, rng *rand.Rand) verdict {
			if inv.Attempt == 1 {
				return failRan
			}
			return succeed
		}
		m.run()
		if !m.jobDone {
			t.Fatalf("seed %d: job did not finish: %v", seed, m.jobFailed)
		}
		for _, st := range plan.Stages {
			if got := m.s.Retries(st.ID); got != st.Tasks {
				t.Errorf("seed %d stage %d: %d retries, want %d (one per task)", seed, st.ID, got, st.Tasks)
			}
		}
	}
}

func TestSchedulerIgnoresEventsOfUnknownAttempts(t *testing.T) {
	plan := testPlan(t)
	s := NewScheduler(plan, 2, 3)
	s.Start()
	for _, ev := range []Event{
		TaskSucceeded{TaskRef: TaskRef{0, 3}, Attempt: 1, Result: &TaskResult{}}, // not launched yet
		TaskSucceeded{TaskRef: TaskRef{0, 0}, Attempt: 2, Result: &TaskResult{}}, // no such attempt
		TaskFailed{TaskRef: TaskRef{4, 0}, Attempt: 1, Err: errInjected},         // stage not started
		TaskFailed{TaskRef: TaskRef{9, 9}, Attempt: 1, Err: errInjected},         // no such stage
	} {
		if acts := s.Step(ev); len(acts) != 0 {
			t.Errorf("Step(%+v) = %v, want no actions", ev, acts)
		}
	}
	if w := s.Winner(TaskRef{0, 3}); w != nil {
		t.Errorf("an event for an attempt never launched made a winner: %+v", w)
	}
}

func TestSchedulerIsDeterministic(t *testing.T) {
	plan := testPlan(t)
	var logs []string
	for range 3 {
		m := newSim(t, plan, 3, 4, 7)
		m.decide = func(inv Invoke, rng *rand.Rand) verdict {
			if rng.IntN(4) == 0 {
				return failRan
			}
			return succeed
		}
		m.run()
		logs = append(logs, strings.Join(m.log, "\n"))
	}
	if logs[0] != logs[1] || logs[1] != logs[2] {
		t.Error("the same event sequence produced different actions")
	}
}

func TestSchedulerEmptyPlan(t *testing.T) {
	s := NewScheduler(&planner.Plan{}, 1, 1)
	acts := s.Start()
	if len(acts) != 1 {
		t.Fatalf("Start = %v, want [JobDone]", acts)
	}
	if _, ok := acts[0].(JobDone); !ok {
		t.Fatalf("Start = %v, want [JobDone]", acts)
	}
}
