// Package azure is Gale's Azure Functions backend: tasks run as
// invocations of an HTTP-triggered function whose custom handler is the
// program's own binary in worker mode.
//
// The client side, Backend, POSTs each task to
// https://APP.azurewebsites.net/api/FUNCTION with a function key (the
// x-functions-key header, or the code query parameter) and maps the
// answer: a worker's result or failure (*backends.FunctionError), HTTP
// 429/503 retried with backoff and then ErrThrottled, 401/403
// ErrUnauthorized, 404 ErrNotDeployed, all three wrapping
// backends.ErrNotStarted. Traits are those of the Consumption plan
// (Table 3.1 of the thesis and the public price list).
//
// The worker side, ServeCustomHandler, is a custom handler: an HTTP server
// on the loopback port the Functions host names in
// FUNCTIONS_CUSTOMHANDLER_PORT that accepts both of the host's forms of an
// invocation, the forwarded HTTP request and the Data/Metadata payload
// (answered with Outputs/Logs/ReturnValue). It reports the in-function
// start and end times, the instance (WEBSITE_INSTANCE_ID, else an id drawn
// at start) and whether the invocation was the instance's first.
//
// Blob is an objstore.Store on Azure Blob Storage (azblob); Package and
// Deploy build and publish the custom-handler app. The sub-package host
// is a local Functions host that follows the custom-handler contract, the
// stand-in the tests and `gale run --backend azure` use on a machine with
// no Azure account.
//
// This package may import the standard library, backends,
// backends/objstore and the Azure SDK for Go. Backend owns no goroutines
// (the HTTP transport's connections are its own); Close waits for the
// Invoke calls in flight. Serve owns its HTTP server's goroutines and
// waits for them before it returns.
package azure
