package gale

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

// WithUI serves a live dashboard of the job (package ui: its plan, each
// stage's progress, the task timeline, the report's totals, a failure's
// error) at addr, a host:port on loopback ("" for a free port on
// 127.0.0.1), while Run runs: Run starts the server before the job, writes
// its URL to standard error, and closes it when the job ends (an open page
// keeps showing the final state). To keep a dashboard up longer, to show
// several jobs on one page (the rounds of an iterative job), or to listen
// on another interface, start a ui.Server and pass WithDashboard.
func WithUI(addr string) RunOption { return func(c *runConfig) { c.uiAddr = &addr } }

// WithDashboard shows the job live on d, a dashboard the caller serves and
// closes (ui.NewServer); d keeps the job after Run returns. Several
// WithDashboard options show the job on each.
func WithDashboard(d *ui.Server) RunOption {
	return func(c *runConfig) { c.dashboards = append(c.dashboards, d) }
}

// monitors fans job events out to several monitors.
type monitors []engine.Monitor

func (ms monitors) JobEvent(line []byte) {
	for _, m := range ms {
		m.JobEvent(line)
	}
}

// monitor returns what watches job id's events — the dashboards of
// WithDashboard, and the server WithUI starts here — and a function that
// stops that server and waits for it.
func (c runConfig) monitor(ctx context.Context, id string) (engine.Monitor, func(), error) {
	var ms monitors
	for _, d := range c.dashboards {
		ms = append(ms, d)
	}
	stop := func() {}
	if c.uiAddr != nil {
		srv, err := ui.NewServer(ui.Config{Addr: *c.uiAddr})
		if err != nil {
			return nil, nil, fmt.Errorf("gale: WithUI: %w", err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Serve(context.WithoutCancel(ctx))
		}()
		stop = func() {
			_ = srv.Close()
			wg.Wait()
		}
		fmt.Fprintf(os.Stderr, "gale: dashboard of job %s at %s\n", id, srv.URL())
		ms = append(ms, srv)
	}
	if len(ms) == 0 {
		return nil, stop, nil
	}
	return ms, stop, nil
}
