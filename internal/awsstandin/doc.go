// Package awsstandin runs local stand-ins for the AWS services Gale's aws
// backend uses, for tests: Lambda's invoke API and S3, each a real server
// on loopback that the production aws-sdk-go-v2 clients reach through
// their endpoint settings.
//
// Lambda (Pool): a pool of AWS Lambda Runtime Interface Emulator processes
// (aws-lambda-rie), each running a real worker binary as the function's
// bootstrap, behind one loopback front end that speaks Lambda's Invoke
// protocol (POST /2015-03-31/functions/function/invocations). One
// emulator serves one invocation at a time and fails on a second
// concurrent one, whereas Lambda runs concurrent invocations in separate
// sandboxes; so the front end plays Lambda's part: it hands each
// invocation to an idle emulator (one sandbox each) and waits for one to
// be free or, with PoolConfig.Throttle, answers 429
// TooManyRequestsException as Lambda does at its concurrency limit. It
// answers an unknown function name with 404 ResourceNotFoundException and
// an Event invocation with 202 at once, running it in the background. The
// emulators' own answers (status, body) pass through unchanged: a function
// error is an errorMessage/errorType body, without the
// X-Amz-Function-Error header real Lambda adds.
//
// S3 (VersityGW): versitygw serving a directory through its posix
// backend, which verifies SigV4 signatures and computes real multipart
// ETags.
//
// Both binaries are installed into the repository's .tools/bin by
// scripts/install-standins.sh; Tool finds them. This package imports the
// standard library and internal/standin (what a test does without them).
//
// Goroutines: a Pool owns its front end's server goroutine, one
// supervisor per emulator process and the background runs of Event
// invocations; Close stops the front end, waits for those runs, stops
// every emulator (SIGTERM to its process group, SIGKILL after a grace
// period) and waits for all of them. A VersityGW owns its process's
// supervisor; Close stops the process the same way and waits for it.
package awsstandin
