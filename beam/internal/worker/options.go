package worker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	beamruntime "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
)

// Pipeline options. A DoFn reads them through beam.PipelineOptions, which
// is the SDK's process-wide runtime.GlobalOptions, so every task sets them
// to its job's values before its plan runs. Tasks of jobs with different
// options cannot run in one process at the same time (a warm function
// instance may serve several jobs of the same binary): optionsGate admits
// any number of tasks with the options in force and makes a task with
// other options wait until those have finished.
//
// The SDK's own harness calls GlobalOptions.Import, which makes the
// options read-only for good; the worker uses Set instead, which keeps
// them replaceable: a key of an earlier job that the next job lacks is
// set to "", which is what Get returns for an unset key. If something
// else in the process made the options read-only, Set is ignored, and
// the task fails instead of running with other values.

// optionsGate guards the process-wide pipeline options. It is the one
// piece of package state here, because the value it guards is the
// SDK's package state.
var optionsGate = newGate()

type gate struct {
	mu      sync.Mutex
	current string            // fingerprint of the options in force
	set     map[string]string // the options in force
	users   int               // tasks running with them
	idle    chan struct{}     // closed when users drops to 0
}

func newGate() *gate { return &gate{} }

// fingerprint identifies a set of options ("" and a missing key are the
// same, as for Get).
func fingerprint(opts map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if opts[k] == "" {
			continue
		}
		fmt.Fprintf(&b, "%q=%q;", k, opts[k])
	}
	return b.String()
}

// acquire waits until the process may run a task with opts, puts them in
// force, and returns the function that releases them.
func (g *gate) acquire(ctx context.Context, opts map[string]string) (release func(), err error) {
	fp := fingerprint(opts)
	g.mu.Lock()
	for g.users > 0 && g.current != fp {
		idle := g.idle
		g.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		g.mu.Lock()
	}
	defer g.mu.Unlock()
	if g.users == 0 {
		if err := g.apply(opts); err != nil {
			return nil, err
		}
		g.current = fp
		g.idle = make(chan struct{})
	}
	g.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.users--
			if g.users == 0 {
				close(g.idle)
			}
		})
	}, nil
}

// apply puts opts in force in the SDK's global options.
func (g *gate) apply(opts map[string]string) error {
	o := beamruntime.GlobalOptions
	for k := range g.set {
		if _, ok := opts[k]; !ok {
			o.Set(k, "")
		}
	}
	for k, v := range opts {
		o.Set(k, v)
	}
	g.set = maps.Clone(opts)
	for k, v := range opts {
		if got := o.Get(k); got != v {
			return fmt.Errorf("worker: cannot set pipeline option %q to %q: this process's beam.PipelineOptions are read-only "+
				"(imported by a Beam worker harness) and hold %q", k, v, got)
		}
	}
	return nil
}
