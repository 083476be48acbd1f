package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
)

// The job dashboard: `gale run JOB --ui[=ADDR]` serves it while the job
// runs, `gale ui EVENTS [REPORT]` afterwards from the job's files.

// defaultUIAddr is where the dashboard listens without an address: a free
// port on loopback.
const defaultUIAddr = "127.0.0.1:0"

// uiFlags are gale run's dashboard flags.
type uiFlags struct {
	addr   string
	remote bool
	token  string
	wait   bool

	uiState // the dashboard, once started (ui.go; nothing in slim builds)
}

func (f *uiFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "ui", "", "serve a live dashboard of the job at this address (--ui alone: a free port on 127.0.0.1; --ui=HOST:PORT)")
	fl.Lookup("ui").NoOptDefVal = defaultUIAddr
	fl.BoolVar(&f.remote, "ui-remote", false, "allow --ui on an address other than loopback (anyone who reaches it sees the job; a token is made unless --ui-token is set)")
	fl.StringVar(&f.token, "ui-token", "", "require this token to open the dashboard")
	fl.BoolVar(&f.wait, "ui-wait", true, "with --ui, keep the dashboard up after the job ends until interrupted (Ctrl-C)")
	// A space between --ui and its address makes the address an argument:
	// say how to write it.
	args := cmd.Args
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if f.addr == defaultUIAddr && len(a) > 0 {
			if _, _, err := net.SplitHostPort(a[0]); err == nil {
				return usageError{fmt.Errorf("--ui takes its address after an equals sign: --ui=%s", a[0])}
			}
		}
		if args == nil {
			return nil
		}
		return args(cmd, a)
	}
	// After the job, successful or not, the dashboard stays up until the
	// user is done with it.
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		err := run(cmd, a)
		f.finish(cmd.Context(), cmd.ErrOrStderr(), err)
		return err
	}
}
