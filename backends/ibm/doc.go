// Package ibm runs Gale tasks on IBM Cloud Functions, or on any Apache
// OpenWhisk deployment, and holds the worker side of OpenWhisk actions.
//
// The client side, Backend, invokes one action through OpenWhisk's
// documented REST API: POST /api/v1/namespaces/{ns}/actions/{action} with
// HTTP basic authentication (the namespace's API key, user:key). A
// blocking invocation (?blocking=true&result=true) answers 200 with the
// result, 502 when the action ran and failed (an application error, or a
// developer error such as its time or memory limit: a
// *backends.FunctionError), or 202 with the activation id when the
// platform's blocking wait (60 s) ends first, after which the backend
// polls GET /activations/{id}. A non-blocking invocation always takes the
// second path; Start and Wait expose it as an asynchronous capability.
// Throttling (429) is retried with exponential backoff and fails with
// ErrThrottled; a bad key (401, 403), a missing action (404) and an
// oversized payload (413) fail at once. All four wrap
// backends.ErrNotStarted: OpenWhisk refuses them before any activation.
//
// The worker side, ServeAction, is the entry of a Gale binary deployed as
// an action. It speaks the action interface (HTTP on port 8080: /init
// once, /run one activation at a time, the __OW_* activation context in
// the environment, the log sentinel after each activation) or, when the
// binary is the precompiled `exec` of a native Go action, the ActionLoop
// protocol (JSON lines on standard input, results on file descriptor 3).
// Each result reports the in-function start and end, the container id
// from /proc/self/cgroup, the activation id, the host's uptime (a hint of
// which Invoker VM ran it) and whether the activation was the container's
// cold start. The wire format is in wire.go.
//
// Deploy packages a Linux build of the binary as `exec` in a zip and
// creates or updates the action with PUT ?overwrite=true. Subpackage
// controller is a loopback OpenWhisk controller for tests and local runs.
// COS (IBM Cloud Object Storage) is an objstore.Store through
// ibm-cos-sdk-go.
//
// Goroutines: Backend starts none of its own (the HTTP client's
// connections aside); Close waits for the calls in flight. ServeHTTPAction
// owns its HTTP server; ServeActionLoop owns one reader; both wait for
// them before returning.
//
// This package imports backends, backends/objstore, the standard library
// and github.com/IBM/ibm-cos-sdk-go.
package ibm
