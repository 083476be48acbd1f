package config_test

import (
	"context"
	"slices"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/config"
)

// A cloud backend a slim build leaves out is not listed, and its config
// section and its name fail with the tag that links it.
func TestSlimBuildLacksUnlinkedBackends(t *testing.T) {
	isolate(t)
	for _, cloud := range []string{"aws", "azure", "gcp", "ibm"} {
		linked := gale.CloudNotLinked(cloud) == nil
		if config.Known(cloud) != linked || slices.Contains(config.Names(), cloud) != linked {
			t.Errorf("%s: linked %v, Known %v, Names %v", cloud, linked, config.Known(cloud), config.Names())
		}
		if !config.Known("sim:" + cloud) {
			t.Errorf("sim:%s is not known; simulations link no SDK", cloud)
		}
		if linked {
			continue
		}
		tag := "-tags gale_slim,gale_" + cloud
		_, err := config.Parse("gale.yaml", []byte("backends:\n  "+cloud+": {}\n"))
		wantErr(t, "a section for "+cloud, err, nil, "gale.yaml", cloud, tag)
		_, err = config.Open(context.Background(), cloud, nil, config.OpenOptions{})
		wantErr(t, "opening "+cloud, err, config.ErrUnknownBackend, tag)
	}
}
