package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/api/option"
	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/gcp"
)

// gcpSection is the backends.gcp section of the config file.
type gcpSection struct {
	Project  string `yaml:"project"`
	Region   string `yaml:"region"`
	Function string `yaml:"function"`
	// URL overrides the function's derived cloudfunctions.net URL.
	URL string `yaml:"url"`
	// Endpoints are stand-in instance URLs (Functions Framework
	// processes started by hand) used instead of the function's URL.
	Endpoints       []string      `yaml:"endpoints"`
	MemoryMiB       int           `yaml:"memory_mib"`
	Timeout         time.Duration `yaml:"timeout"`
	Concurrency     int           `yaml:"concurrency"`
	Auth            string        `yaml:"auth"`
	CredentialsFile string        `yaml:"credentials_file"`
	MaxAttempts     int           `yaml:"max_attempts"`
	// Runtime and ServiceAccount are for gale deploy gcp.
	Runtime        string `yaml:"runtime"`
	ServiceAccount string `yaml:"service_account"`
	// Local runs the function locally instead of reaching Google Cloud:
	// instances of this binary served by the Functions Framework on
	// loopback ports, the stand-in for trying the backend without an
	// account.
	Local *gcpLocal `yaml:"local"`
}

// gcpLocal configures the local stand-in.
type gcpLocal struct {
	// Instances is the number of worker processes. Default: --workers,
	// else 2.
	Instances int `yaml:"instances"`
}

func init() {
	registerBackend(backendSpec{
		name:  "gcp",
		about: "Google Cloud Functions (Cloud Run functions), HTTP-triggered",
		open:  openGCP,
		traits: func(section *yaml.Node) (backends.Traits, error) {
			s, err := decodeGCP(section)
			if err != nil {
				return backends.Traits{}, err
			}
			return s.config().Traits(), nil
		},
	})
}

func decodeGCP(section *yaml.Node) (gcpSection, error) {
	var s gcpSection
	err := decodeSection("gcp", section, &s)
	return s, err
}

func (s gcpSection) config() gcp.Config {
	cfg := gcp.DefaultConfig()
	cfg.Project, cfg.Region, cfg.Function, cfg.URL, cfg.Endpoints = s.Project, s.Region, s.Function, s.URL, s.Endpoints
	cfg.MemoryMiB = first(s.MemoryMiB, cfg.MemoryMiB)
	cfg.Timeout = first(s.Timeout, cfg.Timeout)
	cfg.Concurrency = first(s.Concurrency, cfg.Concurrency)
	cfg.Auth = first(s.Auth, cfg.Auth)
	cfg.CredentialsFile = s.CredentialsFile
	cfg.MaxAttempts = first(s.MaxAttempts, cfg.MaxAttempts)
	return cfg
}

func openGCP(ctx context.Context, env backendEnv, section *yaml.Node) (backends.Backend, error) {
	s, err := decodeGCP(section)
	if err != nil {
		return nil, err
	}
	cfg := s.config()
	if env.Workers > 0 {
		cfg.Concurrency = env.Workers
	}
	if s.Local == nil {
		if cfg.URL == "" && len(cfg.Endpoints) == 0 && (cfg.Project == "" || cfg.Region == "" || cfg.Function == "") {
			return nil, errors.New("gcp: no function configured: set project, region and function (or url) in the backends.gcp section of the config file, or local: {} to run the function locally")
		}
		return gcp.New(ctx, cfg)
	}
	if cfg.URL != "" || len(cfg.Endpoints) > 0 {
		return nil, errors.New("gcp: backends.gcp sets local and also url or endpoints; keep one")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("gcp: local function: cannot locate the gale binary: %w", err)
	}
	instances := first(s.Local.Instances, env.Workers, 2)
	si, err := gcp.StartStandIn(ctx, gcp.StandInConfig{Path: exe, Args: []string{workerCmdName}, Instances: instances, Output: env.Stderr})
	if err != nil {
		return nil, err
	}
	cfg.Endpoints = si.URLs()
	cfg.Project, cfg.Region, cfg.Function = "", "", ""
	// One request per instance at a time, as gale deploy configures the
	// function: with at most as many in flight as instances, the client's
	// least-loaded choice gives each instance one.
	cfg.Concurrency = instances
	b, err := gcp.New(ctx, cfg)
	if err != nil {
		si.Close()
		return nil, err
	}
	return &gcpLocalBackend{Backend: b, standIn: si}, nil
}

// gcpLocalBackend is the backend on a local stand-in, which it stops on
// Close.
type gcpLocalBackend struct {
	*gcp.Backend
	standIn *gcp.StandIn
}

func (l *gcpLocalBackend) Close() error {
	err := l.Backend.Close()
	l.standIn.Close()
	return err
}

// newDeployGCPCmd is `gale deploy gcp`: package a Linux build of the gale
// binary as Cloud Functions source and create or update the function.
func newDeployGCPCmd() *cobra.Command {
	var binary, function, runtimeID, serviceAccount, zipOnly string
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
or the metadata server); the caller needs roles/cloudfunctions.developer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			s, err := decodeGCP(conf.section("gcp"))
			if err != nil {
				return err
			}
			if binary == "" {
				if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
					return usageError{fmt.Errorf("this gale binary is for %s/%s; build one for the function with GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build ./cmd/gale and pass it with --binary", runtime.GOOS, runtime.GOARCH)}
				}
				if binary, err = os.Executable(); err != nil {
					return err
				}
			}
			bin, err := os.ReadFile(binary)
			if err != nil {
				return fmt.Errorf("reading the function's binary: %w", err)
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
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: this one, on linux/amd64)")
	cmd.Flags().StringVar(&function, "function", "", "function name (default: backends.gcp.function, else gale)")
	cmd.Flags().StringVar(&runtimeID, "runtime", "", "Go runtime ID (default "+gcp.DefaultRuntime+")")
	cmd.Flags().StringVar(&serviceAccount, "service-account", "", "service account the function runs as (default: the project's)")
	cmd.Flags().StringVar(&zipOnly, "zip-only", "", "write the function source zip to this file and deploy nothing")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory in MiB (128-32768; default 256)")
	cmd.Flags().IntVar(&maxInstances, "max-instances", 0, "maximum instances (default: backends.gcp.concurrency, else 100)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "request timeout (up to 60m; default 60s)")
	return cmd
}
