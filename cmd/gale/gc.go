package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/engine"
)

// newGCCmd is gale gc: remove what killed jobs left at their outputs.
func newGCCmd() *cobra.Command {
	var spillDir string
	cmd := &cobra.Command{
		Use:   "gc [OUTPUT...] [--spill-dir DIR]",
		Short: "Remove what killed jobs left at outputs (staging areas, uncommitted parts, replaced objects)",
		Long: "gc removes, at each output (a local directory or an object-store URL), what jobs that died left there:\n" +
			"staging areas (.OUT.gale-JOB beside a local output, OUT/_temporary/JOB/ in an object store), parts they had\n" +
			"not committed, and parts a commit replaced but did not get to delete. It finishes a local output's switch\n" +
			"interrupted on a filesystem without atomic directory exchange. It leaves the committed output and every\n" +
			"live job's files alone (a job is live while its process runs on this host, or its heartbeat is recent).\n" +
			"It also removes, from the system's temporary directory and --spill-dir, the temporary stores and sort\n" +
			"spill directories of Gale processes that were killed. Every job does the same before it starts.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			var opts map[string]string
			if cfg != nil {
				opts = cfg.Storage
			}
			w := cmd.OutOrStdout()
			for _, out := range args {
				c, err := engine.CleanOutput(cmd.Context(), gale.OpenStore, opts, out)
				if err != nil {
					return err
				}
				if c.Restored != "" {
					fmt.Fprintf(w, "%s: finished an interrupted switch, from %s\n", out, c.Restored)
				}
				fmt.Fprintf(w, "%s: removed %d leftover files or objects", out, len(c.Removed))
				if len(c.Live) > 0 {
					fmt.Fprintf(w, "; left alone the files of live jobs %v", c.Live)
				}
				fmt.Fprintln(w)
			}
			for _, dir := range []string{os.TempDir(), spillDir} {
				if dir == "" {
					continue
				}
				c, err := engine.CleanTemp(dir)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: removed %d temporary or spill directories of killed jobs\n", dir, len(c.Removed))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&spillDir, "spill-dir", "", "also clean this directory of sort spills (the --spill-dir of the jobs)")
	return cmd
}
