package gale

import (
	"fmt"

	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/probe"
)

// WithHint sizes the job for its backend from a probe of it: the hint of
// probe.Recommend on a probe's metrics, or of sim.HintFor for a
// simulated platform. Unless the probe ran every invocation at once
// (h.Saturated: the backend may give more than it was asked for), at most
// h.Concurrency tasks run at once, whatever Workers says; more would queue
// on the platform or be rejected. The report's Warnings then say so, and
// name every stage wider than the measured parallel degree
// (probe.Hint.StageWarning), since its tasks will run in waves.
func WithHint(h probe.Hint) RunOption { return func(c *runConfig) { c.hint = &h } }

// applyHint caps the workers at the hint's concurrency and returns the
// warning saying so, if it did.
func (c *runConfig) applyHint() string {
	h := c.hint
	if h == nil || h.Saturated || h.Concurrency <= 0 || c.workers <= h.Concurrency {
		return ""
	}
	was := c.workers
	c.workers = h.Concurrency
	return fmt.Sprintf("concurrency capped at %d (from %d): %s ran at most %d invocations at once when probed",
		h.Concurrency, was, h.Backend, h.Concurrency)
}

// hintWarnings returns the hint's warnings for a compiled plan: the cap,
// then one per stage wider than the hint's concurrency.
func hintWarnings(c runConfig, plan *planner.Plan) []string {
	if c.hint == nil {
		return nil
	}
	var ws []string
	if c.hintCap != "" {
		ws = append(ws, c.hintCap)
	}
	for _, st := range plan.Stages {
		if w := c.hint.StageWarning(fmt.Sprint(st.ID), st.Tasks); w != "" {
			ws = append(ws, w)
		}
	}
	return ws
}
