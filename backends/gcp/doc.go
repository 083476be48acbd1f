// Package gcp runs Gale tasks on Google Cloud Functions (Cloud Run
// functions, HTTP-triggered) and stores objects in Google Cloud Storage.
//
// Four pieces live here:
//
//   - Backend, the client side: each task is one HTTP POST of the task
//     payload to the function's URL, authenticated with a Google identity
//     token whose audience is that URL (google.golang.org/api/idtoken, from
//     Application Default Credentials). Rejections the platform makes
//     before running the function (HTTP 429, and 500/503 "no available
//     instance") are retried with exponential backoff and end in
//     backends.ErrNotStarted; failures the worker reports become
//     *backends.FunctionError.
//   - ServeFunction and FunctionHandler, the worker side: the program's own
//     binary serves the function through the Functions Framework for Go
//     (funcframework), reporting in-function start and end times, an
//     instance id drawn at cold start (Cloud Functions exposes no container
//     id) and whether the invocation was the instance's first.
//   - GCS, an objstore.Store on a bucket through cloud.google.com/go/storage.
//   - Source and Deploy: the function source `gale deploy --backend gcp`
//     uploads (a Go package whose init replaces the process with the
//     packaged worker binary), zipped deterministically and created or
//     updated through the Cloud Functions v2 API.
//
// The wire contract between Backend and FunctionHandler is plain HTTP: the
// request body is the payload; a 200 response's body is the result, with
// the invocation facts in X-Gale-* headers; a worker-reported failure is a
// 500 response carrying X-Gale-Error-Type and the message as its body.
//
// Stand-ins: Backend takes Config.Endpoints, a list of URLs of Functions
// Framework processes on loopback (the real worker binary started with
// FUNCTION_TARGET and PORT), and sends no token to them. GCS takes a custom
// endpoint (fake-gcs-server).
//
// This package may import the standard library, backends, backends/objstore,
// the Google Cloud client libraries and the Functions Framework. Backend owns
// no goroutines beyond those of in-flight Invoke calls (net/http's
// connection goroutines belong to its transport, closed by Close).
// ServeFunction owns the HTTP server goroutine (see its comment on why the
// framework's listener cannot be stopped) and waits for running tasks.
package gcp
