//go:build !gale_slim || gale_aws

package gale

import (
	"github.com/galeproject/gale/backends/aws"
)

// AWS Lambda: the platform (and the Runtime Interface Emulator) starts the
// function's bootstrap with AWS_LAMBDA_RUNTIME_API set; the worker polls
// that Runtime API for invocations.
func init() {
	registerWorkerEntry("aws", platformStarted("aws"), aws.ServeLambda)
}
