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
// This package may import the standard library and backends. The Backend
// owns the goroutines that run duplicate copies: Close waits for them and
// for every invocation in flight, then closes the wrapped backend.
package faulty
