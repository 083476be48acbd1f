//go:build gale_slim && !gale_plots

package main

import "github.com/galeproject/gale/probe"

// A slim gale leaves out the probe's figures unless built with -tags
// gale_plots: gonum/plot and its fonts are a third of its build, and
// neither the quick start nor a deployed function draws anything. --plots
// is refused before anything runs (probeFlags.checkPlots).
const plotsLinked = false

func plotRun(string, string, *probe.Trace) ([]string, error) { return nil, errPlotsNotLinked }

func plotCompare(string, string, []*probe.Trace) ([]string, error) { return nil, errPlotsNotLinked }
