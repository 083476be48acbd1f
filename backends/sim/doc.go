// Package sim implements a simulated FaaS platform: a discrete-event
// model of a platform's architecture that runs in simulated time, so the
// probe (and the planner) can reason about platforms no one can reach,
// at any scale, in milliseconds.
//
// The model has the parts chapter 3 of the thesis identifies: an
// invocation controller (push: each invocation is placed on an idle
// instance or on a new one created for it; pull: invocations queue and
// instances pull them), a scale controller (eager creation, or a rate
// such as one instance per interval after a burst, and an instance cap),
// the instance technology (a cold-start distribution that may grow with
// the number of instances being created, keep-alive, pre-started
// instances per host), per-instance concurrency with CPU divided among
// co-located compute invocations (per instance and per host), and the
// account's limits (concurrency, rate, queueing time), past which
// invocations are rejected with backends.ErrNotStarted. Preset returns
// models of AWS Lambda, Azure Functions, Google Cloud Functions and IBM
// Cloud Functions calibrated on the thesis; docs/probe.md lists the
// source of every parameter.
//
// Usage:
//
//	cfg, _ := sim.DefaultConfig("aws")
//	b, err := sim.New(cfg)
//	...
//	defer b.Close()
//	trace, err := probe.Run(ctx, b, probe.DefaultConfig())
//
// The backend executes probe invocations only (payloads of kind
// probe.Kind): their outcome is computed from the model. Whole Gale jobs
// are not run on it yet.
//
// Imports: backends, probe and the standard library.
//
// Goroutines: the backend owns one clock goroutine, started by the first
// Invoke and stopped by Close, which waits for it. InvokeAll runs the
// model on the caller's goroutine.
package sim
