package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/logreg"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/probe"
	"github.com/galeproject/gale/state/threads"
)

// workerCmdName is the hidden subcommand the process backend runs in its
// worker processes: `gale worker`, with GALE_WORKER=process set.
//
// Why a subcommand rather than re-running the job's own command line (the
// general rule for Gale programs, where gale.Run serves tasks in a
// worker): a `gale run ...` command does work before it reaches gale.Run
// (it may generate the sample corpus, creates a temporary output
// directory, opens the events file), which every worker would repeat. The
// worker subcommand only builds every sample job's pipeline, registering
// exactly the kernels the driver's tasks name, and serves, so one worker
// binary serves any sample job, whatever its flags.
const workerCmdName = "worker"

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    workerCmdName,
		Short:  "Serve tasks as a worker process of the process backend (started by gale itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := registerSampleKernels(); err != nil {
				return err
			}
			// Probe invocations too, so the probe can measure this
			// backend with real worker processes.
			// Cloud threads of the pi, mandelbrot and santa jobs too.
			return gale.ServeWorker(cmd.Context(), gale.WorkerHandler(probe.Kind, probe.Handler(probe.WithStoreOpener(openProbeStore))),
				gale.WorkerHandler(threads.Kind, threads.Handler(threadFunctions())))
		},
	}
}

// registerSampleKernels builds the pipeline of every sample job `gale run`
// offers. Building a pipeline does no I/O: the paths are placeholders; it
// registers the kernels (functions, element types, combiners) by the same
// names the driver's task descriptors use.
//
// Keep this in step with the jobs under `gale run` that take --backend
// (jobFlags): a kernel a job uses and this function does not register
// fails that job's tasks on the process backend with an unknown-kernel
// error naming it.
func registerSampleKernels() error {
	p := gale.NewPipeline()
	wordcount.Build(p, []string{"input"}, "output")
	// Sort's kernel names carry its format and direction.
	for _, format := range []string{gsort.Text, gsort.Records} {
		for _, opts := range [][]gale.SortOption{nil, {gale.Descending()}} {
			if err := gsort.Build(p, format, []string{"input"}, "output", opts...); err != nil {
				return err
			}
		}
	}
	kmeans.Register(p)
	logreg.Register(p)
	return p.Err()
}

// openProbeStore lets asynchronous probe invocations write their results
// to any store Gale can open (an s3:// bucket from a Lambda, say).
func openProbeStore(ctx context.Context, u string) (objstore.Store, error) {
	return gale.OpenStore(ctx, u, nil)
}
