package main

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/galeproject/gale/internal/textgen"
)

func newGenCmd() *cobra.Command {
	gen := &cobra.Command{Use: "gen", Short: "Generate reproducible benchmark data"}
	gen.AddCommand(newGenTextCmd(), newGenRecordsCmd(), newGenPointsCmd(), newGenLabeledCmd())
	return gen
}

func newGenTextCmd() *cobra.Command {
	cfg := textgen.DefaultConfig()
	var out string
	cmd := &cobra.Command{
		Use:   "text --size SIZE --out FILE",
		Short: "Write a reproducible text corpus of Zipf-distributed words",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("gen text: --out FILE is required")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			start := time.Now()
			if err := textgen.GenerateFile(cmd.Context(), out, cfg); err != nil {
				return err
			}
			d := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s) in %s, %.0f MB/s\n", out, humanize.IBytes(uint64(cfg.Size)),
				d.Round(time.Millisecond), float64(cfg.Size)/1e6/d.Seconds())
			return nil
		},
	}
	cmd.Flags().Var(sizeValue{&cfg.Size}, "size", "corpus size in bytes (e.g. 64MiB, 1GiB)")
	cmd.Flags().StringVar(&out, "out", "", "output file (written atomically)")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; the same seed and size give the same bytes")
	return cmd
}
