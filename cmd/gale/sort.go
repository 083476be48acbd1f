package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/internal/gensort"
)

func newRunSortCmd() *cobra.Command {
	var jf jobFlags
	var inputs []string
	var output, format string
	var memory int64 = 512 << 20
	var spill string
	var descending bool
	cmd := &cobra.Command{
		Use:   "sort --input PATHS --output DIR [--format text|records]",
		Short: "Sort text lines or 100-byte sort-benchmark records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(inputs) == 0 || output == "" {
				return usageError{fmt.Errorf("sort: --input and --output are required")}
			}
			opts, closeEvents, err := jf.options(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts = append(opts, gale.WorkerMemory(memory), gale.SpillDir(spill))
			var sortOpts []gale.SortOption
			if descending {
				sortOpts = append(sortOpts, gale.Descending())
			}
			p := gale.NewPipeline()
			if err := gsort.Build(p, format, inputs, output, sortOpts...); err != nil {
				return usageError{err}
			}
			report, err := gale.Run(cmd.Context(), p, opts...)
			if cerr := closeEvents(); err == nil && cerr != nil {
				err = fmt.Errorf("writing events: %w", cerr)
			}
			if err != nil {
				return err
			}
			return jf.finish(cmd, report)
		},
	}
	jf.register(cmd)
	cmd.Flags().StringSliceVar(&inputs, "input", nil, "input files, directories, globs or s3:// prefixes")
	cmd.Flags().StringVar(&output, "output", "", "output directory")
	cmd.Flags().StringVar(&format, "format", gsort.Text, "text (lines, LC_ALL=C order) or records (100-byte gensort records, binary or ASCII)")
	cmd.Flags().Var(sizeValue{&memory}, "worker-memory", "memory budget of each task (e.g. 512MiB, 2GiB)")
	cmd.Flags().StringVar(&spill, "spill-dir", "", "where tasks spill sorted runs (default: the system's temporary directory)")
	cmd.Flags().BoolVar(&descending, "descending", false, "largest keys first")
	return cmd
}

func newGenRecordsCmd() *cobra.Command {
	var cfg gensort.Config
	var out string
	cmd := &cobra.Command{
		Use:   "records --count N --out FILE [--ascii] [--skew]",
		Short: "Write sort-benchmark records (gensort layout: 100 bytes, 10-byte key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || cfg.Count <= 0 {
				return usageError{fmt.Errorf("gen records: --count N (> 0) and --out FILE are required")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			start := time.Now()
			sum, err := writeAtomically(out, func(w io.Writer) (gensort.Checksum, error) {
				return gensort.Generate(cmd.Context(), w, cfg)
			})
			if err != nil {
				return err
			}
			size := uint64(cfg.Count) * gensort.RecordSize
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d records (%s) to %s in %s; checksum %s\n", cfg.Count,
				humanize.IBytes(size), out, time.Since(start).Round(time.Millisecond), sum)
			return nil
		},
	}
	cmd.Flags().Int64Var(&cfg.Count, "count", 0, "number of records")
	cmd.Flags().StringVar(&out, "out", "", "output file (written atomically)")
	cmd.Flags().BoolVar(&cfg.ASCII, "ascii", false, "printable records ending in \\r\\n (gensort -a)")
	cmd.Flags().BoolVar(&cfg.Skew, "skew", false, "skewed keys: many equal keys and a hot prefix")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 0, "selects another stream of records")
	return cmd
}

// writeAtomically writes a file through fn to a temporary name and renames
// it into place, readable by all as gen text's files are (mode 0644), only
// if fn succeeds.
func writeAtomically[T any](path string, fn func(io.Writer) (T, error)) (T, error) {
	var zero T
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return zero, err
	}
	v, err := fn(f)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp made it 0600
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return zero, err
	}
	return v, nil
}

func newValsortCmd() *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "valsort DIR|FILE [--input ORIGINAL]",
		Short: "Check that sort-benchmark records are sorted, and (with --input) that none was lost, added or changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			files, err := sortedFiles(args[0])
			if err != nil {
				return err
			}
			var parts []gensort.Summary
			for _, f := range files {
				s, err := validateFile(ctx, f)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				parts = append(parts, s)
			}
			out, err := gensort.Combine(parts...)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "records: %d\nchecksum: %s\nduplicate keys: %d\n", out.Records, out.Checksum, out.Duplicates)
			if input != "" {
				in, err := sortedFiles(input)
				if err != nil {
					return err
				}
				var sum gensort.Checksum
				var n int64
				for _, f := range in {
					s, err := validateFile(ctx, f)
					// The input is not sorted: only its count and
					// checksum matter here.
					if err != nil && !errors.Is(err, gensort.ErrUnordered) {
						return fmt.Errorf("%s: %w", f, err)
					}
					sum, n = sum.Plus(s.Checksum), n+s.Records
				}
				if n != out.Records || sum != out.Checksum {
					return fmt.Errorf("output does not hold the input's records: input %d records checksum %s, output %d records checksum %s",
						n, sum, out.Records, out.Checksum)
				}
				fmt.Fprintf(w, "matches input: %d records, checksum %s\n", n, sum)
			}
			fmt.Fprintln(w, "SUCCESS - all records are in order")
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "the unsorted input, to compare record count and checksum")
	return cmd
}

// sortedFiles returns FILE, or DIR's part files in order.
func sortedFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	parts, err := filepath.Glob(filepath.Join(path, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s holds no part files", path)
	}
	slices.Sort(parts)
	return parts, nil
}

func validateFile(ctx context.Context, path string) (gensort.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return gensort.Summary{}, err
	}
	defer f.Close()
	return gensort.Validate(ctx, f)
}
