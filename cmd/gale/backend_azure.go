package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
