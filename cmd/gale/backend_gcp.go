//go:build !gale_slim || gale_gcp

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/api/option"

	"github.com/galeproject/gale/backends/gcp"
)

func init() { registerDeploy(newDeployGCPCmd) }

// newDeployGCPCmd is `gale deploy gcp`: package a Linux build of the gale
// binary as Cloud Functions source and create or update the function.
func newDeployGCPCmd() *cobra.Command {
	var binary, tags, function, runtimeID, serviceAccount, zipOnly string
	var memory, maxInstances int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "gcp",
		Short: "Create or update the Google Cloud Function that runs Gale's workers",
		Long: `Packages a Linux (amd64) build of the gale binary as the source of a Go
Cloud Function (a Go module whose init starts the binary, which serves the
Functions Framework itself), uploads it through the Cloud Functions v2 API
(GenerateUploadUrl) and creates or updates the function (2nd gen, HTTP trigger,
one request per instance) with the memory, timeout and instance limit of the
backends.gcp section (or the flags). Credentials come from Application Default
Credentials (gcloud auth application-default login, GOOGLE_APPLICATION_CREDENTIALS
or the metadata server); the caller needs roles/cloudfunctions.developer.

The binary is --binary, else the gale command built for linux/amd64 with
CGO_ENABLED=0, stripped, as a slim build linking only this cloud's backend
(--tags, default gale_slim,gale_gcp) from the module in the current
directory; outside a module that has the gale command, this gale binary
itself, as it is, when it is a linux/amd64 one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			s, err := conf.GCP()
			if err != nil {
				return err
			}
			bin, err := functionBinary{binary: binary, tags: tags, goarch: "amd64"}.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			src, err := gcp.Source(gcp.SourceConfig{Worker: bin, Args: []string{workerCmdName}})
			if err != nil {
				return err
			}
			if zipOnly != "" {
				if err := os.WriteFile(zipOnly, src, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote the function source to %s (%.1f MiB zip)\n", zipOnly, float64(len(src))/(1<<20))
				return nil
			}
			dc := gcp.DeployConfig{
				Project: s.Project, Region: s.Region, Function: first(function, s.Function, "gale"),
				Runtime: first(runtimeID, s.Runtime), MemoryMiB: first(memory, s.MemoryMiB), Timeout: first(timeout, s.Timeout),
				MaxInstances: first(maxInstances, s.Concurrency), ServiceAccount: first(serviceAccount, s.ServiceAccount),
			}
			var opts []option.ClientOption
			if s.CredentialsFile != "" {
				opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, s.CredentialsFile))
			}
			fn, err := gcp.Deploy(cmd.Context(), dc, src, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed function %s (%s): %s, %.1f MiB source\n", fn.GetName(), fn.GetState(), fn.GetUrl(), float64(len(src))/(1<<20))
			if s.URL == "" && fn.GetUrl() != "" && fn.GetUrl() != gcp.FunctionURL(s.Project, s.Region, dc.Function) {
				fmt.Fprintf(cmd.OutOrStdout(), "set url: %s in the backends.gcp section to invoke it\n", fn.GetUrl())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: the gale command built for linux/amd64 with --tags from the module here, else this binary as it is)")
	cmd.Flags().StringVar(&tags, "tags", slimTags("gcp"), tagsUsage)
	cmd.Flags().StringVar(&function, "function", "", "function name (default: backends.gcp.function, else gale)")
	cmd.Flags().StringVar(&runtimeID, "runtime", "", "Go runtime ID (default "+gcp.DefaultRuntime+")")
	cmd.Flags().StringVar(&serviceAccount, "service-account", "", "service account the function runs as (default: the project's)")
	cmd.Flags().StringVar(&zipOnly, "zip-only", "", "write the function source zip to this file and deploy nothing")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory in MiB (128-32768; default 256)")
	cmd.Flags().IntVar(&maxInstances, "max-instances", 0, "maximum instances (default: backends.gcp.concurrency, else 100)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "request timeout (up to 60m; default 60s)")
	return cmd
}
