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
	cancel    context.CancelCauseFunc
	start     time.Time
	abandoned bool
	timedOut  bool
	reason    string
}

// schedulerConfig derives the scheduler's deadlines from the backend's
// function timeout and the run's settings.
func (d *driver) schedulerConfig() SchedulerConfig {
	cfg := SchedulerConfig{Concurrency: d.cfg.Concurrency, MaxAttempts: d.cfg.MaxAttempts, Speculation: d.cfg.Speculation}
	limit := backends.TraitsOf(d.cfg.Backend).Timeout
	switch {
	case d.cfg.TaskTimeout > 0:
		cfg.TaskTimeout, cfg.GangTimeout = d.cfg.TaskTimeout, d.cfg.TaskTimeout
	case d.cfg.TaskTimeout < 0:
	case limit > 0:
		// The platform ends the function at its limit; the engine gives
		// the answer a little longer to arrive before it gives up.
		cfg.TaskTimeout = limit + limit/10 + time.Second
		cfg.GangTimeout = cfg.TaskTimeout
	default:
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if _, ok := d.cfg.Backend.(Simulator); ok && d.cfg.Clock == nil {
		if _, ok := d.cfg.Backend.(Clock); !ok {
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
func (d *driver) clock() Clock {
	if d.cfg.Clock != nil {
		return d.cfg.Clock
	}
	if _, ok := d.cfg.Backend.(Simulator); ok {
		if c, ok := d.cfg.Backend.(Clock); ok {
			return c
		}
	}
	return SystemClock()
}

// attemptStarted returns the context an attempt runs under, cancelled by
// a Cancel action for it or when the job ends.
func (d *driver) attemptStarted(ctx context.Context, a Invoke) context.Context {
	actx, cancel := context.WithCancelCause(ctx)
	d.attempts[attemptRef{a.TaskRef, a.Attempt}] = &attemptRun{cancel: cancel, start: time.Now()}
	if a.Backup {
		d.report.backupLaunched(a.Stage)
	}
	return actx
}

// cancelAttempt abandons an attempt: its context is cancelled, so the
// backend stops it where it can (the process backend retires its worker
// process, killing it if it does not stop) and answers at once; where the
// platform cannot stop it, it runs on and is ignored. Its outputs are
// attempt-scoped and never committed.
func (d *driver) cancelAttempt(c Cancel) {
	r := d.attempts[attemptRef{c.TaskRef, c.Attempt}]
	if r == nil {
		return
	}
	r.abandoned, r.timedOut, r.reason = true, c.TimedOut, c.Reason
	cause := fmt.Errorf("%w: %s", errCancelled, c.Reason)
	if c.TimedOut {
		cause = fmt.Errorf("%w: %s", ErrTaskTimeout, c.Reason)
	}
	r.cancel(cause)
	d.event(map[string]any{"event": "task_cancel", "stage": c.Stage, "task": c.Task, "attempt": c.Attempt,
		"timed_out": c.TimedOut, "reason": c.Reason})
}

// attemptEnded releases an attempt's context when its outcome arrives and
// reports whether the attempt had been abandoned; if so it records the
// time it was billed for in vain.
func (d *driver) attemptEnded(ev Event) bool {
	var ref attemptRef
	ok := false
	switch e := ev.(type) {
	case TaskSucceeded:
		ref, ok = attemptRef{e.TaskRef, e.Attempt}, true
	case TaskFailed:
		ref = attemptRef{e.TaskRef, e.Attempt}
	}
	r := d.attempts[ref]
	if r == nil {
		return false
	}
	delete(d.attempts, ref)
	r.cancel(nil)
	if !r.abandoned {
		return false
	}
	secs := time.Since(r.start).Seconds()
	d.report.attemptAbandoned(ref.Stage, secs, r.timedOut)
	// The attempt's end is a cancelled failure to every reader of the
	// events (the dashboard shows it so), whatever it answered.
	why := "abandoned: " + r.reason
	if ok {
		why += " (it then answered, too late to count)"
	}
	d.event(map[string]any{"event": "task_failed", "stage": ref.Stage, "task": ref.Task, "attempt": ref.attempt,
		"not_started": false, "cancelled": true, "abandoned": true, "timed_out": r.timedOut, "error": why, "seconds": secs})
	return true
}

// interruptedAttemptEnded records the outcome of an attempt that was in
// flight when the job was interrupted: the attempt no longer runs, and it
// neither failed nor won (a success is never committed), so the event is a
// task_interrupted, the scheduler never hears of it and the report counts
// it apart from failures. An attempt abandoned before the interruption
// ends as any abandoned attempt does.
func (d *driver) interruptedAttemptEnded(ev Event) {
	var ref attemptRef
	answered := false
	var err error
	switch e := ev.(type) {
	case TaskSucceeded:
		ref, answered = attemptRef{e.TaskRef, e.Attempt}, true
	case TaskFailed:
		ref, err = attemptRef{e.TaskRef, e.Attempt}, e.Err
	}
	r := d.attempts[ref]
	if r != nil && r.abandoned {
		d.attemptEnded(ev)
		return
	}
	secs := 0.0
	if r != nil {
		delete(d.attempts, ref)
		r.cancel(nil)
		secs = time.Since(r.start).Seconds()
	}
	d.report.attemptInterrupted(ref.Stage)
	d.events.TaskInterrupted(ref.TaskRef, ref.attempt, answered, err, secs)
}

// timeoutHint adds the fix to a job failure caused by timeouts.
func timeoutHint(err error) error {
	if !errors.Is(err, ErrTaskTimeout) {
		return err
	}
	return fmt.Errorf("%w; if the task needs longer, raise the task timeout (gale.TaskTimeout, --task-timeout on the gale command line)", err)
}
