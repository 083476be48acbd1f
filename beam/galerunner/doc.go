// Package galerunner runs Apache Beam Go pipelines on Gale.
//
// A blank import registers the runner under the name "gale", so an
// unchanged Beam program runs on Gale with --runner=gale:
//
//	import _ "github.com/galeproject/gale/beam/galerunner"
//
//	func main() {
//		flag.Parse()
//		beam.Init()
//		p := beam.NewPipeline()
//		...
//		if err := beamx.Run(context.Background(), p); err != nil { // --runner=gale
//			log.Fatal(err)
//		}
//	}
//
// Execute marshals the pipeline to the portable pipeline proto
// (graphx.Marshal), rejects what Gale cannot run with one error listing
// every unsupported feature (more than one TestStream, triggers on session
// windows, unbounded sources that are not splittable DoFns or a
// TestStream, cross-language transforms),
// compiles it into stages of fused transforms (package
// beam/internal/stages) and runs them through the engine's driver loop
// (engine.Loop, the one gale run uses) on a Gale backend: each task runs its stage's ProcessBundleDescriptor through the
// Beam SDK's exec package inside the worker (package beam/internal/worker)
// and moves data between stages through Gale's temporary store.
//
// The worker is the pipeline's own binary. The process backend starts it
// with GALE_WORKER set, a cloud platform (or its stand-in) as its
// function; beam.Init (through an init hook this package registers) or
// Execute then serves Gale worker tasks of kind "gale.beam/v1" through the
// platform's worker entry (gale.ServeWorkerIfRequested) instead of
// building and running the pipeline again.
//
// Flags (Beam runners are configured by flags; Execute reads them, Run
// takes a Config): --gale_backend (local, process, aws, gcp, azure or
// ibm; OpenBackend builds it from Gale's config file, --gale_config),
// --gale_workers, --gale_partitions, --gale_temp, --gale_worker_memory
// (each task's memory budget; a GroupByKey partition past half of it is
// grouped by spilling to the worker's disk), --gale_report, --gale_events
// (the job's events as JSON lines, as gale run --events writes them) and
// --gale_ui[=HOST:PORT] (the job dashboard of package ui, on loopback)
// with --gale_ui_wait, --gale_speculation=off (no backup attempts for
// straggling tasks), --gale_task_timeout and --gale_progress.
//
// Because the engine's loop runs the tasks, a Beam job gets what a Gale
// job gets: retries, backup attempts for stragglers, per-task deadlines,
// interruption (engine.ErrInterrupted), events, the progress display and
// the same report.
//
// Goroutines: the engine's driver loop (engine.Loop) owns one goroutine
// per task attempt in flight and waits for all of them before Run returns;
// the backends own theirs (see package backends).
//
// OpenBackend's local stand-ins (the gcp local functions, the azure local
// host) own their worker processes until the OpenedBackend is closed.
//
// This package imports the Beam Go SDK and Gale's root package, engine
// (the driver loop, its task graph and report), ui (the dashboard),
// backends, backends/local,
// backends/objstore and backends/config, which reads Gale's config file
// and builds the other backends the way `gale run --backend` does.
package galerunner
