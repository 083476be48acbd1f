//go:build !gale_slim || gale_gcp

package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/gcp"
)

// GCPSection is the backends.gcp section:
//
//	backends:
//	  gcp:
//	    project: my-project
//	    region: europe-west1
//	    function: gale
//
// or, to run the function on this machine without an account:
//
//	backends:
//	  gcp:
//	    local: {instances: 3}
type GCPSection struct {
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
	// instances of this program's binary served by the Functions
	// Framework on loopback ports, the stand-in for trying the backend
	// without an account.
	Local *GCPLocal `yaml:"local"`
}

// GCPLocal is backends.gcp.local, the local stand-in.
type GCPLocal struct {
	// Instances is the number of worker processes. Default:
	// OpenOptions.Workers, else 2.
	Instances int `yaml:"instances"`
}

func init() {
	register(spec{
		name:  "gcp",
		about: "Google Cloud Functions (Cloud Run functions), HTTP-triggered",
		open:  openGCP,
		traits: func(f *File) (backends.Traits, error) {
			s, err := f.GCP()
			if err != nil {
				return backends.Traits{}, err
			}
			return s.Config().Traits(), nil
		},
	})
}

// GCP decodes the backends.gcp section.
func (f *File) GCP() (GCPSection, error) {
	var s GCPSection
	err := f.Decode("gcp", &s)
	return s, err
}

// Config turns the section into the backend's Config, with
// gcp.DefaultConfig's values for the keys it leaves out.
func (s GCPSection) Config() gcp.Config {
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

func openGCP(ctx context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
	s, err := f.GCP()
	if err != nil {
		return nil, false, err
	}
	cfg := s.Config()
	cfg.Concurrency = first(opts.Workers, cfg.Concurrency)
	if s.Local == nil {
		if cfg.URL == "" && len(cfg.Endpoints) == 0 && (cfg.Project == "" || cfg.Region == "" || cfg.Function == "") {
			return nil, false, fmt.Errorf("%w: gcp: no function configured: set project, region and function (or url) in the backends.gcp section of %s, "+
				"or local: {} to run the function locally", ErrNotConfigured, f.name())
		}
		b, err := gcp.New(ctx, cfg)
		if err != nil {
			return nil, false, wrapOpen("gcp", err)
		}
		return b, false, nil
	}
	if cfg.URL != "" || len(cfg.Endpoints) > 0 {
		return nil, false, f.sectionError("gcp", errors.New("sets local and also url or endpoints; keep one"))
	}
	exe, err := workerBinary()
	if err != nil {
		return nil, false, err
	}
	instances := first(s.Local.Instances, opts.Workers, 2)
	si, err := gcp.StartStandIn(ctx, gcp.StandInConfig{Path: exe, Args: opts.WorkerArgs, Instances: instances, Output: opts.Output})
	if err != nil {
		return nil, false, wrapOpen("gcp", fmt.Errorf("local function: %w", err))
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
		return nil, false, wrapOpen("gcp", err)
	}
	return &gcpLocal{Backend: b, standIn: si}, true, nil
}

// gcpLocal is the backend on a local stand-in, which it stops on Close.
type gcpLocal struct {
	*gcp.Backend
	standIn *gcp.StandIn
}

// Close closes the backend and stops the stand-in's processes.
func (l *gcpLocal) Close() error {
	err := l.Backend.Close()
	l.standIn.Close()
	return err
}
