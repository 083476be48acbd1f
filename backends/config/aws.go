//go:build !gale_slim || gale_aws

package config

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
)

// AWSSection is the backends.aws section:
//
//	backends:
//	  aws:
//	    region: eu-west-1
//	    function: gale
//	    memory_mib: 1769
//	    timeout: 5m
//	    concurrency: 1000
//	    role: arn:aws:iam::123456789012:role/gale-worker
//	    staging: s3://my-bucket/gale-staging
//	    code: s3://my-bucket/gale-code
//
// Credentials come from the SDK's chain (AWS_PROFILE or profile, the
// environment, SSO, roles), never from this file. The fields are those of
// aws.LambdaConfig.
type AWSSection struct {
	Region       string        `yaml:"region"`
	Endpoint     string        `yaml:"endpoint"`
	Profile      string        `yaml:"profile"`
	Function     string        `yaml:"function"`
	Qualifier    string        `yaml:"qualifier"`
	MemoryMiB    int           `yaml:"memory_mib"`
	Timeout      time.Duration `yaml:"timeout"`
	Concurrency  int           `yaml:"concurrency"`
	Role         string        `yaml:"role"`
	Architecture string        `yaml:"architecture"`
	// Staging is an s3://bucket/prefix URL for large payloads and results
	// and for asynchronous results; StagingS3 its client options.
	Staging   string `yaml:"staging"`
	StagingS3 struct {
		Endpoint  string `yaml:"endpoint"`
		Region    string `yaml:"region"`
		PathStyle bool   `yaml:"path_style"`
		Profile   string `yaml:"profile"`
	} `yaml:"staging_s3"`
	MaxThrottleRetries int           `yaml:"max_throttle_retries"`
	ThrottleBackoff    time.Duration `yaml:"throttle_backoff"`
	// Code is an s3://bucket/prefix URL where gale deploy uploads the
	// deployment package for Lambda to take (aws.DeployOptions.Code);
	// CodeS3 its client options, whose empty region is the function's.
	Code   string `yaml:"code"`
	CodeS3 struct {
		Endpoint  string `yaml:"endpoint"`
		Region    string `yaml:"region"`
		PathStyle bool   `yaml:"path_style"`
		Profile   string `yaml:"profile"`
	} `yaml:"code_s3"`
}

func init() {
	register(spec{
		name:  "aws",
		about: "AWS Lambda (aws-sdk-go-v2), custom runtime bootstrap; gale deploy --backend aws",
		open:  openAWS,
		traits: func(f *File) (backends.Traits, error) {
			cfg, err := f.AWSConfig(0)
			if err != nil {
				return backends.Traits{}, err
			}
			return cfg.Traits(), nil
		},
	})
}

// AWSConfig decodes the backends.aws section into a validated
// aws.LambdaConfig; workers, if positive, overrides its concurrency.
func (f *File) AWSConfig(workers int) (aws.LambdaConfig, error) {
	var s AWSSection
	if err := f.Decode("aws", &s); err != nil {
		return aws.LambdaConfig{}, err
	}
	cfg := aws.LambdaConfig{
		Region: s.Region, Endpoint: s.Endpoint, Profile: s.Profile, Function: s.Function, Qualifier: s.Qualifier,
		MemoryMiB: s.MemoryMiB, Timeout: s.Timeout, Concurrency: first(workers, s.Concurrency), Role: s.Role,
		Architecture: s.Architecture, Staging: s.Staging, MaxThrottleRetries: s.MaxThrottleRetries, ThrottleBackoff: s.ThrottleBackoff,
		StagingS3: aws.S3Config{Endpoint: s.StagingS3.Endpoint, Region: s.StagingS3.Region, PathStyle: s.StagingS3.PathStyle,
			Profile: s.StagingS3.Profile},
	}
	if err := cfg.Validate(); err != nil {
		return aws.LambdaConfig{}, f.sectionError("aws", err)
	}
	return cfg, nil
}

// AWSDeployOptions decodes the code location of the backends.aws section
// (code, code_s3) into validated aws.DeployOptions for gale deploy.
func (f *File) AWSDeployOptions() (aws.DeployOptions, error) {
	var s AWSSection
	if err := f.Decode("aws", &s); err != nil {
		return aws.DeployOptions{}, err
	}
	o := aws.DeployOptions{Code: s.Code, CodeS3: aws.S3Config{Endpoint: s.CodeS3.Endpoint, Region: s.CodeS3.Region,
		PathStyle: s.CodeS3.PathStyle, Profile: s.CodeS3.Profile}}
	if err := o.Validate(); err != nil {
		return aws.DeployOptions{}, f.sectionError("aws", err)
	}
	return o, nil
}

func openAWS(ctx context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
	cfg, err := f.AWSConfig(opts.Workers)
	if err != nil {
		return nil, false, err
	}
	l, err := aws.NewLambda(ctx, cfg)
	if err != nil {
		return nil, false, wrapOpen("aws", err)
	}
	if opts.Report == nil {
		return l, false, nil
	}
	return &awsReporting{Lambda: l, report: opts.Report}, false, nil
}

// awsReporting prints the backend's counters (throttled invocations among
// them) when it closes.
type awsReporting struct {
	*aws.Lambda
	report io.Writer
}

// Close closes the Lambda backend and reports its counters.
func (b *awsReporting) Close() error {
	err := b.Lambda.Close()
	if st := b.Stats(); st.Invocations > 0 {
		fmt.Fprintf(b.report, "aws: %d Lambda invocations, %d throttled (retried with backoff), %d gave up after retries, %d payloads and %d results staged in S3\n",
			st.Invocations, st.Throttled, st.GaveUp, st.StagedPayloads, st.StagedResults)
	}
	return err
}
