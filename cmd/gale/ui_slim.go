//go:build gale_slim

package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
)

// A slim build (gale_slim) leaves the dashboard's web server out; its
// flags and command say so.

var errNoDashboard = errors.New("this gale was built with -tags gale_slim, which leaves the dashboard out; build it without that tag")

type uiState struct{}

func (f *uiFlags) option(io.Writer) (gale.RunOption, error) {
	if f.addr == "" {
		return nil, nil
	}
	return nil, usageError{errNoDashboard}
}

func (f *uiFlags) finish(context.Context, io.Writer, error) {}

func newUICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ui EVENTS.jsonl [REPORT.json]",
		Short: "Serve the dashboard of finished jobs (not in slim builds)",
		Args:  cobra.ArbitraryArgs,
		RunE:  func(*cobra.Command, []string) error { return errNoDashboard },
	}
}
