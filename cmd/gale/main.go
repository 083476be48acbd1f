// Command gale runs Gale's sample jobs, generates benchmark data and shows
// physical plans.
//
//	gale run wordcount [--input PATHS] [--output DIR] [--backend local|process] [--workers N]
//	gale gen text --size 1GiB --out FILE
//	gale plan wordcount
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	if len(os.Args) == 1 && gale.WorkerMode() != "" {
		// A FaaS platform started the deployed binary with no arguments
		// (Lambda's bootstrap, an OpenWhisk exec, a custom handler): serve
		// as a worker.
		root.SetArgs([]string{workerCmdName})
	}
	err := root.ExecuteContext(ctx)
	stop()
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status)) // the program that failed printed its error
	}
	if err != nil {
		// Errors of Gale's packages carry their own "gale: " prefix.
		fmt.Fprintln(os.Stderr, "gale:", strings.TrimPrefix(err.Error(), "gale: "))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

// exitStatus is the exit status of a program a command ran, which has
// printed its own error: gale exits with the same status, printing nothing.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gale",
		Short:         "Gale runs dataflow pipelines on serverless functions",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCmd(), newGenCmd(), newPlanCmd(), newValsortCmd(), newDSOCmd(), newGliderCmd(), newBackendsCmd(), newWorkerCmd(), newProbeCmd(), newDeployCmd())
	for _, c := range root.Commands() {
		requireSubcommand(c)
	}
	return root
}

// requireSubcommand makes a command group (gale run, gale gen, ...) that
// has no action of its own refuse an unknown subcommand as a usage error,
// where cobra would print the group's help and succeed; with no arguments
// it prints the help.
func requireSubcommand(c *cobra.Command) {
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageError{fmt.Errorf("unknown command %q for %q; available: %s", args[0], cmd.CommandPath(), strings.Join(names, ", "))}
	}
	for _, sub := range c.Commands() {
		requireSubcommand(sub)
	}
}
