//go:build !gale_slim || gale_ibm

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/backends/ibm"
)

func init() { registerDeploy(newDeployIBMCmd) }

// newDeployIBMCmd is `gale deploy ibm`: package a Linux build of the gale
// binary as a native action and create or update it.
func newDeployIBMCmd() *cobra.Command {
	var binary, tags, action, kind, image string
	var memory int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ibm",
		Short: "Create or update the OpenWhisk action (IBM Cloud Functions) that runs Gale's workers",
		Long: `Packages a Linux (amd64) build of the gale binary as the executable "exec" of a
native Go action (kind go:1.22, or a blackbox image with --image) and creates or
updates it with PUT /api/v1/namespaces/{ns}/actions/{action}?overwrite=true,
with the memory and time limits of the backends.ibm section (or the flags).
Credentials and the API host come from that section or ~/.wskprops.

The binary is --binary, else the gale command built for linux/amd64 with
CGO_ENABLED=0, stripped, as a slim build linking only this cloud's backend
(--tags, default gale_slim,gale_ibm) from the module in the current
directory; outside a module that has the gale command, this gale binary
itself, as it is, when it is a linux/amd64 one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			cfg, s, err := conf.IBMConfig(0)
			if err != nil {
				return err
			}
			cfg.Action = first(action, cfg.Action)
			cfg.MemoryMiB = first(memory, cfg.MemoryMiB)
			cfg.Timeout = first(timeout, cfg.Timeout)
			bin, err := functionBinary{binary: binary, tags: tags, goarch: "amd64"}.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			zipped, err := ibm.PackageAction(bin)
			if err != nil {
				return err
			}
			b, err := ibm.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer b.Close()
			dc := ibm.DeployConfig{Kind: first(kind, s.Kind), Image: first(image, s.Image)}
			if err := b.Deploy(cmd.Context(), zipped, dc); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed action %s/%s: %d MiB, timeout %v, %.1f MiB zip\n",
				cfg.Namespace, cfg.Action, cfg.MemoryMiB, cfg.Timeout, float64(len(zipped))/(1<<20))
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: the gale command built for linux/amd64 with --tags from the module here, else this binary as it is)")
	cmd.Flags().StringVar(&tags, "tags", slimTags("ibm"), tagsUsage)
	cmd.Flags().StringVar(&action, "action", "", "action name (default: backends.ibm.action, else gale)")
	cmd.Flags().StringVar(&kind, "kind", "", "runtime kind (default go:1.22)")
	cmd.Flags().StringVar(&image, "image", "", "Docker image of a blackbox action (e.g. openwhisk/action-golang-v1.22)")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory limit in MiB (128-2048; default 256)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "time limit (up to 10m; default 60s)")
	return cmd
}
