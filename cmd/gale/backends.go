package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/config"
)

// backendEnv is what the command decides when it opens a backend.
type backendEnv struct {
	// Workers is --workers (0: the backend's default).
	Workers int
	// Stderr receives worker output and diagnostics.
	Stderr io.Writer
}

// backendNames lists the backends --backend takes (config.Names).
func backendNames() []string { return config.Names() }

// unknownBackend is the usage error for a backend name Names lacks; for a
// cloud a slim build leaves out, it says how to link it.
func unknownBackend(name string) error {
	if err := gale.CloudNotLinked(name); err != nil {
		return usageError{err}
	}
	return usageError{fmt.Errorf("unknown backend %q; available: %s", name, strings.Join(backendNames(), ", "))}
}

// knownBackend reports whether --backend takes name.
func knownBackend(name string) bool { return config.Known(name) }

// loadConfig reads Gale's configuration file (GALE_CONFIG, else
// ~/.gale/config.yaml), rejecting unknown keys and sections.
func loadConfig() (*config.File, error) { return config.Load("") }

// openBackend builds the named backend from its config section; nil (with
// no error) means the embedded local backend. Its workers, when it starts
// them on this machine, run this binary's hidden worker subcommand.
func openBackend(ctx context.Context, name string, env backendEnv) (backends.Backend, *config.File, error) {
	if !knownBackend(name) {
		return nil, nil, unknownBackend(name)
	}
	cfg, err := loadConfig()
	if err != nil {
		return nil, nil, err
	}
	o, err := config.Open(ctx, name, cfg, config.OpenOptions{Workers: env.Workers, Output: env.Stderr, Report: env.Stderr,
		WorkerArgs: []string{workerCmdName}})
	if err != nil {
		return nil, nil, err
	}
	return o.Backend, cfg, nil
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
			var clouds, sims bool
			for _, name := range backendNames() {
				clouds = clouds || slices.Contains(gale.LinkedClouds(), name)
				sims = sims || strings.HasPrefix(name, "sim:")
				t, err := config.Traits(cmd.Context(), name, cfg)
				if err != nil {
					fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t%s (not configured: %v)\n", name, config.About(name), err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, orDash(t.MaxConcurrency, "%d"),
					orDash(t.MemoryMiB, "%d MiB"), orDashF(t.VCPUs, "%.2f"), orDash(t.MaxPayloadBytes/1024, "%d KiB"),
					orDashD(t), orDashF(t.PricePerGBSecond, "%.10f"), orDashF(t.PricePerRequest, "%.8f"), config.About(name))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// A cloud row and its sim: row differ on purpose; say why,
			// or the two look like one platform described twice.
			w := cmd.OutOrStdout()
			if clouds {
				fmt.Fprintln(w, "\n"+cloudRowsNote)
			}
			if sims {
				fmt.Fprintln(w, "\n"+simRowsNote)
			}
			return nil
		},
	}
}

// Notes under the gale backends table.
const (
	cloudRowsNote = `aws, azure, gcp, ibm: your deployment, from the config file, else what gale deploy
sets up (aws 1769 MiB, the memory that buys one vCPU; gcp and ibm 256 MiB), at
today's list prices; gcp's $/GB-s includes its price per vCPU-second at that memory.`
	simRowsNote = `sim:*: the platforms as measured in October 2020 for the thesis's Table 3.4
(docs/probe.md): its 2048 MiB functions (azure: 1536 MiB, its only size) and 2020
prices; sim:gcp's $/GB-s is 2020's memory price alone, without the CPU charge.`
)

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
func storeOptions(c *config.File) []gale.RunOption {
	if c == nil || len(c.Storage) == 0 {
		return nil
	}
	return []gale.RunOption{gale.StoreOptions(c.Storage)}
}
