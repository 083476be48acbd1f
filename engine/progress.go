package engine

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/galeproject/gale/planner"
)

// Progress receives the state of a running job. The engine calls Update
// from its driver loop after every event, and Finish once at the end; an
// implementation must return quickly.
type Progress interface {
	Update(r *Report)
	Finish(r *Report, err error)
}

// LineProgress writes plain log lines: when a stage starts, when it ends,
// and at most every Interval while it runs. It suits logs and pipes.
type LineProgress struct {
	W        io.Writer
	Interval time.Duration

	mu      sync.Mutex
	last    time.Time
	started map[int]bool
	ended   map[int]bool
}

// Update implements Progress.
func (p *LineProgress) Update(r *Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started == nil {
		p.started, p.ended = map[int]bool{}, map[int]bool{}
	}
	interval := p.Interval
	if interval == 0 {
		interval = 5 * time.Second
	}
	periodic := time.Since(p.last) >= interval
	for _, s := range r.Snapshot() {
		switch {
		case !s.End.IsZero() && !p.ended[s.ID]:
			p.ended[s.ID], p.started[s.ID] = true, true
			fmt.Fprintf(p.W, "stage %d done: %s\n", s.ID, stageLine(s))
		case !s.Start.IsZero() && !p.started[s.ID]:
			p.started[s.ID] = true
			fmt.Fprintf(p.W, "stage %d started: %s, %d task(s)\n", s.ID, s.Name, s.Tasks)
		case periodic && p.started[s.ID] && !p.ended[s.ID]:
			fmt.Fprintf(p.W, "stage %d: %s\n", s.ID, stageLine(s))
			p.last = time.Now()
		}
	}
	if p.last.IsZero() {
		p.last = time.Now()
	}
}

// Finish implements Progress.
func (p *LineProgress) Finish(r *Report, err error) {
	switch {
	case errors.Is(err, ErrInterrupted):
		fmt.Fprintf(p.W, "job %s interrupted after %s\n", r.JobID, time.Since(r.Start).Round(time.Millisecond))
	case err != nil:
		fmt.Fprintf(p.W, "job %s failed after %s\n", r.JobID, time.Since(r.Start).Round(time.Millisecond))
	}
}

func stageLine(s StageReport) string {
	line := fmt.Sprintf("%d/%d tasks done, %d running, %d failed, %d records in, %s read",
		s.Done, s.Tasks, s.Running, s.Failed, s.Metrics.RecordsIn,
		planner.FormatBytes(s.Metrics.ObjectBytesRead+s.Metrics.ShuffleBytesRead))
	if s.Backups > 0 || s.TimedOut > 0 {
		line += fmt.Sprintf(", %d backup(s), %d timed out", s.Backups, s.TimedOut)
	}
	return line
}
