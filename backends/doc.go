// Package backends defines how Gale runs one task on a function platform.
//
// A Backend invokes a task — an opaque, serialized task descriptor produced
// by the engine — on some compute platform and returns the serialized result.
// Implementations live in sub-packages, one per platform (local goroutines,
// worker processes, AWS Lambda, ...). This package holds only the interface,
// the task and result types, platform traits and the errors shared by every
// implementation, in the way database/sql/driver is apart from database/sql.
//
// The error contract matters for correctness: an Invoke that returns an error
// wrapping ErrNotStarted promises that the task certainly did not run; any
// other error means it may have run (fully or partially). The engine relies on
// this to decide whether a retry is safe without extra care; task outputs are
// attempt-scoped and committed once, so retries of tasks that may have run are
// safe too, merely more expensive.
//
// This package may import only the standard library. It starts no goroutines.
package backends
