// Package engine runs compiled Gale jobs: the job coordinator on the
// driver, and the worker runtime that executes tasks inside functions.
//
// The coordinator has two halves. Scheduler is a deterministic,
// single-threaded state machine: it takes events (an attempt succeeded or
// failed) and returns actions (invoke an attempt, a stage is done, the job is
// done or failed); it does no I/O and reads no clock, and it sees a job only
// as a TaskGraph (stages, task counts, dependencies). Loop, the driver loop,
// performs the actions: it owns the attempts' goroutines, their
// cancellation, backups and deadlines, the job's interruption, its events,
// progress and report, and feeds the outcomes back; it blocks on no I/O
// (a stage's I/O before its attempts start runs on a goroutine of its own,
// LoopConfig.StageReady). Run drives Gale jobs through it, serializing a
// TaskSpec for each attempt; the Beam runner drives Beam stages through the
// same loop with its own payloads:
//
//	l, err := engine.NewLoop(engine.LoopConfig{Graph: g, Backend: b, Report: engine.NewReport(id, "local", g),
//		Payload: build, Result: read})
//	err = l.Run(ctx)   // winners: l.Scheduler().Winner(ref)
//	l.Finish(err)
//
// Attempts write their outputs under attempt-unique names; the first
// successful attempt of a task wins, so retried and duplicated attempts never duplicate output. When every
// stage is done, text sinks are committed (commit.go): winning attempt files
// become part files in a staging area beside the output, and one atomic step
// switches readers to them — an exchange of directories on a filesystem, a
// Put of the _SUCCESS manifest on object stores — under a context no signal
// cancels. A failed job publishes nothing and leaves earlier output as it
// was; a killed one leaves a staging area and a job record that the next job
// on the output, or gale gc (CleanOutput), removes.
//
// The worker runtime (Worker) decodes a TaskSpec, looks up the kernels it
// names in a kernel.Registry, wires them into typed emit chains, reads its
// input (a text chunk, encoded records, a generator range, or shuffle
// segments), and writes shuffle objects and sink outputs. Under the glider
// strategy (glider.go) it streams shuffle partitions into Glider actions
// instead — chunk by chunk while the task runs when the shuffle writer
// implements PartitionFlusher — each stream headed by the task's WriterID so
// that one attempt per task counts, and reads the actions back. In a worker,
// Mux routes each payload by its top-level "kind" field to the handler of
// that kind: Worker.Handle for stage tasks (StageTaskKind), others (cloud
// threads) as the program registers them.
//
// Goroutines: Run starts one goroutine per attempt in flight (at most
// Config.Concurrency) and one per stage being prepared, owned by the driver
// loop, which waits for all of them
// before Run returns, failed or not, and one that refreshes the job's
// records (HeartbeatInterval), stopped and waited for before the cleanup. A Worker starts one goroutine per sink
// of a running task (the object-store upload), owned by that task and joined
// before the task returns. Progress implementations may own a renderer.
//
// The engine may import backends/, backends/objstore, planner/, shuffle/
// (the shuffle's record framing, split points and object layout),
// shuffle/objects (the object-store shuffle's writer and reader), glider
// (the client of the glider strategy) and internal packages; never cloud
// SDKs.
package engine
