package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/galeproject/gale/backends"
)

// DefaultTaskTimeout is the deadline of an attempt on a backend that
// publishes no function timeout (local, process) when Config.TaskTimeout
// is zero: AWS Lambda's maximum, past which no function platform would
// have let the task run. It does not apply to tasks that wait for each
// other (iterate workers), which may legitimately run for many rounds.
const DefaultTaskTimeout = 15 * time.Minute

// DefaultTickInterval is how often the driver tells the scheduler that
// time passed when Config.TickInterval is zero: the resolution of
// deadlines and of the straggler test.
const DefaultTickInterval = 100 * time.Millisecond

// errCancelled is the cause given to an abandoned attempt's context.
var errCancelled = errors.New("engine: attempt abandoned")

// attemptRun is the driver's record of one attempt in flight. The driver
// loop alone reads and writes it.
type attemptRun struct {
	ctx       context.Context // the attempt's, from when the scheduler asked for it
	cancel    context.CancelCauseFunc
	start     time.Time
	abandoned bool
	timedOut  bool
	reason    string
}

// schedulerConfig derives the scheduler's deadlines from the backend's
// function timeout and the run's settings.
func (l *Loop) schedulerConfig() SchedulerConfig {
	cfg := SchedulerConfig{Concurrency: l.cfg.Concurrency, MaxAttempts: l.cfg.MaxAttempts, Speculation: l.cfg.Speculation}
	limit := backends.TraitsOf(l.cfg.Backend).Timeout
	switch {
	case l.cfg.TaskTimeout > 0:
		cfg.TaskTimeout, cfg.GangTimeout = l.cfg.TaskTimeout, l.cfg.TaskTimeout
	case l.cfg.TaskTimeout < 0:
	case limit > 0:
		// The platform ends the function at its limit; the engine gives
		// the answer a little longer to arrive before it gives up.
		cfg.TaskTimeout = limit + limit/10 + time.Second
		cfg.GangTimeout = cfg.TaskTimeout
	default:
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if _, ok := l.cfg.Backend.(Simulator); ok && l.cfg.Clock == nil {
		if _, ok := l.cfg.Backend.(Clock); !ok {
			// A simulated platform runs tasks in simulated time, so the
			// wall clock cannot tell its stragglers (Config.Speculation)
			// unless the platform lends its own clock.
			cfg.Speculation.Off = true
		}
	}
	return cfg
}

// clock returns the run's clock: Config.Clock, else the clock of a
// Simulator that is also a Clock (backends/sim: its time is the
// platform's, so deadlines and the straggler test measure tasks as the
// platform runs them), else the wall clock.
func (l *Loop) runClock() Clock {
	if l.cfg.Clock != nil {
		return l.cfg.Clock
	}
	if _, ok := l.cfg.Backend.(Simulator); ok {
		if c, ok := l.cfg.Backend.(Clock); ok {
			return c
		}
	}
	return SystemClock()
}

// attemptQueued creates the context an attempt will run under, cancelled
// by a Cancel action for it or when the job ends: from the moment the
// scheduler asks for it, so that a Cancel finds it even while its stage
// waits for StageReady.
func (l *Loop) attemptQueued(ctx context.Context, a Invoke) {
	actx, cancel := context.WithCancelCause(ctx)
	l.attempts[attemptRef{a.TaskRef, a.Attempt}] = &attemptRun{ctx: actx, cancel: cancel, start: time.Now()}
}

// attemptLaunched records that an attempt starts now and returns its
// context.
func (l *Loop) attemptLaunched(a Invoke) context.Context {
	r := l.attempts[attemptRef{a.TaskRef, a.Attempt}]
	r.start = time.Now()
	if a.Backup {
		l.cfg.Report.backupLaunched(a.Stage)
	}
	return r.ctx
}

// dropAttempt forgets an attempt that never started (the job failed first).
func (l *Loop) dropAttempt(a Invoke) {
	ref := attemptRef{a.TaskRef, a.Attempt}
	if r := l.attempts[ref]; r != nil {
		r.cancel(nil)
		delete(l.attempts, ref)
	}
}

// cancelAttempt abandons an attempt: its context is cancelled, so the
// backend stops it where it can (the process backend retires its worker
// process, killing it if it does not stop) and answers at once; where the
// platform cannot stop it, it runs on and is ignored. Its outputs are
// attempt-scoped and never committed.
func (l *Loop) cancelAttempt(c Cancel) {
	r := l.attempts[attemptRef{c.TaskRef, c.Attempt}]
	if r == nil {
		return
	}
	r.abandoned, r.timedOut, r.reason = true, c.TimedOut, c.Reason
	cause := fmt.Errorf("%w: %s", errCancelled, c.Reason)
	if c.TimedOut {
		cause = fmt.Errorf("%w: %s", ErrTaskTimeout, c.Reason)
	}
	r.cancel(cause)
	l.cfg.Events.Emit(map[string]any{"event": "task_cancel", "stage": c.Stage, "task": c.Task, "attempt": c.Attempt,
		"timed_out": c.TimedOut, "reason": c.Reason})
}

// attemptEnded releases an attempt's context when its outcome arrives and
// reports whether the attempt had been abandoned; if so it records the
// time it was billed for in vain.
func (l *Loop) attemptEnded(ev Event) bool {
	var ref attemptRef
	ok := false
	switch e := ev.(type) {
	case TaskSucceeded:
		ref, ok = attemptRef{e.TaskRef, e.Attempt}, true
	case TaskFailed:
		ref = attemptRef{e.TaskRef, e.Attempt}
	}
	r := l.attempts[ref]
	if r == nil {
		return false
	}
	delete(l.attempts, ref)
	r.cancel(nil)
	if !r.abandoned {
		return false
	}
	secs := time.Since(r.start).Seconds()
	l.cfg.Report.attemptAbandoned(ref.Stage, secs, r.timedOut)
	// The attempt's end is a cancelled failure to every reader of the
	// events (the dashboard shows it so), whatever it answered.
	why := "abandoned: " + r.reason
	if ok {
		why += " (it then answered, too late to count)"
	}
	l.cfg.Events.Emit(map[string]any{"event": "task_failed", "stage": ref.Stage, "task": ref.Task, "attempt": ref.attempt,
		"not_started": false, "cancelled": true, "abandoned": true, "timed_out": r.timedOut, "error": why, "seconds": secs})
	return true
}

// interruptedAttemptEnded records the outcome of an attempt that was in
// flight when the job was interrupted: the attempt no longer runs, and it
// neither failed nor won (a success is never committed), so the event is a
// task_interrupted, the scheduler never hears of it and the report counts
// it apart from failures. An attempt abandoned before the interruption
// ends as any abandoned attempt does.
func (l *Loop) interruptedAttemptEnded(ev Event) {
	var ref attemptRef
	answered := false
	var err error
	switch e := ev.(type) {
	case TaskSucceeded:
		ref, answered = attemptRef{e.TaskRef, e.Attempt}, true
	case TaskFailed:
		ref, err = attemptRef{e.TaskRef, e.Attempt}, e.Err
	}
	r := l.attempts[ref]
	if r != nil && r.abandoned {
		l.attemptEnded(ev)
		return
	}
	secs := 0.0
	if r != nil {
		delete(l.attempts, ref)
		r.cancel(nil)
		secs = time.Since(r.start).Seconds()
	}
	l.cfg.Report.attemptInterrupted(ref.Stage)
	l.cfg.Events.TaskInterrupted(ref.TaskRef, ref.attempt, answered, err, secs)
}
