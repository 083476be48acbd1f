package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
)

// The simulated platforms: `--backend sim:aws` (and azure, gcp, ibm) runs
// a job's tasks for real in this process, one at a time, and accounts
// their CPU time in the simulated time of the platform's model, so the
// report predicts the job's makespan and cost there (engine.Simulator).
// A config section backends.sim:NAME may set the model's seed, the
// function's memory and the settle time:
//
//	backends:
//	  sim:gcp:
//	    seed: 7
//	    memory_mib: 1024
func init() {
	for _, name := range sim.Presets() {
		registerBackend(backendSpec{
			name:  "sim:" + name,
			about: "simulated " + name + " platform: runs the job here, predicts its makespan and cost there",
			open: func(_ context.Context, _ backendEnv, section *yaml.Node) (backends.Backend, error) {
				return openSim(name, section)
			},
			traits: func(section *yaml.Node) (backends.Traits, error) {
				b, err := openSim(name, section)
				if err != nil {
					return backends.Traits{}, err
				}
				defer b.Close()
				return b.Traits(), nil
			},
		})
	}
}

// simSection is a sim:NAME config section.
type simSection struct {
	Seed      *uint64       `yaml:"seed"`
	MemoryMiB int           `yaml:"memory_mib"`
	Settle    time.Duration `yaml:"settle"`
}

// simJobBackend is a simulated platform whose handler is this program's
// stage worker; closing it closes both.
type simJobBackend struct {
	*sim.Backend
	worker *engine.Worker
}

func (b simJobBackend) Close() error { return errors.Join(b.Backend.Close(), b.worker.Close()) }

func openSim(preset string, section *yaml.Node) (simJobBackend, error) {
	var sec simSection
	if err := decodeSection("sim:"+preset, section, &sec); err != nil {
		return simJobBackend{}, err
	}
	cfg, err := sim.DefaultConfig(preset)
	if err != nil {
		return simJobBackend{}, err
	}
	if sec.Seed != nil {
		cfg.Seed = *sec.Seed
	}
	cfg.MemoryMiB, cfg.Settle = sec.MemoryMiB, sec.Settle
	// The worker of gale.NewWorkerMux, built here so the backend can close
	// it.
	w, err := gale.NewWorker()
	if err != nil {
		return simJobBackend{}, err
	}
	mux := engine.NewMux()
	mux.Register(engine.StageTaskKind, w.Handle)
	cfg.Handler = simulable(mux.Handle)
	b, err := sim.New(cfg)
	if err != nil {
		w.Close()
		return simJobBackend{}, fmt.Errorf("config section backends.sim:%s: %w", preset, err)
	}
	return simJobBackend{b, w}, nil
}

// simulable refuses the tasks the simulator cannot run: those of jobs
// whose workers synchronize through shared objects (iterate stages). The
// simulator runs one task at a time and stops its clock while a task
// runs, so a worker waiting at a barrier for another would wait forever.
func simulable(h backends.Handler) backends.Handler {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		var spec struct {
			DSO *engine.DSOConfig `json:"dso"`
		}
		if json.Unmarshal(payload, &spec) == nil && spec.DSO != nil {
			return nil, errors.New("the simulator cannot run tasks that synchronize with each other through shared objects (iterate stages); run this job on local or process")
		}
		return h(ctx, payload)
	}
}
