//go:build !gale_slim || gale_ibm

package gale

import (
	"github.com/galeproject/gale/backends/ibm"
)

// An OpenWhisk action (IBM Cloud Functions): every Invoker sets
// __OW_API_HOST in its action containers, whether the binary is the
// container's entry point (the action interface on port 8080) or the
// executable `exec` of a native Go action (the ActionLoop protocol).
// GALE_WORKER=ibm selects the mode explicitly, as the loopback controller
// does.
func init() {
	registerWorkerEntry("ibm", platformStarted("ibm"), ibm.ServeAction)
}
