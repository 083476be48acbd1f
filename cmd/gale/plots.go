//go:build !gale_slim || gale_plots

package main

import "github.com/galeproject/gale/probe/plot"

// The probe's figures (gonum/plot and its fonts, a third of a slim gale's
// build) are linked into full builds and into slim ones built with -tags
// gale_plots; see plots_off.go.
const plotsLinked = true

var (
	plotRun     = plot.Run
	plotCompare = plot.Compare
)
