// Package conformance runs Apache Beam's own tests of the Go SDK — its
// integration primitives and the pipeline tests of its packages — on
// Prism and on Gale's local and process backends, and tabulates the
// outcome of every test function that executes a pipeline, one row per
// test and one column per runner. Beam's own checks (passert) are the
// oracle; Beam's tests are compiled unchanged from the module cache.
//
// How a test binary is built: Go refuses an overlay that adds a file to
// the module cache, so Run makes a scratch workspace (a go.work using
// this repository's two modules) in which the SDK module is replaced by a
// symbolic link to its directory in the module cache, and compiles each
// package's tests with `go test -c -overlay`, the overlay adding one test
// file that imports package hook (Gale's runner and Prism under a name
// Beam's per-runner skip lists do not know). Nothing of Beam is copied.
// The SDK is compiled once more from the link's path (about 2.5 minutes
// of CPU the first time, cached after that).
//
// How it runs: each binary runs once per runner (Runners: Prism,
// --runner=gale with --gale_backend local and process), under
// `go tool test2json`; a test's row records pass, fail (with the first
// line of its failure), skip (with its reason) or, for Gale, rejected
// (the pipeline used a feature Gale refuses before any task runs, with
// the first such feature). A row exists for each test in which Prism
// executed a pipeline. Known lists the tests Gale is known not to pass
// with the reason; Verdict reports a test Prism passes that Gale does
// not and that Known does not excuse, and a Known entry that Gale now
// passes.
//
// The command is beam/cmd/beam-conformance (`make beam-conformance`); the
// package's test runs the Fast suites (the primitives) as part of `make
// test`.
//
// Run starts one child process at a time (the go command, a test binary
// under test2json) and waits for it; it owns no other goroutines.
package conformance
