package engine

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
)

// EventLog emits a job's events: one JSON object per event, written as a
// line to a writer (Config.Events, gale run --events) and handed to a
// Monitor (a dashboard) as it happens. The event kinds and their fields
// are listed in docs/engine.md; every driver that runs tasks through a
// Scheduler — this package's and the Beam runner's — emits them through
// an EventLog, so the files and the dashboard read every job the same way.
//
// A nil *EventLog emits nothing. Its methods are safe for concurrent use.
type EventLog struct {
	job     string
	w       io.Writer
	monitor Monitor
	onError func(error)

	mu  sync.Mutex
	err error // the first failed write; later lines are not written
}

// NewEventLog returns the log of job, writing to w and handing events to
// m (either may be nil); it returns nil when both are. The first write to
// w that fails stops the writing (the monitor still gets every event) and
// is passed to onError, if set, once: a job's results do not depend on
// its event log, so the job goes on and its report can say the log is
// incomplete.
func NewEventLog(job string, w io.Writer, m Monitor, onError func(error)) *EventLog {
	if w == nil && m == nil {
		return nil
	}
	return &EventLog{job: job, w: w, monitor: m, onError: onError}
}

// Emit emits one event with fields, adding its time and the job's ID. It
// is the way to emit a kind of event the typed methods do not cover.
func (l *EventLog) Emit(fields map[string]any) {
	if l == nil {
		return
	}
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	fields["job"] = l.job
	b, err := json.Marshal(fields)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.monitor != nil {
		l.monitor.JobEvent(b)
	}
	if l.w == nil || l.err != nil {
		return
	}
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		l.err = err
		if l.onError != nil {
			l.onError(err)
		}
	}
}

// Err returns the first write that failed, if any.
func (l *EventLog) Err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// JobStart emits job_start: the plan's shape, the backend, the attempts
// in flight at most and the attempts per task.
func (l *EventLog) JobStart(plan PlanInfo, backend string, concurrency, maxAttempts int) {
	l.Emit(map[string]any{"event": "job_start", "stages": len(plan.Stages), "backend": backend,
		"concurrency": concurrency, "max_attempts": maxAttempts, "plan": plan})
}

// TaskStart emits task_start for an attempt the driver invokes.
func (l *EventLog) TaskStart(a Invoke) {
	f := map[string]any{"event": "task_start", "stage": a.Stage, "task": a.Task, "attempt": a.Attempt}
	if a.Backup {
		f["backup"], f["reason"] = true, a.Reason
	}
	l.Emit(f)
}

// TaskEnd emits task_end for an attempt that succeeded.
func (l *EventLog) TaskEnd(e TaskSucceeded) {
	l.Emit(map[string]any{"event": "task_end", "stage": e.Stage, "task": e.Task, "attempt": e.Attempt,
		"instance": e.Result.Instance, "cold": e.Result.Cold, "start": e.Result.Start, "end": e.Result.End,
		"metrics": e.Result.Metrics})
}

// TaskFailed emits task_failed for an attempt that failed; cancelled
// tells that the job was already failing or interrupted, which cancelled
// it.
func (l *EventLog) TaskFailed(e TaskFailed, cancelled bool) {
	l.Emit(map[string]any{"event": "task_failed", "stage": e.Stage, "task": e.Task, "attempt": e.Attempt,
		"not_started": e.NotStarted, "cancelled": cancelled, "error": errString(e.Err)})
}

// JobInterrupted emits job_interrupted: the job's context ended (cause)
// with running attempts in flight, which are cancelled and not retried.
func (l *EventLog) JobInterrupted(cause error, running int) {
	l.Emit(map[string]any{"event": "job_interrupted", "cause": errString(cause), "running": running})
}

// TaskInterrupted emits task_interrupted for the outcome of an attempt
// that was in flight when the job was interrupted: it neither failed nor
// won. answered tells it succeeded, too late to count; err is its error
// otherwise; seconds is how long it ran, 0 if unknown.
func (l *EventLog) TaskInterrupted(t TaskRef, attempt int, answered bool, err error, seconds float64) {
	f := map[string]any{"event": "task_interrupted", "stage": t.Stage, "task": t.Task, "attempt": attempt,
		"answered": answered}
	if err != nil {
		f["error"] = err.Error()
	}
	if seconds > 0 {
		f["seconds"] = seconds
	}
	l.Emit(f)
}

// StageEnd emits stage_end.
func (l *EventLog) StageEnd(stage int) {
	l.Emit(map[string]any{"event": "stage_end", "stage": stage})
}

// JobEnd emits job_end with the report's totals: ok when err is nil,
// else the error, interrupted when it wraps ErrInterrupted and, when one
// attempt's failure failed the job, that attempt.
func (l *EventLog) JobEnd(r *Report, err error, failed *TaskFailed) {
	if l == nil {
		return
	}
	f := map[string]any{"event": "job_end", "ok": err == nil, "error": errString(err)}
	if errors.Is(err, ErrInterrupted) {
		f["interrupted"] = true
	}
	if failed != nil {
		f["stage"], f["task"], f["attempt"] = failed.Stage, failed.Task, failed.Attempt
	}
	r.jobEndFields(f)
	l.Emit(f)
}
