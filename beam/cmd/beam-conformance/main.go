// Command beam-conformance runs Apache Beam's own Go SDK tests on Prism
// and on Gale's local and process backends and prints one table of their
// outcomes (see package beam/conformance). Run it from a Gale checkout:
//
//	go run ./beam/cmd/beam-conformance                     # every suite, about 30-60 minutes
//	go run ./beam/cmd/beam-conformance -suites primitives  # the fast subset make test runs
//
// It exits with status 1 when a test Prism passes fails on Gale without
// a known reason, or a known exception passes now.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/galeproject/gale/beam/conformance"
)

func main() {
	suites := flag.String("suites", "", "comma-separated suites to run (default: all): "+names())
	out := flag.String("o", "", "also write the table to this file (markdown)")
	workers := flag.Int("workers", 2, "tasks at once on Gale (--gale_workers)")
	timeout := flag.Duration("timeout", 15*time.Minute, "bound on one run of one suite's test binary")
	keep := flag.String("workdir", "", "scratch directory to use and keep (default: a temporary one, removed)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := repoRoot()
	if err != nil {
		fail(err)
	}
	ss := conformance.Suites
	if *suites != "" {
		if ss, err = conformance.SuitesNamed(strings.Split(*suites, ",")...); err != nil {
			fail(err)
		}
	}
	t, err := conformance.Run(ctx, conformance.Config{RepoRoot: root, WorkDir: *keep, Suites: ss,
		Runners: conformance.Runners(*workers), Timeout: *timeout, Log: os.Stderr})
	if err != nil {
		fail(err)
	}
	conformance.WriteMarkdown(os.Stdout, t, conformance.Known)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		conformance.WriteMarkdown(f, t, conformance.Known)
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
	if problems := conformance.Verdict(t, conformance.Known); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "\n%d problem(s):\n  %s\n", len(problems), strings.Join(problems, "\n  "))
		os.Exit(1)
	}
}

func names() string {
	var n []string
	for _, s := range conformance.Suites {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// repoRoot finds the Gale checkout: the directory above the working
// directory that holds go.work and beam/go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "beam", "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("beam-conformance: run it inside a Gale checkout (no go.work with beam/go.mod above %s)", dir)
		}
		dir = parent
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
