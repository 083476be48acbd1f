package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSchedulerRandomStragglers drives the scheduler on a virtual clock
// with seeded task durations (some attempts straggle ten times, some first
// attempts hang) and checks its invariants after every step: the
// concurrency cap holds with backups and abandoned attempts counted, a
// task never has more than two attempts that may win, an abandoned attempt
// never wins, every task's winner is its first answer among the attempts
// not abandoned, and the job finishes (the losers it cancelled in its last
// step answer after JobDone, changing nothing).
func TestSchedulerRandomStragglers(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runRandomStragglers(t, seed)
		})
	}
}

func runRandomStragglers(t *testing.T, seed uint64) {
	plan := testPlan(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	conc := 1 + rng.IntN(8)
	s := NewSchedulerConfig(plan, SchedulerConfig{Concurrency: conc, MaxAttempts: 3, TaskTimeout: time.Minute,
		Speculation: Speculation{Off: seed%5 == 0}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type flight struct {
		inv       Invoke
		end       time.Time // zero: hangs
		abandoned bool
	}
	var inflight []*flight
	winners := map[TaskRef]int{}
	lastAttempt := map[TaskRef]int{}
	done := false
	check := func(actions []Action) {
		t.Helper()
		checkRunningIndex(t, s)
		for _, a := range actions {
			switch a := a.(type) {
			case Invoke:
				if done {
					t.Fatalf("seed %d: invoke after the job ended", seed)
				}
				if a.Attempt != lastAttempt[a.TaskRef]+1 {
					t.Fatalf("seed %d: %v attempt %d after %d", seed, a.TaskRef, a.Attempt, lastAttempt[a.TaskRef])
				}
				lastAttempt[a.TaskRef] = a.Attempt
				if _, ok := winners[a.TaskRef]; ok {
					t.Fatalf("seed %d: %v launched after it won", seed, a.TaskRef)
				}
				d := time.Duration(1000+rng.IntN(1000)) * time.Millisecond
				f := &flight{inv: a, end: now.Add(d)}
				switch u := rng.Float64(); {
				case u < 0.05 && a.Attempt == 1:
					f.end = time.Time{}
				case u < 0.15:
					f.end = now.Add(10 * d)
				}
				inflight = append(inflight, f)
				if len(inflight) > conc {
					t.Fatalf("seed %d: %d attempts in flight, concurrency %d", seed, len(inflight), conc)
				}
				live := 0
				for _, o := range inflight {
					if o.inv.TaskRef == a.TaskRef && !o.abandoned {
						live++
					}
				}
				if live > 2 {
					t.Fatalf("seed %d: %v has %d attempts that may win", seed, a.TaskRef, live)
				}
			case Cancel:
				found := false
				for _, o := range inflight {
					if o.inv.TaskRef == a.TaskRef && o.inv.Attempt == a.Attempt && !o.abandoned {
						o.abandoned, found = true, true
						// The backend answers a cancelled attempt at once.
						o.end = now
					}
				}
				if !found {
					t.Fatalf("seed %d: cancel of %v attempt %d, not in flight", seed, a.TaskRef, a.Attempt)
				}
			case JobDone:
				done = true
			case JobFailed:
				t.Fatalf("seed %d: job failed: %v", seed, a.Err)
			}
		}
	}
	s.Step(Tick{Now: now})
	check(s.Start())
	for step := 0; !done || len(inflight) > 0; step++ {
		if step > 100000 {
			t.Fatalf("seed %d: the job did not finish", seed)
		}
		// The next attempt to answer, or a tick 100ms on.
		next := -1
		for i, f := range inflight {
			if !f.end.IsZero() && !f.end.After(now) && (next < 0 || f.end.Before(inflight[next].end)) {
				next = i
			}
		}
		if next < 0 {
			now = now.Add(100 * time.Millisecond)
			check(s.Step(Tick{Now: now}))
			continue
		}
		f := inflight[next]
		inflight = append(inflight[:next], inflight[next+1:]...)
		check(s.Step(Tick{Now: now}))
		r := &TaskResult{Instance: fmt.Sprintf("a%d", f.inv.Attempt)}
		_, won := winners[f.inv.TaskRef]
		if f.abandoned {
			check(s.Step(TaskFailed{TaskRef: f.inv.TaskRef, Attempt: f.inv.Attempt, Err: errCancelled}))
		} else {
			check(s.Step(TaskSucceeded{TaskRef: f.inv.TaskRef, Attempt: f.inv.Attempt, Result: r}))
			if !won {
				winners[f.inv.TaskRef] = f.inv.Attempt
			}
		}
		for ref, a := range winners {
			if got := s.WinningAttempt(ref); got != a {
				t.Fatalf("seed %d: %v won with attempt %d, want the first answer, attempt %d", seed, ref, got, a)
			}
		}
	}
	st := s.Stats()
	t.Logf("seed %d, concurrency %d: %+v", seed, conc, st)
}

// checkRunningIndex checks the scheduler's index of running tasks (what a
// tick visits) against its live attempts: every task with a live attempt,
// in ascending order, and no other.
func checkRunningIndex(t *testing.T, s *Scheduler) {
	t.Helper()
	for si, st := range s.stages {
		var want []int
		for task, l := range st.live {
			if len(l) > 0 {
				want = append(want, task)
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(st.running) {
			t.Fatalf("stage %d: running index %v, tasks with live attempts %v", si, st.running, want)
		}
	}
}
