//go:build !gale_slim || gale_azure

package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/backends/azure"
)

func init() { registerDeploy(newDeployAzureCmd) }

// newDeployAzureCmd is `gale deploy azure`: package a Linux build of the
// gale binary as a custom-handler app and publish it to the Function App.
func newDeployAzureCmd() *cobra.Command {
	var binary, tags, function, method, zipOnly string
	cmd := &cobra.Command{
		Use:   "azure",
		Short: "Publish Gale's workers to an Azure Function App as a custom handler",
		Long: `Packages a Linux (amd64) build of the gale binary as an Azure Functions
custom-handler app (host.json with customHandler.description.defaultExecutablePath
"handler" and arguments ["worker"], FUNCTION/function.json with an HTTP trigger of
authLevel "function" and an http output, the binary) in a deterministic zip, and
publishes it to the existing Function App of the backends.azure section through
the Azure SDK: with method package-url (the default, and the only way for a Linux
Consumption app) the zip goes to Blob Storage and the app's WEBSITE_RUN_FROM_PACKAGE
setting points at it; with method zipdeploy it is POSTed to the app's Kudu
/api/zipdeploy. The app's triggers are synced last. Credentials come from the
Azure SDK's default chain (az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/
AZURE_CLIENT_SECRET, managed identity); the caller needs Website Contributor on the
app and, for package-url without a storage key, Storage Blob Data Contributor.

The binary is --binary, else the gale command built for linux/amd64 with
CGO_ENABLED=0, stripped, as a slim build linking only this cloud's backend
(--tags, default gale_slim,gale_azure) from the module in the current
directory; outside a module that has the gale command, this gale binary
itself, as it is, when it is a linux/amd64 one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			s, err := conf.Azure()
			if err != nil {
				return err
			}
			bin, err := functionBinary{binary: binary, tags: tags, goarch: "amd64"}.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if function == "" {
				function = s.Function
			}
			if function == "" {
				function = "gale"
			}
			app := azure.AppConfig{Arguments: []string{workerCmdName}, Functions: []string{function},
				MaxConcurrentRequests: s.Deploy.MaxConcurrentRequests}
			var pkg bytes.Buffer
			if err := azure.Package(&pkg, app, bytes.NewReader(bin)); err != nil {
				return err
			}
			if zipOnly != "" {
				if err := os.WriteFile(zipOnly, pkg.Bytes(), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote the app package to %s (%.1f MiB zip)\n", zipOnly, float64(pkg.Len())/(1<<20))
				return nil
			}
			d := s.Deploy
			if method == "" {
				method = d.Method
			}
			keyEnv := d.StorageKeyEnv
			if keyEnv == "" {
				keyEnv = "AZURE_STORAGE_KEY"
			}
			dc := azure.DeployConfig{SubscriptionID: d.SubscriptionID, ResourceGroup: d.ResourceGroup, App: s.App, Method: method,
				Storage:   azure.BlobConfig{Account: d.StorageAccount, Endpoint: d.StorageEndpoint, Key: os.Getenv(keyEnv)},
				Container: d.Container}
			if dc.SubscriptionID == "" {
				dc.SubscriptionID = os.Getenv("AZURE_SUBSCRIPTION_ID")
			}
			if err := dc.Validate(); err != nil {
				return fmt.Errorf("%w (set them in backends.azure: app, and deploy: subscription_id, resource_group, storage_account)", err)
			}
			res, err := azure.Deploy(cmd.Context(), dc, pkg.Bytes())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %s (%.1f MiB package) to %s/api/%s\n", s.App, float64(pkg.Len())/(1<<20), res.FunctionURL, function)
			if res.PackageURL != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "the app runs from %s\n", res.PackageURL)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "get its key with: az functionapp function keys list -g %s -n %s --function-name %s\n", dc.ResourceGroup, s.App, function)
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: the gale command built for linux/amd64 with --tags from the module here, else this binary as it is)")
	cmd.Flags().StringVar(&tags, "tags", slimTags("azure"), tagsUsage)
	cmd.Flags().StringVar(&function, "function", "", "function name (default: backends.azure.function, else gale)")
	cmd.Flags().StringVar(&method, "method", "", "package-url (default; Linux Consumption) or zipdeploy (Premium, Dedicated)")
	cmd.Flags().StringVar(&zipOnly, "zip-only", "", "write the app package zip to this file and deploy nothing")
	return cmd
}
