// Package aws holds Gale's Amazon Web Services backend: Lambda, which runs
// tasks as function invocations, and S3, an objstore.Store for job input,
// the data-shipping shuffle, job output and Lambda's staging of large
// payloads.
//
// Clients use aws-sdk-go-v2 and the SDK's standard credential chain
// (environment variables, the shared config and credentials files and
// AWS_PROFILE, web identity, SSO, container and instance roles), so the same
// program runs on a laptop, on EC2 and inside Lambda without change. A custom
// endpoint with path-style addressing reaches S3-compatible servers (MinIO,
// Ceph, versitygw, gofakes3); a custom Lambda endpoint (the client's
// BaseEndpoint) reaches the Lambda Runtime Interface Emulator. Register the
// s3 scheme with a resolver:
//
//	r := objstore.NewResolver()
//	r.Register("s3", aws.S3Opener(aws.DefaultS3Config()))
//	st, err := r.Open(ctx, "s3://bucket/jobs/42")
//
// Lambda has three parts:
//
//   - The client, Lambda (NewLambda), a backends.Backend: Invoke is a
//     synchronous RequestResponse invocation; InvokeAsync and Wait (the
//     AsyncInvoker capability) an asynchronous Event invocation whose
//     result the worker writes to the staging store. Payloads and results
//     over Lambda's limits go through the staging store. Throttling (429)
//     is retried with backoff and counted (Stats); every other error says
//     whether the task may have run (backends.ErrNotStarted) and how to
//     fix the cause.
//   - The worker, ServeLambda: the Gale program is the function's
//     `bootstrap` (custom runtime provided.al2023), served by
//     aws-lambda-go's runtime loop.
//   - Deployment: BootstrapZip packages a linux binary as a deterministic
//     zip, and Deploy creates or updates the function and waits until it
//     is active (`gale deploy --backend aws`); with a code location
//     (DeployOptions.Code) the package goes through S3 under a
//     content-addressed key, as packages over the 50 MiB inline limit
//     must.
//
// Invocations carry a small JSON envelope (envelope.go) around the task
// payload, so that results report in-function start and end times, the
// sandbox identity and cold starts, and so that large payloads can be
// replaced by a reference to the staging store.
//
// The SDK's own configuration sources (AWS_REGION, AWS_ENDPOINT_URL_S3, ...)
// are read by the SDK when a client is created; this package reads no flags
// or files itself. ServeLambda reads the environment Lambda sets
// (AWS_LAMBDA_RUNTIME_API, through aws-lambda-go) and /proc/self/cgroup.
//
// This package may import the standard library, backends, backends/objstore,
// the AWS SDK and aws-lambda-go. It starts no goroutines of its own; a
// multipart Put runs S3Config.Concurrency uploader goroutines that end
// before Put returns, and ServeLambda hands the process to aws-lambda-go's
// runtime loop, which runs for the life of the sandbox.
package aws
