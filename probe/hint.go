package probe

import (
	"fmt"
	"time"
)

// Hint is what a probe tells the planner about a backend: how many tasks
// to keep in flight and how long tasks should at least be.
type Hint struct {
	// Backend names the probed backend.
	Backend string
	// Concurrency is the most tasks worth keeping in flight: the measured
	// parallel degree. More would queue on the platform or be rejected.
	Concurrency int
	// Saturated is true when the backend ran every probe invocation at
	// once without failures: it may give more than Concurrency, the probe
	// did not ask for more.
	Saturated bool
	// MinTaskDuration is the shortest task worth sending: nine times the
	// median cold start, so starting an instance costs at most a tenth of
	// a task's time.
	MinTaskDuration time.Duration
	// Rejects is true when the probe saw rejected invocations: sending
	// more than Concurrency at once will likely be refused.
	Rejects bool
}

// Recommend derives the planner's hint from a probe's metrics.
func Recommend(m Metrics) Hint {
	return Hint{
		Backend:         m.Backend,
		Concurrency:     max(m.ParallelDegree, 1),
		Saturated:       m.ParallelDegree >= m.Invocations && m.Failures == 0,
		MinTaskDuration: time.Duration(9 * m.ColdStartP50Ms * float64(time.Millisecond)),
		Rejects:         m.Rejected > 0,
	}
}

// StageWarning returns a warning when a stage of width tasks is wider
// than the backend's measured parallel degree, and "" otherwise. The
// engine shows it before running the stage.
func (h Hint) StageWarning(stage string, width int) string {
	if width <= h.Concurrency {
		return ""
	}
	if h.Saturated {
		return fmt.Sprintf("stage %s has %d tasks; %s ran all %d probe invocations at once, more were not measured: probe it with --invocations %d",
			stage, width, h.Backend, h.Concurrency, width)
	}
	waves := (width + h.Concurrency - 1) / h.Concurrency
	w := fmt.Sprintf("stage %s has %d tasks but %s ran at most %d at once when probed: expect about %d waves",
		stage, width, h.Backend, h.Concurrency, waves)
	if h.Rejects {
		w += fmt.Sprintf(" and rejected invocations; limit concurrency to %d", h.Concurrency)
	}
	return w
}
