// Package rounds holds what Gale's iterative examples (k-means, logistic
// regression) share about running rounds over shared objects, the Crucial
// way: workers load their partition once and loop; every round they merge
// their partial results into a shared object whose merge runs on the DSO
// server, cross a CyclicBarrier, and advance a shared iteration counter
// with CompareAndSet, so that a worker restarted after a failure resumes
// from the counter instead of from the start.
//
//   - Loop is a worker's view of the round structure: Resume finds the
//     round to resume from, Sync crosses the barrier and advances the
//     counter, and every shared-object call and barrier wait is timed
//     (Timing), so a run reports where its iteration time went.
//   - Contributions is the exactly-once merge state that the examples'
//     shared objects embed: one vector per worker per round, a duplicate
//     from a restarted worker ignored, summed in worker order once all are
//     in (so the result does not depend on arrival order).
//   - Stats is a shared object the workers leave their Timing in.
//   - Embedded runs a DSO server in the driver process.
//   - Fault is a deterministic fault hook for tests: worker w fails its
//     first attempt at round r, at a chosen point of the round.
//
// It may import the gale root package and state. Embedded owns its server's
// Serve goroutine and stops it in Close; nothing else starts goroutines.
package rounds
