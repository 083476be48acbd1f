// Package config reads Gale's configuration file and opens the backends
// it configures: the one table of backends, their config sections and
// their constructors that the gale command (`gale run --backend NAME`,
// `gale backends`, `gale deploy`) and the Beam runner
// (beam/galerunner.OpenBackend) share, so a key added to a section exists
// for both.
//
// The file (GALE_CONFIG, else ~/.gale/config.yaml) has a section per
// backend, decoded strictly (an unknown key is an error naming the file,
// the section and the key), and a storage section of object-store client
// options:
//
//	backends:
//	  aws:
//	    region: eu-west-1
//	    function: gale
//	  gcp:
//	    local: {instances: 3}
//	storage:
//	  s3.region: eu-west-1
//
// Usage:
//
//	f, err := config.Load("") // GALE_CONFIG or ~/.gale/config.yaml
//	if err != nil {
//		return err
//	}
//	o, err := config.Open(ctx, "aws", f, config.OpenOptions{Workers: 100})
//	if err != nil {
//		return err // errors.Is(err, config.ErrNotConfigured): a key is missing
//	}
//	defer o.Close()
//	// run tasks on o.Backend (nil: local), open stores with o.StoreOptions
//
// Names lists the backends: local, process, aws, gcp, azure, ibm and the
// simulated platforms sim:aws, sim:azure, sim:gcp, sim:ibm. Each
// backend's section type (AWSSection, GCPSection, ...) is exported for
// the deploy commands, which read keys Open does not use.
//
// This package is where library code meets files and the environment on
// behalf of the commands: it reads the config file, the OpenWhisk
// property file (WSK_CONFIG_FILE, ~/.wskprops) and the Azure function key
// variable (AZURE_FUNCTIONS_KEY or the section's key_env), and nothing
// else. It imports yaml.v3, the backends package and its implementations
// (process, aws, gcp, azure, azure/host, ibm, sim), the engine and the
// root gale package (the simulated platforms run Gale's stage worker); the
// root package, engine and the backends must never import it.
//
// Goroutines: Open starts none of its own. The backends it returns own
// theirs, and the local stand-ins it may start (the process backend's
// workers, the gcp local functions, the azure local host) run until the
// Opened is closed.
package config
