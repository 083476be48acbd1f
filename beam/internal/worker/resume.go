package worker

import (
	"context"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
)

// Splittable DoFns that defer work. A splittable DoFn may stop before its
// restriction is done and ask to be resumed (a ProcessContinuation with
// a delay, or a self-checkpoint): the SDK's DataSource then splits the
// element and returns the residual, the rest of the restriction, encoded
// as an element of the DataSource's input. A batch runner resumes it once
// the delay has passed; so does the task, in its own plan, bundle after
// bundle, until no residual is left, and what the resumed work writes
// joins the task's output. A splittable DoFn that never finishes its
// restriction (an unbounded source) keeps its task running, as it keeps
// a streaming job running on Prism.

// residual is one deferred element: when to resume it and its encoding.
type residual struct {
	at   time.Time
	elem []byte
}

// resume runs the residuals in dm, each once its delay has passed, those
// due together in one bundle, until none is left.
func resume(ctx context.Context, dm *dataManager, bundle bundleFunc) error {
	for len(dm.residuals) > 0 {
		slices.SortStableFunc(dm.residuals, func(a, b residual) int { return a.at.Compare(b.at) })
		if wait := time.Until(dm.residuals[0].at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		now := time.Now()
		var data []byte
		n := 0
		for n < len(dm.residuals) && !dm.residuals[n].at.After(now) {
			data = append(data, dm.residuals[n].elem...)
			n++
		}
		dm.residuals = dm.residuals[n:]
		err := bundle(func(ctx context.Context, ch chan<- exec.Elements) error {
			select {
			case ch <- exec.Elements{Data: data, PtransformID: dm.source}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}
