package gale

import (
	"context"

	"github.com/galeproject/gale/engine"
)

// WithUI serves a live dashboard of the job (package ui: its plan, each
// stage's progress, the task timeline, the report's totals, a failure's
// error) at addr, a host:port on loopback ("" for a free port on
// 127.0.0.1), while Run runs: Run starts the server before the job, writes
// its URL to standard error, and closes it when the job ends (an open page
// keeps showing the final state). To keep a dashboard up longer, to show
// several jobs on one page (the rounds of an iterative job), or to listen
// on another interface, start a ui.Server and pass it to WithMonitor.
// Slim builds (gale_slim) leave the dashboard out: Run then fails, saying
// so, before the job starts.
func WithUI(addr string) RunOption { return func(c *runConfig) { c.uiAddr = &addr } }

// WithMonitor hands the job's events to m as the driver emits them: a
// ui.Server shows the job on its dashboard, and keeps it after Run
// returns. Several WithMonitor options hand the events to each.
func WithMonitor(m engine.Monitor) RunOption {
	return func(c *runConfig) { c.monitors = append(c.monitors, m) }
}

// monitors fans job events out to several monitors.
type monitors []engine.Monitor

func (ms monitors) JobEvent(line []byte) {
	for _, m := range ms {
		m.JobEvent(line)
	}
}

// monitor returns what watches job id's events — the monitors of
// WithMonitor, and the dashboard WithUI starts here (dashboard_ui.go) —
// and a function that stops that dashboard and waits for it.
func (c runConfig) monitor(ctx context.Context, id string) (engine.Monitor, func(), error) {
	ms := append(monitors(nil), c.monitors...)
	stop := func() {}
	if c.uiAddr != nil {
		m, stopUI, err := startUI(ctx, *c.uiAddr, id)
		if err != nil {
			return nil, nil, err
		}
		ms, stop = append(ms, m), stopUI
	}
	if len(ms) == 0 {
		return nil, stop, nil
	}
	return ms, stop, nil
}
