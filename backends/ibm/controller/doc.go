// Package controller is a loopback stand-in for an OpenWhisk controller
// and its invokers, so Gale's ibm backend and worker run against the real
// protocols on one machine.
//
// It implements the documented REST API that the backend uses:
//
//   - POST /api/v1/namespaces/{ns}/actions/{action}: invoke, blocking
//     (?blocking=true, with ?result=true for the bare result) or not. A
//     blocking invocation answers 200 with the result on success, 502 with
//     the result on an application error ({"error": ...} from the action)
//     or an action developer error (time limit, crash, bad response), and
//     202 {"activationId"} when the blocking wait ends first; a
//     non-blocking one answers 202 {"activationId"} at once. Responses
//     carry the X-Openwhisk-Activation-Id header. More activations in
//     flight than Config.ConcurrentLimit get 429, as a namespace over its
//     limit does.
//   - GET /api/v1/namespaces/{ns}/activations/{id}: the activation record
//     (404 until the activation has ended), with its logs.
//   - PUT and GET /api/v1/namespaces/{ns}/actions/{action}: create or
//     update an action (?overwrite=true), as gale deploy does, and read it
//     back. An action whose code is a zip holding an executable `exec`
//     runs that executable in its containers.
//   - HTTP basic authentication on every route (401), and the namespace
//     "_" or Config.Namespace (403 otherwise).
//
// Containers are worker processes (Config.Command, or an action's `exec`)
// speaking the action interface on loopback ports: POST /init once, then
// POST /run one activation at a time, with the activation context
// (activation_id, namespace, action_name, deadline, api_key) beside the
// parameters. Each action has a pool of up to Config.MaxContainers; a warm
// idle container is reused, else one is started, else the activation
// queues. A container's standard output and error are cut into
// per-activation logs at the log sentinel; an activation that outlasts its
// time limit or whose container dies is an action developer error and its
// container is destroyed, as OpenWhisk does.
//
// What it does not reproduce: Docker (containers are plain processes on
// the host), the Invoker's memory limits and CPU shares, pre-warmed
// stem-cell containers, Kafka, per-minute rate limits, sequences, triggers,
// rules, web actions, packages and the 5 MB payload limit.
//
// Goroutines: Serve runs the HTTP server and returns when ctx is done or
// Close is called; each activation runs on a goroutine owned by the
// controller, and each container has a supervisor and two log readers.
// Close stops the server, ends every activation, kills every container and
// waits for all of them.
//
// This package imports backends/ibm and the standard library.
package controller
