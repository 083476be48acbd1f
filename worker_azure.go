//go:build !gale_slim || gale_azure

package gale

import (
	"github.com/galeproject/gale/backends/azure"
)

// An Azure Functions host starts a custom handler with
// FUNCTIONS_CUSTOMHANDLER_PORT (azure.PortEnv) set: the program then
// serves tasks as the app's custom handler on that port.
func init() {
	registerWorkerEntry("azure", platformStarted("azure"), azure.ServeCustomHandler)
}
