package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/host"
)

// azureSection is the backends.azure section of the config file.
type azureSection struct {
	// App is the Function App's name; URL overrides its base URL.
	App         string `yaml:"app"`
	Function    string `yaml:"function"`
	URL         string `yaml:"url"`
	RoutePrefix string `yaml:"route_prefix"`
	// Key is a function key; KeyEnv names an environment variable that
	// holds it (default AZURE_FUNCTIONS_KEY), so the file need not.
	Key         string        `yaml:"key"`
	KeyEnv      string        `yaml:"key_env"`
	KeyInQuery  bool          `yaml:"key_in_query"`
	Concurrency int           `yaml:"concurrency"`
	MaxAttempts int           `yaml:"max_attempts"`
	Timeout     time.Duration `yaml:"timeout"`
	// LocalHost runs the app on a local Functions host (backends/azure/
	// host) with this binary as its custom handler, instead of reaching
	// Azure: the stand-in for trying the backend without an account.
	LocalHost *azureLocalHost `yaml:"local_host"`
	// Deploy holds `gale deploy azure`'s settings.
	Deploy azureDeploySection `yaml:"deploy"`
}

// azureDeploySection is backends.azure.deploy.
type azureDeploySection struct {
	// SubscriptionID defaults to AZURE_SUBSCRIPTION_ID.
	SubscriptionID string `yaml:"subscription_id"`
	ResourceGroup  string `yaml:"resource_group"`
	// Method is package-url (default; Linux Consumption) or zipdeploy.
	Method string `yaml:"method"`
	// The storage account the package is uploaded to (package-url),
	// usually the app's AzureWebJobsStorage account; its key comes from
	// StorageKeyEnv (default AZURE_STORAGE_KEY), else the credential chain
	// with the app reading the package by managed identity.
	StorageAccount  string `yaml:"storage_account"`
	StorageEndpoint string `yaml:"storage_endpoint"`
	StorageKeyEnv   string `yaml:"storage_key_env"`
	Container       string `yaml:"container"`
	// MaxConcurrentRequests sets host.json's per-instance HTTP
	// concurrency (the thesis measured the default, 100, and 1).
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
}

// azureLocalHost configures the local host.
type azureLocalHost struct {
	// Instances is the number of worker processes. Default 2.
	Instances int `yaml:"instances"`
	// Forwarding makes the host forward HTTP requests instead of sending
	// the Data/Metadata payload.
	Forwarding bool `yaml:"forwarding"`
	// MaxConcurrentRequests bounds the invocations an instance runs at
	// once (host.json extensions.http); 0: unbounded.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
}

func init() {
	registerBackend(backendSpec{
		name:  "azure",
		about: "Azure Functions, HTTP-triggered custom handlers (Consumption plan)",
		open:  openAzure,
		traits: func(section *yaml.Node) (backends.Traits, error) {
			s, err := decodeAzure(section)
			if err != nil {
				return backends.Traits{}, err
			}
			return s.config().Traits(), nil
		},
	})
}

func decodeAzure(section *yaml.Node) (azureSection, error) {
	var s azureSection
	err := decodeSection("azure", section, &s)
	return s, err
}

// config turns the section into the backend's Config, reading the key
// from KeyEnv when the file does not hold it.
func (s azureSection) config() azure.Config {
	cfg := azure.Config{App: s.App, Function: s.Function, URL: s.URL, RoutePrefix: s.RoutePrefix, Key: s.Key,
		KeyInQuery: s.KeyInQuery, Concurrency: s.Concurrency, MaxAttempts: s.MaxAttempts, Timeout: s.Timeout}
	if cfg.Key == "" {
		env := s.KeyEnv
		if env == "" {
			env = "AZURE_FUNCTIONS_KEY"
		}
		cfg.Key = os.Getenv(env)
	}
	return cfg
}

func openAzure(ctx context.Context, env backendEnv, section *yaml.Node) (backends.Backend, error) {
	s, err := decodeAzure(section)
	if err != nil {
		return nil, err
	}
	cfg := s.config()
	if env.Workers > 0 {
		cfg.Concurrency = env.Workers
	}
	if s.LocalHost == nil {
		if cfg.App == "" && cfg.URL == "" {
			return nil, errors.New("azure: no app configured: set app (the Function App's name) in the backends.azure section of the config file, or local_host: {} to run a local Functions host")
		}
		return azure.New(ctx, cfg)
	}
	return openAzureLocal(ctx, env, s, cfg)
}

// azureLocal is the backend on a local host, which it stops on Close.
type azureLocal struct {
	*azure.Backend
	host *host.Host
	dir  string
}

func (l *azureLocal) Close() error {
	err := l.Backend.Close()
	l.host.Close()
	os.RemoveAll(l.dir)
	return err
}

// openAzureLocal lays out the app package with this binary as the custom
// handler (running `gale worker`), starts a local host on it with a fresh
// host key and returns a backend pointed at it.
func openAzureLocal(ctx context.Context, env backendEnv, s azureSection, cfg azure.Config) (backends.Backend, error) {
	if cfg.URL != "" || cfg.App != "" {
		return nil, errors.New("azure: backends.azure sets local_host and also app or url; keep one")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("azure: local host: cannot locate the gale binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "gale-azure-app-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (backends.Backend, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("azure: local host: %w", err)
	}
	if cfg.Function == "" {
		cfg.Function = "gale"
	}
	app := azure.AppConfig{Executable: "handler", Arguments: []string{workerCmdName}, Functions: []string{cfg.Function},
		Forwarding: s.LocalHost.Forwarding, MaxConcurrentRequests: s.LocalHost.MaxConcurrentRequests}
	files, err := app.Files()
	if err != nil {
		return fail(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fail(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, "handler")); err != nil {
		return fail(err)
	}
	var k [16]byte
	rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	instances := s.LocalHost.Instances
	if instances == 0 {
		instances = 2
	}
	h, err := host.Start(ctx, host.Config{Dir: dir, Instances: instances, HostKeys: []string{key}, Output: env.Stderr}, "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	cfg.URL, cfg.Key, cfg.KeyInQuery = h.URL(), key, false
	b, err := azure.New(ctx, cfg)
	if err != nil {
		h.Close()
		return fail(err)
	}
	return &azureLocal{Backend: b, host: h, dir: dir}, nil
}

// newDeployAzureCmd is `gale deploy azure`: package a Linux build of the
// gale binary as a custom-handler app and publish it to the Function App.
func newDeployAzureCmd() *cobra.Command {
	var binary, function, method, zipOnly string
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
app and, for package-url without a storage key, Storage Blob Data Contributor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			s, err := decodeAzure(conf.section("azure"))
			if err != nil {
				return err
			}
			if binary == "" {
				if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
					return usageError{fmt.Errorf("this gale binary is for %s/%s; build one for the app with GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build ./cmd/gale and pass it with --binary", runtime.GOOS, runtime.GOARCH)}
				}
				if binary, err = os.Executable(); err != nil {
					return err
				}
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
			if err := azure.PackageFile(&pkg, app, binary); err != nil {
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
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: this one, on linux/amd64)")
	cmd.Flags().StringVar(&function, "function", "", "function name (default: backends.azure.function, else gale)")
	cmd.Flags().StringVar(&method, "method", "", "package-url (default; Linux Consumption) or zipdeploy (Premium, Dedicated)")
	cmd.Flags().StringVar(&zipOnly, "zip-only", "", "write the app package zip to this file and deploy nothing")
	return cmd
}
