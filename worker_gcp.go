//go:build !gale_slim || gale_gcp

package gale

import (
	"github.com/galeproject/gale/backends/gcp"
)

// Google Cloud Functions: the platform (and the Functions Framework
// stand-in) starts the worker with FUNCTION_TARGET set; Cloud Run sets
// K_SERVICE in every instance. The worker serves HTTP invocations on PORT.
func init() {
	registerWorkerEntry("gcp", platformStarted("gcp"), gcp.ServeFunction)
}
