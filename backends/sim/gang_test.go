package sim

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
)

// TestGangTasksAreRefusedAtOnce: tasks that wait for each other (an
// iterate stage's workers) cannot run on a platform whose clock stands
// still while a task runs. A simulator built directly with a Handler, as
// docs/probe.md shows, used to start the first one and wait forever.
func TestGangTasksAreRefusedAtOnce(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "aws", burn(&runs), nil)
	if g := b.Traits().MaxGang; g != 1 {
		t.Errorf("Traits().MaxGang = %d, want 1", g)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.Invoke(ctx, backends.Task{ID: "job/stage-1/task-0/attempt-1", Payload: []byte("burn 10"), Gang: 3})
	if !errors.Is(err, backends.ErrGang) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "task-0") {
		t.Errorf("Invoke of a gang task: %v", err)
	}
	if ctx.Err() != nil || time.Since(start) > 10*time.Second {
		t.Errorf("the refusal took %v", time.Since(start))
	}
	if runs.Load() != 0 {
		t.Errorf("the handler ran %d times", runs.Load())
	}
	// A task of a gang of one runs.
	if _, err := b.Invoke(ctx, backends.Task{ID: "single", Payload: []byte("burn 10"), Gang: 1}); err != nil {
		t.Errorf("a gang of one: %v", err)
	}
}
