// Package stages is Gale's planner for Beam pipelines: it turns a portable
// Beam pipeline proto into stages of fused transforms, each described by a
// standard Fn API ProcessBundleDescriptor that the Beam Go SDK's exec
// package runs, joined by edges that Gale's runner moves through its
// temporary store.
//
// Build expands composites (lifting CombinePerKey into precombine, group
// and merge, and expanding splittable DoFns into pair, split-and-size and
// process steps), fuses the SDK-executed transforms between runner
// boundaries, and cuts:
//
//   - at every GroupByKey (a Group edge: hash-partitioned by encoded key,
//     grouped by key and window on the consuming side);
//   - at every Flatten (a Redistribute edge that unions its inputs) and
//     every Reshuffle (a Redistribute edge; see reshuffle.go);
//   - before every ParDo with side inputs (its main input is redistributed,
//     its side inputs are materialized whole as Side edges), so the side
//     inputs are complete before it runs;
//   - before the processing step of a splittable DoFn, so the restrictions
//     its split step produced (textio's 64 MiB blocks) are spread over
//     tasks.
//
// Check lists what Gale cannot run (more than one TestStream, triggers on
// session windows, unbounded sources other than splittable DoFns and a
// TestStream, cross-language transforms).
//
// A TestStream is a root stage of one task; a GroupByKey fed by it, or
// whose windowing strategy has a trigger, gets a Replay: its consumer
// fires panes as the trigger and the stream's clock say (teststream.go).
//
// A ParDo with user state or timers starts a stage of its own that reads
// a Keyed edge.
//
// This package is pure: proto in, plan out; no I/O, goroutines or clocks.
// It imports the Beam model protos and the Go SDK's graphx URNs only.
package stages
