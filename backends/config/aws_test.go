//go:build !gale_slim || gale_aws

package config_test

import (
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/config"
)

// The code location of the aws section reaches gale deploy's options, and
// a bad one is named with its section.
func TestAWSDeployOptions(t *testing.T) {
	isolate(t)
	f := load(t, `backends:
  aws:
    region: eu-west-1
    code: s3://my-code/gale
    code_s3:
      endpoint: http://127.0.0.1:9000
      path_style: true
`)
	o, err := f.AWSDeployOptions()
	if err != nil || o.Code != "s3://my-code/gale" || o.CodeS3.Endpoint != "http://127.0.0.1:9000" || !o.CodeS3.PathStyle || o.CodeS3.Region != "" {
		t.Errorf("AWSDeployOptions = %+v, %v", o, err)
	}
	if _, err := f.AWSConfig(0); err != nil {
		t.Errorf("AWSConfig with a code location: %v", err)
	}
	o, err = load(t, "backends:\n  aws:\n    region: eu-west-1\n").AWSDeployOptions()
	if err != nil || o.Code != "" {
		t.Errorf("no code location: %+v, %v", o, err)
	}
	o, err = (*config.File)(nil).AWSDeployOptions()
	if err != nil || o.Code != "" {
		t.Errorf("no file: %+v, %v", o, err)
	}
	_, err = load(t, "backends:\n  aws:\n    code: my-code/gale\n    code_s3:\n      endpoint: localhost:9000\n").AWSDeployOptions()
	wantErr(t, "a bad code location", err, nil, "backends.aws", `code: "my-code/gale" is not an s3://bucket/prefix URL`, `s3.endpoint "localhost:9000"`)
}

// A section with several problems is reported in one line naming the file,
// the section and every problem, the staging store's by its own keys.
func TestAWSSectionErrorsOnOneLine(t *testing.T) {
	isolate(t)
	f := load(t, `backends:
  aws:
    region: Europe
    memory_mib: 64
    staging: s3://stage/gale
    staging_s3:
      region: eu west
`)
	_, err := f.AWSConfig(0)
	if err == nil {
		t.Fatal("a bad section was accepted")
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, want := range []string{"section backends.aws", `region "Europe"`, "memory_mib 64", `staging_s3.region "eu west"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %s", msg, want)
		}
	}
}
