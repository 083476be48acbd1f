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
// Probe invocations (payloads of kind probe.Kind) are computed from the
// model alone. Whole Gale jobs run too: given a Handler (the worker's
// router, gale.NewWorkerMux), the backend runs every other task for real
// when the model starts it on an instance, measures the CPU time it took,
// and runs that demand in simulated time on the instance's CPU share;
// SimulatedElapsed across the job is its predicted makespan on the
// platform and SimulatedBilled its billed time (the engine reports both,
// see engine.Simulator):
//
//	mux, _ := gale.NewWorkerMux()
//	cfg, _ := sim.DefaultConfig("azure")
//	cfg.Handler = mux.Handle
//	b, _ := sim.New(cfg)
//	report, err := gale.Run(ctx, p, gale.WithBackend("sim:azure", b))
//	// report.SimulatedSeconds: the makespan predicted on Azure
//
// The backend is also a clock in simulated time (Now, NewTicker: an
// engine.Clock), which the engine uses for deadlines and backups of
// stragglers on a simulated platform. Each tick costs Config.Settle of
// wall time or more (measured: 1.5 s of wall time per simulated minute at
// the engine's 100 ms ticks while a lone invocation is awaited), so a
// long simulated job with sparse events takes longer in wall time than
// one driven by the wall clock did. A caller that gives up on an
// invocation (its context ends) leaves it running in the model, as a
// platform does, but simulated time no longer waits for it; Drain runs
// such invocations to their end so that SimulatedBilled bills them.
//
// Imports: backends, probe and the standard library.
//
// Goroutines: the backend owns one clock goroutine, started by the first
// Invoke, and one goroutine per job task whose handler runs (at most
// Config.HandlerParallelism run at once); Close stops the clock, cancels
// the handlers and waits for all of them. InvokeAll runs the model on the
// caller's goroutine.
package sim
