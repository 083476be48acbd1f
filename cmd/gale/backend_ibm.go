package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/ibm"
)

// ibmSection is the config file's backends.ibm section. Missing api_host,
// auth and namespace are taken from the OpenWhisk CLI's property file
// (WSK_CONFIG_FILE, else ~/.wskprops: APIHOST, AUTH, NAMESPACE), which
// `wsk property set` and `ibmcloud fn property get` maintain.
type ibmSection struct {
	APIHost     string        `yaml:"api_host"`
	Namespace   string        `yaml:"namespace"`
	Action      string        `yaml:"action"`
	Auth        string        `yaml:"auth"`
	Blocking    *bool         `yaml:"blocking"`
	Concurrency int           `yaml:"concurrency"`
	MemoryMiB   int           `yaml:"memory_mib"`
	Timeout     time.Duration `yaml:"timeout"`
	Insecure    bool          `yaml:"insecure"`
	// Kind and Image choose the runtime gale deploy creates the action
	// with (default go:1.22; an image makes it a blackbox action).
	Kind  string `yaml:"kind"`
	Image string `yaml:"image"`
}

func init() {
	registerBackend(backendSpec{
		name:  "ibm",
		about: "IBM Cloud Functions / Apache OpenWhisk actions (REST API)",
		open: func(ctx context.Context, env backendEnv, section *yaml.Node) (backends.Backend, error) {
			cfg, _, err := ibmConfig(section, env.Workers)
			if err != nil {
				return nil, err
			}
			return ibm.New(ctx, cfg)
		},
		traits: func(section *yaml.Node) (backends.Traits, error) {
			var s ibmSection
			if err := decodeSection("ibm", section, &s); err != nil {
				return backends.Traits{}, err
			}
			cfg := ibm.DefaultConfig()
			cfg.Concurrency, cfg.MemoryMiB, cfg.Timeout = s.Concurrency, s.MemoryMiB, s.Timeout
			return ibm.TraitsFor(cfg), nil
		},
	})
}

// ibmConfig builds the backend's Config from the section and the wsk
// property file.
func ibmConfig(section *yaml.Node, workers int) (ibm.Config, ibmSection, error) {
	var s ibmSection
	if err := decodeSection("ibm", section, &s); err != nil {
		return ibm.Config{}, s, err
	}
	props, err := wskProps()
	if err != nil {
		return ibm.Config{}, s, err
	}
	cfg := ibm.DefaultConfig()
	cfg.APIHost, cfg.Auth, cfg.Namespace = first(s.APIHost, props["APIHOST"]), first(s.Auth, props["AUTH"]), first(s.Namespace, props["NAMESPACE"], cfg.Namespace)
	if s.Action != "" {
		cfg.Action = s.Action
	}
	if s.Blocking != nil {
		cfg.Blocking = *s.Blocking
	}
	cfg.Concurrency = first(workers, s.Concurrency, cfg.Concurrency)
	cfg.MemoryMiB = first(s.MemoryMiB, cfg.MemoryMiB)
	cfg.Timeout = first(s.Timeout, cfg.Timeout)
	cfg.Insecure = s.Insecure
	return cfg, s, nil
}

func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// wskProps reads the OpenWhisk CLI's property file, if there is one.
func wskProps() (map[string]string, error) {
	path := os.Getenv("WSK_CONFIG_FILE")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".wskprops")
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) && os.Getenv("WSK_CONFIG_FILE") == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the OpenWhisk properties: %w", err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return props, sc.Err()
}

// newDeployIBMCmd is `gale deploy ibm`: package a Linux build of the gale
// binary as a native action and create or update it.
func newDeployIBMCmd() *cobra.Command {
	var binary, action, kind, image string
	var memory int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ibm",
		Short: "Create or update the OpenWhisk action (IBM Cloud Functions) that runs Gale's workers",
		Long: `Packages a Linux (amd64) build of the gale binary as the executable "exec" of a
native Go action (kind go:1.22, or a blackbox image with --image) and creates or
updates it with PUT /api/v1/namespaces/{ns}/actions/{action}?overwrite=true,
with the memory and time limits of the backends.ibm section (or the flags).
Credentials and the API host come from that section or ~/.wskprops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			cfg, s, err := ibmConfig(conf.section("ibm"), 0)
			if err != nil {
				return err
			}
			cfg.Action = first(action, cfg.Action)
			cfg.MemoryMiB = first(memory, cfg.MemoryMiB)
			cfg.Timeout = first(timeout, cfg.Timeout)
			if binary == "" {
				if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
					return usageError{fmt.Errorf("this gale binary is for %s/%s; build one for the action with GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build ./cmd/gale and pass it with --binary", runtime.GOOS, runtime.GOARCH)}
				}
				if binary, err = os.Executable(); err != nil {
					return err
				}
			}
			bin, err := os.ReadFile(binary)
			if err != nil {
				return fmt.Errorf("reading the action's binary: %w", err)
			}
			zipped, err := ibm.PackageAction(bin)
			if err != nil {
				return err
			}
			b, err := ibm.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer b.Close()
			dc := ibm.DeployConfig{Kind: first(kind, s.Kind), Image: first(image, s.Image)}
			if err := b.Deploy(cmd.Context(), zipped, dc); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed action %s/%s: %d MiB, timeout %v, %.1f MiB zip\n",
				cfg.Namespace, cfg.Action, cfg.MemoryMiB, cfg.Timeout, float64(len(zipped))/(1<<20))
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "Linux amd64 gale binary to deploy (default: this one, on linux/amd64)")
	cmd.Flags().StringVar(&action, "action", "", "action name (default: backends.ibm.action, else gale)")
	cmd.Flags().StringVar(&kind, "kind", "", "runtime kind (default go:1.22)")
	cmd.Flags().StringVar(&image, "image", "", "Docker image of a blackbox action (e.g. openwhisk/action-golang-v1.22)")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory limit in MiB (128-2048; default 256)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "time limit (up to 10m; default 60s)")
	return cmd
}
