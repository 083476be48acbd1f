package config

import (
	"context"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/process"
)

// ProcessSection is the backends.process section:
//
//	backends:
//	  process:
//	    concurrency: 8
type ProcessSection struct {
	// Concurrency is the number of worker processes (OpenOptions.Workers
	// overrides it). Default: the number of CPUs.
	Concurrency int `yaml:"concurrency"`
}

func init() {
	register(spec{
		name:  "local",
		about: "goroutines in this process (the embedded default)",
		open: func(context.Context, *File, OpenOptions) (backends.Backend, bool, error) {
			return nil, true, nil
		},
		traits: func(*File) (backends.Traits, error) {
			return backends.Traits{Name: "local", VCPUs: 1}, nil
		},
	})
	register(spec{
		name:  "process",
		about: "worker processes of this binary (a FaaS platform on a laptop)",
		open:  openProcess,
	})
}

func openProcess(_ context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
	var s ProcessSection
	if err := f.Decode("process", &s); err != nil {
		return nil, false, err
	}
	cfg := process.DefaultConfig()
	if err := CheckWorkerBinary(cfg.Path); err != nil {
		return nil, false, err
	}
	cfg.Args = opts.WorkerArgs
	cfg.Concurrency = first(opts.Workers, s.Concurrency, cfg.Concurrency)
	cfg.Output = opts.Output
	b, err := process.New(cfg)
	if err != nil {
		return nil, false, wrapOpen("process", err)
	}
	return b, true, nil
}
