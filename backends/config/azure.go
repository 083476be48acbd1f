//go:build !gale_slim || gale_azure

package config

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/host"
)

// AzureSection is the backends.azure section:
//
//	backends:
//	  azure:
//	    app: my-function-app
//	    key_env: AZURE_FUNCTIONS_KEY
//
// or, to run the app on a local Functions host without an account:
//
//	backends:
//	  azure:
//	    local_host: {instances: 2}
type AzureSection struct {
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
	// host) with this program's binary as its custom handler, instead of
	// reaching Azure: the stand-in for trying the backend without an
	// account.
	LocalHost *AzureLocalHost `yaml:"local_host"`
	// Deploy holds `gale deploy azure`'s settings.
	Deploy AzureDeploy `yaml:"deploy"`
}

// AzureDeploy is backends.azure.deploy.
type AzureDeploy struct {
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

// AzureLocalHost is backends.azure.local_host, the local host.
type AzureLocalHost struct {
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
	register(spec{
		name:  "azure",
		about: "Azure Functions, HTTP-triggered custom handlers (Consumption plan)",
		open:  openAzure,
		traits: func(f *File) (backends.Traits, error) {
			s, err := f.Azure()
			if err != nil {
				return backends.Traits{}, err
			}
			return s.Config().Traits(), nil
		},
	})
}

// Azure decodes the backends.azure section.
func (f *File) Azure() (AzureSection, error) {
	var s AzureSection
	err := f.Decode("azure", &s)
	return s, err
}

// Config turns the section into the backend's Config, reading the key
// from the KeyEnv environment variable when the file does not hold it.
func (s AzureSection) Config() azure.Config {
	cfg := azure.Config{App: s.App, Function: s.Function, URL: s.URL, RoutePrefix: s.RoutePrefix, Key: s.Key,
		KeyInQuery: s.KeyInQuery, Concurrency: s.Concurrency, MaxAttempts: s.MaxAttempts, Timeout: s.Timeout}
	if cfg.Key == "" {
		cfg.Key = os.Getenv(first(s.KeyEnv, "AZURE_FUNCTIONS_KEY"))
	}
	return cfg
}

func openAzure(ctx context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
	s, err := f.Azure()
	if err != nil {
		return nil, false, err
	}
	cfg := s.Config()
	cfg.Concurrency = first(opts.Workers, cfg.Concurrency)
	if s.LocalHost == nil {
		if cfg.App == "" && cfg.URL == "" {
			return nil, false, fmt.Errorf("%w: azure: no app configured: set app (the Function App's name) in the backends.azure section of %s, "+
				"or local_host: {} to run a local Functions host", ErrNotConfigured, f.name())
		}
		b, err := azure.New(ctx, cfg)
		if err != nil {
			return nil, false, wrapOpen("azure", err)
		}
		return b, false, nil
	}
	if cfg.URL != "" || cfg.App != "" {
		return nil, false, f.sectionError("azure", errors.New("sets local_host and also app or url; keep one"))
	}
	b, err := openAzureLocal(ctx, *s.LocalHost, cfg, opts)
	if err != nil {
		return nil, false, wrapOpen("azure", fmt.Errorf("local host: %w", err))
	}
	return b, true, nil
}

// azureLocal is the backend on a local host, which it stops on Close.
type azureLocal struct {
	*azure.Backend
	host *host.Host
	dir  string
}

// Close closes the backend, stops the host and removes the app's files.
func (l *azureLocal) Close() error {
	err := l.Backend.Close()
	l.host.Close()
	os.RemoveAll(l.dir)
	return err
}

// openAzureLocal lays out the app package with this program's binary as
// the custom handler (run with opts.WorkerArgs), starts a local host on it
// with a fresh host key and returns a backend pointed at it.
func openAzureLocal(ctx context.Context, lh AzureLocalHost, cfg azure.Config, opts OpenOptions) (backends.Backend, error) {
	exe, err := workerBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gale-azure-app-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (backends.Backend, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg.Function = first(cfg.Function, "gale")
	app := azure.AppConfig{Executable: "handler", Arguments: opts.WorkerArgs, Functions: []string{cfg.Function},
		Forwarding: lh.Forwarding, MaxConcurrentRequests: lh.MaxConcurrentRequests}
	if err := azure.WriteApp(dir, app, exe); err != nil {
		return fail(err)
	}
	var k [16]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+)
	key := hex.EncodeToString(k[:])
	h, err := host.Start(ctx, host.Config{Dir: dir, Instances: first(lh.Instances, 2), HostKeys: []string{key}, Output: opts.Output}, "127.0.0.1:0")
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
