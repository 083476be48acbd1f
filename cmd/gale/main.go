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
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
)

func main() {
	ctx, stop := interruptContext(os.Stderr)
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
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM stopped the command: it did not fail, and
		// exits as a shell reports a program SIGINT ended. (An error
		// that is not the interruption's, such as the job's own failure
		// before Ctrl-C ended a dashboard's wait, is reported as such.)
		msg := strings.TrimPrefix(forCommandLine(err).Error(), "gale: ")
		if !errors.Is(err, gale.ErrInterrupted) {
			msg = "interrupted: " + msg
		}
		fmt.Fprintln(os.Stderr, "gale:", msg)
		os.Exit(exitInterrupted)
	}
	if err != nil {
		// Errors of Gale's packages carry their own "gale: " prefix.
		fmt.Fprintln(os.Stderr, "gale:", strings.TrimPrefix(forCommandLine(err).Error(), "gale: "))
		if what, tag := notLinked(err); tag != "" && len(os.Args) > 1 {
			wd, _ := os.Getwd()
			fmt.Fprintln(os.Stderr, linkCommand(what, tag, galeCheckout(), wd, os.Args[1:]))
		}
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// exitInterrupted is gale's exit status when Ctrl-C (SIGINT) or SIGTERM
// stopped a command before it finished: 128 + SIGINT, what a shell reports
// for a program the signal ended.
const exitInterrupted = 130

// interruptContext returns a context that the first SIGINT or SIGTERM
// cancels, so the command stops and cleans up (a job cancels its attempts
// and commits nothing); a second one exits at once with exitInterrupted,
// without waiting for the cleanup. stop releases the signals and ends the
// goroutine that waits for them; the context stays as it was, so whether
// a signal stopped the command can be read after.
func interruptContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case s := <-sigs:
			cancel(signalCause{s})
		case <-done:
			return
		}
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "gale: interrupted again; exiting without waiting for the cleanup")
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
	}
}

// signalCause is the cause of gale's context when a signal ended it. It
// is a cancellation: errors.Is(err, context.Canceled) holds for it.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return s.sig.String() + " signal received" }
func (s signalCause) Unwrap() error { return context.Canceled }

// forCommandLine returns err as gale prints it. An input error of a
// sample job leaves out the place in Gale's own sources where the job
// reads its input (ReadText(x) (wordcount.go:24)): on the command line
// the input is the user's flag, and the message names it.
func forCommandLine(err error) error {
	switch e := err.(type) {
	case *gale.InputError:
		return fmt.Errorf("gale: %w", e.Err)
	case interface{ Unwrap() []error }:
		var errs []error
		for _, x := range e.Unwrap() {
			errs = append(errs, forCommandLine(x))
		}
		return errors.Join(errs...)
	}
	return err
}

// notLinked returns what a slim build lacked for err, and the build tag
// that links it; tag is "" if err is not about that.
func notLinked(err error) (what, tag string) {
	var nl *gale.NotLinkedError
	if errors.As(err, &nl) {
		return nl.Cloud, nl.Tag
	}
	if errors.Is(err, errPlotsNotLinked) {
		return "the figures", "gale_plots"
	}
	return "", ""
}

// linkCommand returns the one command that runs args again with what a
// slim build lacked linked, by its build tag: go run with the tag when in
// a Gale checkout (root; wd is the working directory), else a go build
// there.
func linkCommand(what, tag, root, wd string, args []string) string {
	tags := gale.SlimTag + "," + tag
	if root == "" {
		return fmt.Sprintf("To link %s, rebuild gale in Gale's source directory: go build -tags %s -o gale ./cmd/gale", what, tags)
	}
	pkg := "github.com/galeproject/gale/cmd/gale"
	if wd == root {
		pkg = "./cmd/gale"
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return fmt.Sprintf("To run this with %s linked: go run -tags %s %s %s", what, tags, pkg, strings.Join(quoted, " "))
}

// shellQuote quotes s for a POSIX shell if it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

// Unwrap returns the error in the command line.
func (u usageError) Unwrap() error { return u.error }

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
	root.AddCommand(newRunCmd(), newGenCmd(), newPlanCmd(), newValsortCmd(), newDSOCmd(), newGliderCmd(), newBackendsCmd(), newWorkerCmd(), newProbeCmd(), newDeployCmd(), newUICmd(), newGCCmd())
	requireSubcommand(root)
	checkCommandLines(root)
	return root
}

// requireSubcommand makes a command group (gale, gale run, gale gen, ...)
// that has no action of its own refuse an unknown subcommand as a usage
// error naming the closest one and all it has, where cobra would print the
// group's help and succeed (or, for the root, fail with another status);
// with no arguments it prints the help. The group ignores flags it does
// not know, which belong to the subcommand the user meant: gale plan sort
// --input x is an unknown job, not an unknown flag.
func requireSubcommand(c *cobra.Command) {
	for _, sub := range c.Commands() {
		requireSubcommand(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.FParseErrWhitelist.UnknownFlags = true
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownSubcommand(cmd, args[0])
	}
}

// unknownSubcommand is the usage error for name under the group cmd.
func unknownSubcommand(cmd *cobra.Command, name string) error {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q; ", name, cmd.CommandPath())
	if s := closest(name, cmd.SuggestionsFor(name)); s != "" {
		msg += fmt.Sprintf("did you mean %q? ", s)
	}
	return usageError{errors.New(msg + "available: " + strings.Join(names, ", "))}
}

// closest returns the candidate nearest to name by edit distance, the
// first of equals; cobra lists its suggestions in the commands' order, so
// for "rn" it would offer "gen" before "run".
func closest(name string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// zeroMeansDefault names the flags whose zero value stands for a default
// (--workers: the number of CPUs, ...). Given explicitly as 0 they are
// refused rather than silently replaced.
var zeroMeansDefault = []string{"workers", "partitions", "chunk-size"}

// checkCommandLines makes every command's argument check, and the
// explicit zeros of zeroMeansDefault, usage errors that show the
// command's usage line.
func checkCommandLines(c *cobra.Command) {
	for _, sub := range c.Commands() {
		checkCommandLines(sub)
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		if args != nil {
			if err := args(cmd, a); err != nil {
				path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
				if strings.HasPrefix(err.Error(), "unknown command") { // cobra.NoArgs
					err = fmt.Errorf("takes no arguments, got %q", a[0])
				}
				return usageError{fmt.Errorf("%s %v; usage: %s", path, err, cmd.UseLine())}
			}
		}
		for _, name := range zeroMeansDefault {
			if f := cmd.Flags().Lookup(name); f != nil && f.Changed && f.DefValue == "0" && f.Value.String() == "0" {
				return usageError{fmt.Errorf("--%s 0: must be at least 1; leave the flag out for its default", name)}
			}
		}
		return nil
	}
}
