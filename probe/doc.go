// Package probe measures the parallelism a function backend really
// delivers: it runs the experiment of Barcelona-Pons, "Towards Enhanced
// State Management for Serverless Computation" (2022), chapter 3, on any
// backends.Backend.
//
// A probe fires Config.Invocations concurrent invocations of a sleep or a
// compute task (a Monte Carlo estimate of π sized to Config.Duration on
// one full CPU). The worker side, Handler, records the task's start and
// end on the function's clock, the identity of the instance that ran it,
// whether that instance was cold, and the host's uptime (a hint of which
// machine hosts the instance); the driver side, Run, records the client's
// send and return times and the outcome of every invocation — failures,
// rejections and timeouts are recorded, never dropped. Analyze derives the
// metrics of the thesis from the resulting Trace: cold start, completion
// time, parallel degree (the most instances busy at one instant), distinct
// instances, failures, and the spread of in-function durations.
//
// Usage (driver):
//
//	trace, err := probe.Run(ctx, backend, probe.Config{
//		Invocations: 200, Task: probe.Compute, Duration: time.Second})
//	m := probe.Analyze(trace)
//	m.Print(os.Stdout)
//
// A large-scale asynchronous run (Config.Async, the thesis's 1000
// invocations) fires every invocation without waiting for its function:
// each function writes its Response to object storage (Request.ResultURL)
// and the driver lists the store to collect them. The simulator models
// asynchronous invocation itself.
//
// Usage (worker): register Handler under Kind in the worker's engine.Mux:
//
//	mux.Register(probe.Kind, probe.Handler())
//
// By default it writes results to local directories only; WithStoreOpener
// gives it an opener of other stores (a function around gale.OpenStore).
//
// Imports: backends, backends/objstore and the standard library; plots
// live in probe/plot.
//
// Goroutines: Run starts one goroutine per invocation in flight and waits
// for all of them before it returns, also when ctx is cancelled; an
// asynchronous run lists the result store on Run's own goroutine. Handler
// starts none.
package probe
