//go:build !gale_slim

package gale

import (
	"slices"
	"testing"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/ibm"
)

// cloudParts, written out so that a slim build knows what it lacks, agrees
// with what the full build's cloud files register and with the variables
// the backends' own packages name.
func TestCloudPartsMatchTheBackends(t *testing.T) {
	for _, c := range cloudParts {
		if _, ok := workerEntries[c.name]; !ok {
			t.Errorf("cloud %s: no worker entry", c.name)
		}
		for _, s := range c.schemes {
			if _, ok := storeSchemes[s]; !ok {
				t.Errorf("cloud %s: store scheme %s is not registered", c.name, s)
			}
		}
	}
	for cloud, env := range map[string]string{"aws": aws.RuntimeAPIEnv, "azure": azure.PortEnv, "ibm": ibm.EnvAPIHost} {
		i := slices.IndexFunc(cloudParts, func(c cloudPart) bool { return c.name == cloud })
		if i < 0 || !slices.Contains(cloudParts[i].envs, env) {
			t.Errorf("cloud %s: its platform's variable %s is not among cloudParts' %v", cloud, env, cloudParts)
		}
	}
	for name := range storeSchemes {
		if name == "glider" {
			continue
		}
		if !slices.ContainsFunc(cloudParts, func(c cloudPart) bool { return slices.Contains(c.schemes, name) }) {
			t.Errorf("store scheme %s belongs to no cloud of cloudParts", name)
		}
	}
}
