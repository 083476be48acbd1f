package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
)

// backendSpec tells the CLI how to build one backend. Every backend has one,
// registered with registerBackend from the file that wires it
// (backend_<name>.go), so adding a backend touches no shared code.
type backendSpec struct {
	// name is the --backend value, e.g. "aws".
	name string
	// about is one line for `gale backends`.
	about string
	// open builds the backend. section is the backend's part of the
	// config file (nil when the file has none); decode it strictly with
	// decodeSection.
	open func(ctx context.Context, env backendEnv, section *yaml.Node) (backends.Backend, error)
	// traits describes the platform without building a backend, for
	// `gale backends`; nil means open a backend to ask it.
	traits func(section *yaml.Node) (backends.Traits, error)
}

// backendEnv is what every backend constructor may use.
type backendEnv struct {
	// Workers is --workers (0: the backend's default).
	Workers int
	// Stderr receives worker output and diagnostics.
	Stderr io.Writer
}

// backendTable holds the registered backends by name. It is filled by
// init functions in this package only, before main runs.
var backendTable = map[string]backendSpec{}

func registerBackend(s backendSpec) {
	if _, dup := backendTable[s.name]; dup {
		panic("gale: backend " + s.name + " registered twice")
	}
	backendTable[s.name] = s
}

func backendNames() []string {
	names := make([]string, 0, len(backendTable))
	for n := range backendTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func init() {
	registerBackend(backendSpec{
		name:  "local",
		about: "goroutines in this process (the embedded default)",
		open:  func(context.Context, backendEnv, *yaml.Node) (backends.Backend, error) { return nil, nil },
		traits: func(*yaml.Node) (backends.Traits, error) {
			return backends.Traits{Name: "local", VCPUs: 1}, nil
		},
	})
	registerBackend(backendSpec{
		name:  "process",
		about: "worker processes of this binary (a FaaS platform on a laptop)",
		open: func(_ context.Context, env backendEnv, section *yaml.Node) (backends.Backend, error) {
			var cfg struct {
				Concurrency int `yaml:"concurrency"`
			}
			if err := decodeSection("process", section, &cfg); err != nil {
				return nil, err
			}
			workers := env.Workers
			if workers == 0 {
				workers = cfg.Concurrency
			}
			return newProcessBackend(workers, env.Stderr)
		},
	})
}

// configFile is Gale's configuration file: one section per backend (keyed
// by backend name) and object-store client options.
type configFile struct {
	Backends map[string]yaml.Node `yaml:"backends"`
	// Storage holds object-store client options, as gale.StoreOptions
	// takes them: s3.endpoint, s3.region, s3.path_style, s3.profile.
	Storage map[string]string `yaml:"storage"`
}

// configPath returns GALE_CONFIG, else ~/.gale/config.yaml.
func configPath() string {
	if p := os.Getenv("GALE_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".gale", "config.yaml")
}

// loadConfig reads the configuration file, rejecting unknown keys. A
// missing file at the default location is an empty configuration; a
// missing file named by GALE_CONFIG is an error.
func loadConfig() (*configFile, error) {
	path := configPath()
	cfg := &configFile{}
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && os.Getenv("GALE_CONFIG") == "" {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	for name := range cfg.Backends {
		if _, ok := backendTable[name]; !ok {
			return nil, fmt.Errorf("config %s: unknown backend section %q (known: %s)", path, name, strings.Join(backendNames(), ", "))
		}
	}
	return cfg, nil
}

// section returns a backend's config section, or nil.
func (c *configFile) section(name string) *yaml.Node {
	if c == nil {
		return nil
	}
	if n, ok := c.Backends[name]; ok {
		return &n
	}
	return nil
}

// decodeSection decodes a backend's section into v, rejecting unknown keys
// with a message naming the backend.
func decodeSection(backend string, section *yaml.Node, v any) error {
	if section == nil {
		return nil
	}
	b, err := yaml.Marshal(section)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config section backends.%s: %w", backend, err)
	}
	return nil
}

// openBackend builds the named backend; nil (with no error) means the
// embedded local backend.
func openBackend(ctx context.Context, name string, env backendEnv) (backends.Backend, *configFile, error) {
	spec, ok := backendTable[name]
	if !ok {
		return nil, nil, usageError{fmt.Errorf("unknown backend %q; available: %s", name, strings.Join(backendNames(), ", "))}
	}
	cfg, err := loadConfig()
	if err != nil {
		return nil, nil, err
	}
	b, err := spec.open(ctx, env, cfg.section(name))
	if err != nil {
		return nil, nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, cfg, nil
}

func newBackendsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backends",
		Short: "List the backends with their platform traits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "backend\tmax concurrency\tmemory\tvCPUs\tpayload limit\ttimeout\t$/GB-s\t$/request\tdescription")
			for _, name := range backendNames() {
				spec := backendTable[name]
				t, err := specTraits(cmd.Context(), spec, cfg.section(name))
				if err != nil {
					fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t%s (not configured: %v)\n", name, spec.about, err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, orDash(t.MaxConcurrency, "%d"),
					orDash(t.MemoryMiB, "%d MiB"), orDashF(t.VCPUs, "%.2f"), orDash(t.MaxPayloadBytes/1024, "%d KiB"),
					orDashD(t), orDashF(t.PricePerGBSecond, "%.10f"), orDashF(t.PricePerRequest, "%.8f"), spec.about)
			}
			return tw.Flush()
		},
	}
}

func specTraits(ctx context.Context, spec backendSpec, section *yaml.Node) (backends.Traits, error) {
	if spec.traits != nil {
		return spec.traits(section)
	}
	b, err := spec.open(ctx, backendEnv{Stderr: io.Discard}, section)
	if err != nil {
		return backends.Traits{}, err
	}
	if b == nil {
		return backends.Traits{Name: spec.name}, nil
	}
	defer b.Close()
	return backends.TraitsOf(b), nil
}

func orDash(v int, format string) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func orDashF(v float64, format string) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func orDashD(t backends.Traits) string {
	if t.Timeout <= 0 {
		return "-"
	}
	return t.Timeout.String()
}

// storeOptions returns the config file's object-store options as a run
// option.
func (c *configFile) storeOptions() []gale.RunOption {
	if c == nil || len(c.Storage) == 0 {
		return nil
	}
	return []gale.RunOption{gale.StoreOptions(c.Storage)}
}
