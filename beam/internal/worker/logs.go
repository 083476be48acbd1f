package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
)

// User logs. DoFns log through the Beam SDK's log package (log.Infof(ctx,
// ...), x/debug's Print*), whose messages a Beam runner shows in the
// job's log. Gale does the same on every backend: InstallLogger puts a
// Beam logger in place that files a message logged with a task's context
// (every DoFn call gets one derived from it) into the task's log, which
// the task returns in its Result (Result.Logs) and the driver writes to
// its own Beam log, naming the stage and task. Messages logged without a
// task's context go to the SDK's default logger as before.
//
// A task keeps at most maxLogBytes of messages; past that it counts what
// it drops, and the driver says how many. A failed task's error ends with
// its last messages, since a failed task returns no Result.

// maxLogBytes bounds the messages one task returns.
const maxLogBytes = 1 << 20

// failedLogLines is how many of its last messages a failed task's error
// carries.
const failedLogLines = 20

// LogEntry is one message a task's code logged.
type LogEntry struct {
	// Severity is the Beam log severity (log.Severity).
	Severity int       `json:"sev"`
	Time     time.Time `json:"time"`
	Message  string    `json:"msg"`
}

// taskLog collects the messages of one task. It is safe for concurrent
// use (a DoFn may log from its own goroutines).
type taskLog struct {
	min log.Severity // messages below are dropped

	mu      sync.Mutex
	entries []LogEntry
	bytes   int
	dropped int
}

func (l *taskLog) add(sev log.Severity, msg string) {
	if sev != log.SevUnspecified && sev < l.min {
		return
	}
	msg = strings.TrimRight(msg, "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bytes+len(msg) > maxLogBytes {
		l.dropped++
		return
	}
	l.bytes += len(msg)
	l.entries = append(l.entries, LogEntry{Severity: int(sev), Time: time.Now(), Message: msg})
}

// result returns the entries and the count of dropped ones.
func (l *taskLog) result() ([]LogEntry, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogEntry(nil), l.entries...), l.dropped
}

// tail returns the last n messages as text, one per line.
func (l *taskLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.entries
	if len(es) > n {
		es = es[len(es)-n:]
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s", e.Message)
	}
	return b.String()
}

type taskLogKey struct{}

func withTaskLog(ctx context.Context, l *taskLog) context.Context {
	return context.WithValue(ctx, taskLogKey{}, l)
}

// taskLogger is the Beam logger InstallLogger puts in place.
type taskLogger struct{ next log.Logger }

func (t taskLogger) Log(ctx context.Context, sev log.Severity, calldepth int, msg string) {
	if ctx != nil {
		if l, ok := ctx.Value(taskLogKey{}).(*taskLog); ok {
			l.add(sev, msg)
			return
		}
	}
	t.next.Log(ctx, sev, calldepth+1, msg)
}

// InstallLogger makes the Beam SDK's logger collect the messages of Gale
// tasks (see LogEntry), passing every other message to the SDK's default
// logger. A program that installs its own Beam logger after it
// (log.SetLogger) receives its tasks' messages itself, wherever each task
// runs; so does one that runs a pipeline on Prism in the same process
// (Prism's in-process worker installs its own) until InstallLogger is
// called again.
func InstallLogger() {
	log.SetLogger(taskLogger{next: &log.Structural{}})
}

// MinSeverity returns the lowest Beam severity this process's default
// logger writes (its slog level), which a driver sends its tasks
// (Task.LogSeverity) so they drop what it would not write.
func MinSeverity(ctx context.Context) int {
	h := slog.Default()
	switch {
	case h.Enabled(ctx, slog.LevelDebug):
		return int(log.SevDebug)
	case h.Enabled(ctx, slog.LevelInfo):
		return int(log.SevInfo)
	case h.Enabled(ctx, slog.LevelWarn):
		return int(log.SevWarn)
	}
	return int(log.SevError)
}
