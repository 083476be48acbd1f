package galerunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/config"
	"github.com/galeproject/gale/beam/internal/worker"
)

// BackendNames lists the backends OpenBackend builds: those of
// config.Names, Gale's backends. On the simulated platforms (sim:aws,
// sim:azure, sim:gcp, sim:ibm) the stages run in this process, one task at
// a time, under the platform's model, and the job report predicts the
// platform's makespan and cost.
var BackendNames = config.Names()

// ErrUnknownBackend is wrapped by OpenBackend's error for a name not in
// BackendNames.
var ErrUnknownBackend = errors.New("galerunner: unknown backend")

// ErrNotConfigured is wrapped by OpenBackend's error when a cloud backend's
// configuration lacks what it needs to reach its platform (the message
// names the config file and key; such an error matches
// config.ErrNotConfigured too), and by Execute's when --gale_temp is
// missing for a backend whose workers cannot reach a local directory.
var ErrNotConfigured = errors.New("galerunner: backend not configured")

// notConfigured is config's ErrNotConfigured error as galerunner reports
// it: errors.Is matches both sentinels.
type notConfigured struct{ err error }

func (e notConfigured) Error() string        { return "galerunner: " + e.err.Error() }
func (e notConfigured) Unwrap() error        { return e.err }
func (e notConfigured) Is(target error) bool { return target == ErrNotConfigured }

// ErrWorkerBinary is wrapped by OpenBackend's error when the binary its
// workers would run is missing or unusable. It is config.ErrWorkerBinary.
var ErrWorkerBinary = config.ErrWorkerBinary

// BackendConfig says which backend OpenBackend builds and where its
// settings come from.
type BackendConfig struct {
	// Name is one of BackendNames. Default "local".
	Name string
	// ConfigFile is Gale's configuration file, the one `gale run` reads:
	// a backends.<name> section per backend and a storage section of
	// object-store options (docs/backends.md). Default: GALE_CONFIG, else
	// ~/.gale/config.yaml; a missing default file is an empty
	// configuration.
	ConfigFile string
	// Workers bounds the tasks in flight (a cloud backend's concurrency,
	// the process backend's worker count, a local stand-in's instances);
	// 0 takes the configuration's or the backend's default.
	Workers int
	// Output receives the output of worker processes this machine starts
	// (the process backend, the gcp and azure local stand-ins). Default
	// os.Stderr.
	Output io.Writer
}

// OpenedBackend is a backend OpenBackend built (a config.Opened).
type OpenedBackend struct {
	// Backend runs the tasks; nil for the local backend (Run's default).
	Backend backends.Backend
	// Name is the backend's name.
	Name string
	// StoreOptions are the config file's storage options (s3.endpoint,
	// gs.endpoint, azblob.key, ...), for Config.StoreOptions: the driver
	// and every worker open the temporary store with them.
	StoreOptions map[string]string
	// WorkersHere reports whether the workers run on this machine (local,
	// process, and the gcp and azure local stand-ins), so that a local
	// directory can hold the temporary store. Otherwise the temporary
	// store must be one the platform's workers reach (--gale_temp).
	WorkersHere bool
}

// Close stops the backend (and any local stand-in it started).
func (b *OpenedBackend) Close() error {
	if b == nil || b.Backend == nil {
		return nil
	}
	return b.Backend.Close()
}

// OpenBackend builds the backend cfg names from Gale's config file with
// package backends/config, which `gale run --backend NAME` uses too: the
// same sections, keys and constructors (backends/aws, gcp, azure and ibm;
// the gcp `local` and azure `local_host` stand-ins start this program as
// their workers). The workers of every backend are this program's binary:
// it must reach beam.Init (or Execute) when a platform starts it. A cloud
// backend whose configuration lacks what reaching its platform needs
// fails with an error wrapping ErrNotConfigured that names the key.
func OpenBackend(ctx context.Context, cfg BackendConfig) (*OpenedBackend, error) {
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	if !slices.Contains(BackendNames, cfg.Name) {
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownBackend, cfg.Name, strings.Join(BackendNames, ", "))
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("galerunner: BackendConfig.Workers must not be negative, got %d", cfg.Workers)
	}
	file, err := config.Load(cfg.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("galerunner: %w", err)
	}
	// No WorkerArgs: a worker is this program started with GALE_WORKER
	// (or by its platform), which beam.Init's hook turns into a worker.
	opts := config.OpenOptions{Workers: cfg.Workers, Output: cfg.Output}
	if strings.HasPrefix(cfg.Name, "sim:") {
		// The simulated platforms run their tasks in this process:
		// through the Beam worker, not Gale's stage worker.
		w, err := worker.New(worker.Config{OpenStore: openStore})
		if err != nil {
			return nil, fmt.Errorf("galerunner: %w", err)
		}
		opts.Handler = w.Handle
	}
	o, err := config.Open(ctx, cfg.Name, file, opts)
	if errors.Is(err, config.ErrNotConfigured) {
		return nil, notConfigured{err}
	}
	if err != nil {
		return nil, fmt.Errorf("galerunner: %w", err)
	}
	return &OpenedBackend{Backend: o.Backend, Name: o.Name, StoreOptions: o.StoreOptions, WorkersHere: o.WorkersHere}, nil
}
