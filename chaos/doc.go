// Package chaos is Gale's fault-injection suite: every sample job (word
// count and sort with data shipping and with the Glider shuffle, k-means
// and logistic regression as stage jobs) runs under each class of fault a
// function platform or an object store produces, at a seeded rate, and
// must give exactly the answer an independent computation gives (k-means
// and logistic regression: within 1e-9 relative, the rounding of sums
// added in another order), or fail with an error naming the fault — never
// a wrong or partial output, never a hang: every run has a deadline, and
// every failure names its job, fault class and seed.
//
// The fault classes are backends/faulty's invocation faults (reject,
// fail after running, crash before running, lose the answer, duplicate,
// delay, slow: a straggler, hang) and its HTTPHandler's storage faults in
// front of an S3-compatible server (503 SlowDown, 500 before or after the
// server acted, cut bodies, slow requests); and real process faults: on
// the process backend (worker processes of the test binary), one worker
// process is sent SIGKILL or SIGSTOP once half of the first stage is done.
//
// `go test ./chaos` (part of make test) runs the fast subset: word count
// under every class, the other jobs under a mix of all classes, word
// count on S3 under storage faults, and word count under both signals. `make chaos` runs the full matrix —
// every job under every class at three seeds (go test ./chaos -full).
// A seed whose run met none of its class's faults proves nothing: the
// run is skipped and the next seed tried, up to ten, so every cell counts
// runs that injected the fault. Reproduce one run with -run and -seed.
//
// The package holds tests only; it imports nothing.
package chaos
