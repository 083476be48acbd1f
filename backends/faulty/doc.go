// Package faulty wraps a Backend to inject the failures function platforms
// produce, so tests can prove that the engine's retries and its output
// commit protocol survive them.
//
// Each invocation gets one Fault, chosen by Config.Rule when it is set, or
// else drawn at random with the rates in Config:
//
//   - Reject: the invocation is refused before anything runs; Invoke
//     returns an error wrapping backends.ErrNotStarted (a throttled or
//     rejected request).
//   - Fail: the task runs to the end, writing whatever it writes, and then
//     Invoke reports a *backends.FunctionError, as if the function crashed
//     after (part of) its output was written.
//   - Delay: Invoke sleeps for a random time up to Config.MaxDelay before
//     running the task, honouring ctx (a cold start, a queued request).
//   - Duplicate: the task runs twice at once (at-least-once delivery);
//     Invoke returns whichever copy finishes first, and the other copy runs
//     to its end in the background.
//   - Lose: the task runs, then Invoke returns an error that is not
//     ErrNotStarted (a dropped response: the outcome is unknown).
//   - Crash: Invoke reports a *backends.FunctionError without running the
//     task (the function crashed as it started: it did not run, but the
//     platform cannot say so).
//   - Slow: the task runs, and its answer is held back until the
//     invocation has taken Config.SlowFactor times as long as the task
//     (a straggler: a slow host, a throttled instance); the end of ctx
//     ends the wait.
//   - Hang: Invoke answers nothing until ctx ends, then returns an error
//     wrapping ErrHung that is not ErrNotStarted (a function that hangs).
//
// Random decisions are reproducible: the fault of an invocation is a pure
// function of Config.Seed, the task ID and how many times that ID was
// invoked before, whatever order concurrent invocations arrive in. Engines
// put the job ID in task IDs, so a test that wants the same faults on
// every run fixes the job ID too.
//
//	fb := faulty.New(inner, faulty.Config{Seed: 7, RejectRate: 0.1, LoseRate: 0.1})
//	defer fb.Close()
//	res, err := fb.Invoke(ctx, task)
//	fmt.Printf("%+v\n", fb.Stats())
//
// Storage faults: HTTPHandler fronts an S3-compatible server's handler
// and answers a seeded share of the requests with 503 SlowDown or 500
// InternalError (before or after the server handled them), cuts response
// bodies short, or holds requests back, so that the real store clients,
// on the driver and in every worker, meet the failures object stores
// produce on the wire.
//
// This package may import the standard library and backends. The Backend
// owns the goroutines that run duplicate copies: Close waits for them and
// for every invocation in flight, then closes the wrapped backend.
package faulty
