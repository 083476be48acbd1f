//go:build !gale_slim || gale_aws

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/backends/aws"
)

func init() { registerDeploy(newDeployAWSCmd) }

// newDeployAWSCmd is `gale deploy aws` (also `gale deploy --backend aws`):
// cross-compile the gale binary (or --main, or take --binary), package it
// as the bootstrap of a provided.al2023 function and create or update the
// function with the backends.aws section's settings.
func newDeployAWSCmd() *cobra.Command {
	var binary, mainPkg, zipOnly, function, role, arch, code, tags string
	var memory int
	var timeout, maxWait time.Duration
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "Create or update the AWS Lambda function that runs Gale's workers",
		Long: `Cross-compiles the gale command (or the Gale program --main names) for
linux/amd64 or linux/arm64 with CGO_ENABLED=0 and, unless --tags says
otherwise, as a slim build that links only the AWS backend of Gale's clouds
(-tags gale_slim,gale_aws: about a third of the full binary), from the
module in the current directory (outside a module that has the gale
command, it packages this gale binary as it is, when it is a linux one of
the function's architecture), packages it as the bootstrap
of a custom-runtime function (provided.al2023) in a deterministic zip, and
creates or updates the function through aws-sdk-go-v2 with the memory,
timeout, architecture and execution role of the backends.aws section (or the
flags), then waits until it is Active and its last update Successful.

Lambda takes a zip of up to 50 MiB inline, and 250 MiB unzipped however it
arrives. With a code location (--code s3://BUCKET/PREFIX, or code: in the
backends.aws section, with code_s3: {endpoint, region, path_style} for its
client) every package, large or small, is uploaded there as
PREFIX/FUNCTION-SHA256.zip, unless that object is already there, and
Lambda takes it from S3; the bucket must be in the function's region.
Without one, a zip over the inline limit is refused with the fix: set a
code location, or strip the binary (-ldflags='-s -w', which this command
uses when it builds). Uploaded packages stay; a lifecycle rule on the
prefix can expire old ones.

Credentials come from the SDK's chain; the caller needs lambda:GetFunction,
CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration,
PutFunctionEventInvokeConfig and iam:PassRole on the role, and with a code
location s3:PutObject and s3:GetObject on its prefix (Lambda reads the
package with the caller's credentials).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			cfg, err := conf.AWSConfig(0)
			if err != nil {
				return err
			}
			cfg.Function = awsFirst(function, cfg.Function)
			cfg.Role = awsFirst(role, cfg.Role)
			cfg.Architecture = awsFirst(arch, cfg.Architecture, "x86_64")
			cfg.MemoryMiB = awsFirst(memory, cfg.MemoryMiB)
			cfg.Timeout = awsFirst(timeout, cfg.Timeout)
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			opts, err := conf.AWSDeployOptions()
			if err != nil {
				return err
			}
			opts.Code = awsFirst(code, opts.Code)
			opts.MaxWait = maxWait
			if err := opts.Validate(); err != nil {
				if code != "" {
					err = fmt.Errorf("--code %s: %w", code, err)
				}
				return usageError{err}
			}
			goarch := map[string]string{"x86_64": "amd64", "arm64": "arm64"}[cfg.Architecture]
			bin, err := functionBinary{binary: binary, main: mainPkg, tags: tags, goarch: goarch}.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			zipFile, err := aws.BootstrapZip(bin)
			if err != nil {
				return err
			}
			if zipOnly != "" {
				if err := os.WriteFile(zipOnly, zipFile, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote the deployment package to %s (%.1f MiB zip, linux/%s bootstrap)\n", zipOnly, float64(len(zipFile))/(1<<20), goarch)
				return nil
			}
			res, err := aws.Deploy(cmd.Context(), cfg, zipFile, opts)
			if err != nil {
				return err
			}
			verb := "updated"
			if res.Created {
				verb = "created"
			}
			from := "sent inline"
			switch {
			case res.CodeLocation != "" && res.Uploaded:
				from = "uploaded to " + res.CodeLocation
			case res.CodeLocation != "":
				from = "from " + res.CodeLocation + ", already uploaded"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s, last update %s): %d MiB, timeout %s, %s, %.1f MiB package %s\n",
				verb, res.FunctionARN, res.State, res.LastUpdateStatus, cfg.MemoryMiB, cfg.Timeout, cfg.Architecture, float64(len(zipFile))/(1<<20), from)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&binary, "binary", "", "package this Linux binary instead of building one (it must reach gale.ServeWorker when AWS_LAMBDA_RUNTIME_API is set)")
	fl.StringVar(&mainPkg, "main", "", "Go main package to build as the function (default: the gale command, github.com/galeproject/gale/cmd/gale)")
	fl.StringVar(&tags, "tags", slimTags("aws"), tagsUsage)
	fl.StringVar(&zipOnly, "zip-only", "", "write the deployment package to this file and deploy nothing")
	fl.StringVar(&function, "function", "", "function name (default: backends.aws.function, else gale)")
	fl.StringVar(&role, "role", "", "execution role ARN, needed to create the function (default: backends.aws.role)")
	fl.StringVar(&arch, "arch", "", "x86_64 or arm64 (default: backends.aws.architecture, else x86_64)")
	fl.IntVar(&memory, "memory", 0, "memory in MiB, 128-10240 (default: backends.aws.memory_mib, else 1769 = 1 vCPU)")
	fl.DurationVar(&timeout, "timeout", 0, "function timeout, up to 15m (default: backends.aws.timeout, else 5m)")
	fl.StringVar(&code, "code", "", "code location s3://BUCKET/PREFIX: upload the package there and deploy it from S3, needed over Lambda's 50 MiB inline limit (default: backends.aws.code)")
	fl.DurationVar(&maxWait, "wait", 5*time.Minute, "how long to wait for the function to become active")
	return cmd
}

// awsFirst returns the first non-zero value.
func awsFirst[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}
