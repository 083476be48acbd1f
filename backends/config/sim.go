package config

import (
	"context"
	"errors"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
)

// SimSection is a backends.sim:NAME section, for the simulated platforms
// (`--backend sim:aws`, and azure, gcp, ibm): they run a job's tasks for
// real in this process, one at a time, and account their CPU time in the
// simulated time of the platform's model, so the report predicts the
// job's makespan and cost there (engine.Simulator).
//
//	backends:
//	  sim:gcp:
//	    seed: 7
//	    memory_mib: 1024
type SimSection struct {
	Seed      *uint64       `yaml:"seed"`
	MemoryMiB int           `yaml:"memory_mib"`
	Settle    time.Duration `yaml:"settle"`
}

func init() {
	for _, name := range sim.Presets() {
		register(spec{
			name:  "sim:" + name,
			about: "simulated " + name + " platform: runs the job here, predicts its makespan and cost there",
			open: func(_ context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
				b, err := openSim(name, f, opts.Handler)
				if err != nil {
					return nil, false, err
				}
				return b, true, nil
			},
			traits: func(f *File) (backends.Traits, error) {
				b, err := openSim(name, f, nil)
				if err != nil {
					return backends.Traits{}, err
				}
				defer b.Close()
				return b.Traits(), nil
			},
		})
	}
}

// simJobBackend is a simulated platform whose handler is Gale's stage
// worker (or the caller's handler, with no worker); closing it closes
// both.
type simJobBackend struct {
	*sim.Backend
	worker *engine.Worker
}

// Close closes the simulator and the worker.
func (b simJobBackend) Close() error {
	if b.worker == nil {
		return b.Backend.Close()
	}
	return errors.Join(b.Backend.Close(), b.worker.Close())
}

// openSim opens the simulated platform preset. Its tasks run through
// handler, or Gale's stage worker if handler is nil.
func openSim(preset string, f *File, handler backends.Handler) (simJobBackend, error) {
	section := "sim:" + preset
	var sec SimSection
	if err := f.Decode(section, &sec); err != nil {
		return simJobBackend{}, err
	}
	cfg, err := sim.DefaultConfig(preset)
	if err != nil {
		return simJobBackend{}, wrapOpen(section, err)
	}
	if sec.Seed != nil {
		cfg.Seed = *sec.Seed
	}
	cfg.MemoryMiB, cfg.Settle = sec.MemoryMiB, sec.Settle
	if handler != nil {
		cfg.Handler = handler
		b, err := sim.New(cfg)
		if err != nil {
			return simJobBackend{}, f.sectionError(section, err)
		}
		return simJobBackend{Backend: b}, nil
	}
	// The worker of gale.NewWorkerMux, built here so the backend can close
	// it.
	w, err := gale.NewWorker()
	if err != nil {
		return simJobBackend{}, wrapOpen(section, err)
	}
	mux := engine.NewMux()
	mux.Register(engine.StageTaskKind, w.Handle)
	cfg.Handler = mux.Handle
	b, err := sim.New(cfg)
	if err != nil {
		w.Close()
		return simJobBackend{}, f.sectionError(section, err)
	}
	return simJobBackend{b, w}, nil
}
