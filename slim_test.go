package gale_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// Every cloud is linked unless the build is slim; a slim build links those
// whose tags it adds (the test runs under both: see the Makefile).
func TestLinkedClouds(t *testing.T) {
	got := gale.LinkedClouds()
	t.Logf("linked clouds: %v", got)
	for _, c := range []string{"aws", "azure", "gcp", "ibm"} {
		err := gale.CloudNotLinked(c)
		if linked := slices.Contains(got, c); linked != (err == nil) {
			t.Errorf("%s: linked %v, CloudNotLinked %v", c, linked, err)
		}
		if !slimBuild && err != nil {
			t.Errorf("a full build lacks %s: %v", c, err)
		}
		if err != nil && !strings.Contains(err.Error(), "-tags gale_slim,gale_"+c) {
			t.Errorf("%s: %v does not name the tag that links it", c, err)
		}
	}
	if slimBuild && len(got) == 4 {
		t.Errorf("a slim build links every cloud: %v", got)
	}
	if err := gale.CloudNotLinked("local"); err != nil {
		t.Errorf("local: %v", err)
	}
}

// What a slim build lacks fails with the tag that links it: store URLs,
// store options and the platform that starts a worker.
func TestSlimBuildNamesWhatItLacks(t *testing.T) {
	for _, c := range []struct{ cloud, url, option, env string }{
		{"aws", "s3://bucket/x", "s3.region", "AWS_LAMBDA_RUNTIME_API"},
		{"gcp", "gs://bucket/x", "gs.endpoint", "K_SERVICE"},
		{"azure", "azblob://container/x", "azblob.account", "FUNCTIONS_CUSTOMHANDLER_PORT"},
		{"ibm", "cos://bucket/x", "cos.region", "__OW_API_HOST"},
	} {
		if gale.CloudNotLinked(c.cloud) == nil {
			continue
		}
		tag := "-tags gale_slim,gale_" + c.cloud
		_, err := gale.OpenStore(context.Background(), c.url, nil)
		if err == nil || !strings.Contains(err.Error(), tag) || !strings.Contains(err.Error(), c.url) {
			t.Errorf("OpenStore(%s): %v, want the URL and %q", c.url, err, tag)
		}
		_, err = gale.OpenStore(context.Background(), "file:///tmp", map[string]string{c.option: "x"})
		if err == nil || !strings.Contains(err.Error(), tag) || !strings.Contains(err.Error(), c.option) {
			t.Errorf("store option %s: %v, want the option and %q", c.option, err, tag)
		}
		t.Run(c.cloud+" worker", func(t *testing.T) {
			t.Setenv(gale.WorkerEnv, "")
			t.Setenv(c.env, "1")
			if m := gale.WorkerMode(); m != c.cloud {
				t.Errorf("WorkerMode with %s set: %q, want %q", c.env, m, c.cloud)
			}
			err := gale.ServeWorker(context.Background())
			if err == nil || !strings.Contains(err.Error(), tag) {
				t.Errorf("ServeWorker with %s set: %v, want %q", c.env, err, tag)
			}
		})
	}
}
