package backends

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrNotStarted means the function certainly did not run: the invocation was
// rejected before any user code could start (throttled, refused, not
// deployed, connection refused). A backend must not return ErrNotStarted if
// the platform might have run the function.
var ErrNotStarted = errors.New("backends: task not started")

// ErrClosed is returned by Invoke after Close.
var ErrClosed = fmt.Errorf("backends: backend closed: %w", ErrNotStarted)

// Task is one invocation request.
type Task struct {
	// ID names the invocation for logs and errors, e.g.
	// "job-1f3a/stage-0/task-12/attempt-1". Backends must not parse it.
	ID string
	// Payload is the serialized task descriptor. The backend delivers it
	// unchanged to the worker's Handler. Backends must not modify it.
	Payload []byte
	// Gang, when above 1, says the task is one of Gang tasks that must run
	// at the same time because they wait for each other (the workers of an
	// iterate stage cross shared barriers together). A backend that cannot
	// run such tasks together (Traits.MaxGang) refuses them at once with an
	// error wrapping ErrGang instead of letting them wait forever.
	Gang int
}

// ErrGang is returned (wrapped) by a backend asked to run a task of a gang
// larger than it can run at once (Task.Gang, Traits.MaxGang). The task did
// not run.
var ErrGang = fmt.Errorf("backends: cannot run tasks that wait for each other at the same time: %w", ErrNotStarted)

// Result is what a completed invocation returned.
type Result struct {
	// Payload is the serialized result produced by the worker's Handler.
	// The caller owns it.
	Payload []byte
	// Invocation describes how the platform ran the task.
	Invocation Invocation
}

// Invocation records platform-level facts about one invocation, as far as the
// backend can observe them.
type Invocation struct {
	// Sent is when the client sent the request; Returned is when the
	// response arrived. Both are measured on the client's clock.
	Sent, Returned time.Time
	// Start and End are when the function began and finished running the
	// task, on the function's clock; zero if the backend cannot observe
	// them.
	Start, End time.Time
	// Instance identifies the function instance (container, microVM,
	// process, goroutine slot) that ran the task, where known.
	Instance string
	// Cold reports whether this invocation started a new instance.
	Cold bool
}

// Backend runs tasks on a function platform.
//
// Invoke is safe for concurrent use; the engine bounds how many calls are in
// flight. Invoke blocks until the task completes, fails or ctx is done; when
// ctx is done it returns promptly with an error wrapping ctx.Err() (the task
// may still be running remotely). A returned error wraps ErrNotStarted only if
// the task certainly did not run. A task that ran and failed is reported as a
// *FunctionError.
//
// Close releases the backend's resources and waits for the goroutines it
// owns. It is idempotent. Invoke after Close returns ErrClosed.
type Backend interface {
	Invoke(ctx context.Context, t Task) (Result, error)
	Close() error
}

// Handler is the worker side of a task: it receives the payload the client
// passed to Invoke and returns the result payload. The engine's worker
// runtime provides it; in-process backends call it directly.
type Handler func(ctx context.Context, payload []byte) ([]byte, error)

// FunctionError reports that the function ran and failed: it returned an
// error, panicked, timed out or ran out of memory on the platform.
type FunctionError struct {
	// Backend names the backend, e.g. "local".
	Backend string
	// Type classifies the failure, e.g. "error", "panic", "timeout".
	Type string
	// Message is the function's error text.
	Message string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("backends: %s function failed (%s): %s", e.Backend, e.Type, e.Message)
}

// Traits describes what a platform offers. Zero values mean unknown or
// unlimited.
type Traits struct {
	// Name is the backend's name, e.g. "local", "aws".
	Name string
	// MaxConcurrency is the most invocations that may run at once.
	MaxConcurrency int
	// MemoryMiB is the memory configured per instance.
	MemoryMiB int
	// VCPUs is the CPU share per instance at MemoryMiB.
	VCPUs float64
	// MaxPayloadBytes is the largest synchronous request or response.
	MaxPayloadBytes int
	// Timeout is the longest an invocation may run.
	Timeout time.Duration
	// PricePerGBSecond and PricePerRequest are in US dollars.
	PricePerGBSecond float64
	PricePerRequest  float64
	// MaxGang is the most tasks that wait for each other (Task.Gang) the
	// platform can run at the same time; zero means as many as
	// MaxConcurrency. A simulated platform, whose clock stands still while
	// a task runs, has 1. The engine refuses a job with a larger gang
	// before any task runs.
	MaxGang int
}

// Describer is implemented by backends that know their platform's traits.
// The engine falls back to zero Traits (unknown) when a backend does not
// implement it.
type Describer interface {
	Traits() Traits
}

// TraitsOf returns b's traits, or Traits{} if b does not implement Describer.
func TraitsOf(b Backend) Traits {
	if d, ok := b.(Describer); ok {
		return d.Traits()
	}
	return Traits{}
}

// Throttler is implemented by backends that back off and retry invocations
// the platform throttled (HTTP 429, TooManyRequestsException). The engine
// reports the count in the job report; backends without it report none.
type Throttler interface {
	// ThrottledRetries returns how many throttled answers were retried
	// or given up on since the backend was created.
	ThrottledRetries() int64
}

// MarkReplayable marks an HTTP invocation request as safe to resend: tasks
// may run more than once (see the package comment), so when a keep-alive
// connection that the server closed while it sat idle fails under the
// request, net/http's transport resends it on a new connection instead of
// returning an ambiguous EOF. On the new connection a stopped server shows
// as a refused dial, which backends report as ErrNotStarted. The header is
// set to nil, which net/http honours without sending it on the wire.
func MarkReplayable(h http.Header) {
	h["X-Idempotency-Key"] = nil
}
