package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
)

func newPlanCmd() *cobra.Command {
	plan := &cobra.Command{Use: "plan JOB", Short: "Print the physical plan of a sample job"}
	var inputs []string
	var workers, partitions int
	var chunk int64
	var sample int64 = sampleSize
	shuffle := gale.DataShipping
	wc := &cobra.Command{
		Use:   "wordcount [--input PATHS]",
		Short: "Print word count's physical plan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(inputs) == 0 {
				path, err := sampleCorpus(cmd.Context(), cmd.ErrOrStderr(), sample)
				if err != nil {
					return err
				}
				inputs = []string{path}
			}
			p := gale.NewPipeline()
			wordcount.Build(p, inputs, "OUTPUT")
			opts := []gale.RunOption{gale.Workers(workers), gale.Partitions(partitions), gale.ShuffleStrategy(shuffle)}
			if chunk > 0 {
				opts = append(opts, gale.ChunkSize(chunk))
			}
			text, err := gale.Explain(cmd.Context(), p, opts...)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), text)
			return nil
		},
	}
	wc.Flags().StringSliceVar(&inputs, "input", nil, "input files, directories, globs or s3:// prefixes")
	wc.Flags().IntVar(&workers, "workers", 0, "tasks run at once (default: number of CPUs)")
	wc.Flags().IntVar(&partitions, "partitions", 0, "partitions of every shuffle")
	wc.Flags().Var(sizeValue{&chunk}, "chunk-size", "size of input chunks (default 64MiB)")
	wc.Flags().Var(sizeValue{&sample}, "sample-size", "size of the sample corpus generated when there is no --input")
	wc.Flags().StringVar(&shuffle, "shuffle", shuffle, "shuffle strategy: data-shipping, glider or auto (each shuffle's choice and why)")
	plan.AddCommand(wc)
	return plan
}
