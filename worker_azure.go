//go:build !gale_slim || gale_azure

package gale

import (
	"os"

	"github.com/galeproject/gale/backends/azure"
)

// An Azure Functions host starts a custom handler with
// FUNCTIONS_CUSTOMHANDLER_PORT set: the program then serves tasks as the
// app's custom handler on that port.
func init() {
	registerWorkerEntry("azure", func() bool { return os.Getenv(azure.PortEnv) != "" }, azure.ServeCustomHandler)
}
