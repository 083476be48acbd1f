//go:build !gale_slim || gale_ibm

package config

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/ibm"
)

// IBMSection is the backends.ibm section. Missing api_host, auth and
// namespace are taken from the OpenWhisk CLI's property file
// (WSK_CONFIG_FILE, else ~/.wskprops: APIHOST, AUTH, NAMESPACE), which
// `wsk property set` and `ibmcloud fn property get` maintain.
type IBMSection struct {
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
	register(spec{
		name:  "ibm",
		about: "IBM Cloud Functions / Apache OpenWhisk actions (REST API)",
		open: func(ctx context.Context, f *File, opts OpenOptions) (backends.Backend, bool, error) {
			cfg, _, err := f.IBMConfig(opts.Workers)
			if err != nil {
				return nil, false, err
			}
			if err := cfg.Validate(); err != nil {
				return nil, false, fmt.Errorf("%w: section backends.ibm of %s (or the OpenWhisk property file, WSK_CONFIG_FILE or ~/.wskprops): %w",
					ErrNotConfigured, f.name(), err)
			}
			b, err := ibm.New(ctx, cfg)
			if err != nil {
				return nil, false, wrapOpen("ibm", err)
			}
			return b, false, nil
		},
		traits: func(f *File) (backends.Traits, error) {
			var s IBMSection
			if err := f.Decode("ibm", &s); err != nil {
				return backends.Traits{}, err
			}
			cfg := ibm.DefaultConfig()
			cfg.Concurrency, cfg.MemoryMiB, cfg.Timeout = s.Concurrency, s.MemoryMiB, s.Timeout
			return ibm.TraitsFor(cfg), nil
		},
	})
}

// IBMConfig builds the backend's Config (not yet validated) from the
// backends.ibm section and the OpenWhisk property file; workers, if
// positive, overrides its concurrency. It returns the section too, for
// the keys only deploying uses.
func (f *File) IBMConfig(workers int) (ibm.Config, IBMSection, error) {
	var s IBMSection
	if err := f.Decode("ibm", &s); err != nil {
		return ibm.Config{}, s, err
	}
	props, err := wskProps()
	if err != nil {
		return ibm.Config{}, s, err
	}
	cfg := ibm.DefaultConfig()
	cfg.APIHost, cfg.Auth, cfg.Namespace = first(s.APIHost, props["APIHOST"]), first(s.Auth, props["AUTH"]), first(s.Namespace, props["NAMESPACE"], cfg.Namespace)
	cfg.Action = first(s.Action, cfg.Action)
	if s.Blocking != nil {
		cfg.Blocking = *s.Blocking
	}
	cfg.Concurrency = first(workers, s.Concurrency, cfg.Concurrency)
	cfg.MemoryMiB = first(s.MemoryMiB, cfg.MemoryMiB)
	cfg.Timeout = first(s.Timeout, cfg.Timeout)
	cfg.Insecure = s.Insecure
	return cfg, s, nil
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
	if errors.Is(err, os.ErrNotExist) && os.Getenv("WSK_CONFIG_FILE") == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: reading the OpenWhisk properties: %w", err)
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
