// Package aws holds Gale's Amazon Web Services clients: S3, an
// objstore.Store for job input, the data-shipping shuffle and job output;
// and, later, the Lambda backend that runs tasks as function invocations.
//
// Clients use aws-sdk-go-v2 and the SDK's standard credential chain
// (environment variables, the shared config and credentials files and
// AWS_PROFILE, web identity, SSO, container and instance roles), so the same
// program runs on a laptop, on EC2 and inside Lambda without change. A custom
// endpoint with path-style addressing reaches S3-compatible servers (MinIO,
// Ceph, versitygw, gofakes3). Register the s3 scheme with a resolver:
//
//	r := objstore.NewResolver()
//	r.Register("s3", aws.S3Opener(aws.DefaultS3Config()))
//	st, err := r.Open(ctx, "s3://bucket/jobs/42")
//
// The SDK's own configuration sources (AWS_REGION, AWS_ENDPOINT_URL_S3, ...)
// are read by the SDK when a client is created; this package reads no flags
// or files itself.
//
// This package may import the standard library, backends, backends/objstore
// and the AWS SDK. It starts no goroutines of its own; a multipart Put runs
// S3Config.Concurrency uploader goroutines that end before Put returns.
package aws
