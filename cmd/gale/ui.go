//go:build !gale_slim

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

// uiState is the dashboard of gale run --ui, once started.
type uiState struct {
	srv *ui.Server
	wg  sync.WaitGroup // Serve's goroutine
}

// option starts the dashboard and returns the run option that shows the
// job on it; nil without --ui.
func (f *uiFlags) option(stderr io.Writer) (gale.RunOption, error) {
	if f.addr == "" {
		return nil, nil
	}
	if f.srv == nil { // the first job of this command: later ones share it
		srv, err := startDashboard(stderr, f.addr, f.remote, f.token)
		if err != nil {
			return nil, err
		}
		f.srv = srv
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := srv.Serve(context.Background()); err != nil {
				fmt.Fprintf(stderr, "gale: the dashboard stopped: %v\n", err)
			}
		}()
	}
	return gale.WithMonitor(f.srv), nil
}

// finish keeps the dashboard up after the job until ctx is done (Ctrl-C),
// with --ui-wait, then stops it.
func (f *uiFlags) finish(ctx context.Context, stderr io.Writer, jobErr error) {
	if f.srv == nil {
		return
	}
	if f.wait && ctx.Err() == nil {
		state := "is done"
		if jobErr != nil {
			state = "failed"
		}
		fmt.Fprintf(stderr, "gale: the job %s; its dashboard stays up at %s until you press Ctrl-C\n", state, f.srv.URL())
		<-ctx.Done()
	}
	if err := f.srv.Close(); err != nil {
		fmt.Fprintf(stderr, "gale: closing the dashboard: %v\n", err)
	}
	f.wg.Wait()
}

// startDashboard opens a dashboard server and prints its URL, warning when
// it listens beyond loopback (with a token made up if none was given).
func startDashboard(stderr io.Writer, addr string, remote bool, token string) (*ui.Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usageError{fmt.Errorf("dashboard address %q: want HOST:PORT, e.g. 127.0.0.1:8080", addr)}
	}
	loopback := ui.IsLoopback(host)
	if !loopback && !remote {
		return nil, usageError{fmt.Errorf("dashboard address %s is not loopback: anyone who reaches it sees the job's plan, paths and errors; add --ui-remote (gale ui: --remote) to allow it", addr)}
	}
	if !loopback && token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		token = hex.EncodeToString(b)
	}
	srv, err := ui.NewServer(ui.Config{Addr: addr, AllowRemote: !loopback, Token: token})
	if err != nil {
		return nil, err
	}
	if !loopback {
		fmt.Fprintf(stderr, "gale: warning: the dashboard listens on %s, beyond loopback; whoever has its URL (with the token) sees the job\n", srv.Addr())
	}
	fmt.Fprintf(stderr, "gale: dashboard at %s\n", srv.URL())
	return srv, nil
}

func newUICmd() *cobra.Command {
	var addr, token string
	var remote bool
	cmd := &cobra.Command{
		Use:   "ui EVENTS.jsonl [REPORT.json]",
		Short: "Serve the dashboard of finished jobs from their events (--events) and report (--report-json)",
		Long: `Serve the job dashboard for jobs that ran before, from the events file that
gale run --events wrote (every job in it is listed) and, optionally, the
report of one of them (gale run --report-json), until interrupted (Ctrl-C).
It shows what --ui shows live: the plan, each stage's progress and figures,
the task timeline, the concurrency over time, the totals and any error.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := startDashboard(cmd.ErrOrStderr(), addr, remote, token)
			if err != nil {
				return err
			}
			if err := loadJobFiles(srv, args); err != nil {
				srv.Close()
				return err
			}
			return srv.Serve(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", defaultUIAddr, "address to listen on")
	fl.BoolVar(&remote, "remote", false, "allow an address other than loopback (a token is made unless --token is set)")
	fl.StringVar(&token, "token", "", "require this token to open the dashboard")
	return cmd
}

// loadJobFiles loads an events file and, if given, a report into srv.
func loadJobFiles(srv *ui.Server, args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := srv.LoadEvents(f, args[0]); err != nil {
		return err
	}
	if len(args) < 2 {
		return nil
	}
	b, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	var r engine.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s is not a Gale job report (gale run --report-json): %w", args[1], err)
	}
	if r.JobID == "" {
		return fmt.Errorf("%s is not a Gale job report (gale run --report-json): it names no job", args[1])
	}
	return srv.AddReport(&r)
}
