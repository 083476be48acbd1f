package galerunner

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

// planInfo describes a Beam plan as Gale's job events do (job_start's
// "plan"), so the dashboard and gale ui draw a Beam job like any other:
// each stage with the transforms it fuses, and each edge between stages
// that moves data through the temporary store as a shuffle labelled with
// its kind. Side-input edges, read whole by every task of the stages that
// use them, appear as those stages' dependencies.
func planInfo(p *stages.Plan) engine.PlanInfo {
	info := engine.PlanInfo{Stages: make([]engine.StageInfo, 0, len(p.Stages))}
	for _, st := range p.Stages {
		si := engine.StageInfo{ID: st.ID, Name: st.Name, Tasks: st.Tasks, Role: "compute", Shuffle: -1,
			Deps: append([]int(nil), st.Deps...), Ops: []engine.OpInfo{}}
		if st.Input.Impulse {
			si.Input = "Impulse"
		} else if st.Input.TestStream != nil {
			si.Input = "TestStream"
		} else if e := edge(p, st.Input.Edge); e != nil {
			si.Input, si.Shuffle = e.Label, e.ID
		}
		for _, l := range st.Labels {
			si.Ops = append(si.Ops, engine.OpInfo{Label: l, Kind: "narrow", Shuffle: -1})
		}
		for _, o := range st.Outputs {
			if e := edge(p, o.Edge); e != nil {
				si.Ops = append(si.Ops, engine.OpInfo{Label: e.Kind.String() + " " + e.Label, Kind: "shuffle-write", Shuffle: e.ID})
			}
		}
		info.Stages = append(info.Stages, si)
	}
	for _, e := range p.Edges {
		if e.Kind == stages.Side || e.Consumer < 0 {
			continue
		}
		info.Shuffles = append(info.Shuffles, engine.ShuffleInfo{ID: e.ID, Label: e.Kind.String() + " " + e.Label,
			Strategy: "data-shipping", Partitions: e.Partitions, Producers: append([]int(nil), e.Producers...), Consumer: e.Consumer})
	}
	return info
}

// edge returns the plan's edge id, or nil.
func edge(p *stages.Plan, id int) *stages.Edge {
	for _, e := range p.Edges {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// uiFlag is --gale_ui: alone it serves the dashboard on a free loopback
// port, --gale_ui=HOST:PORT on that address.
type uiFlag struct{ addr string }

func (f *uiFlag) String() string {
	if f == nil {
		return ""
	}
	return f.addr
}

func (f *uiFlag) Set(v string) error {
	switch v {
	case "true":
		f.addr = defaultUIAddr
	case "false":
		f.addr = ""
	default:
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("%q is not HOST:PORT (for example 127.0.0.1:8080; --gale_ui alone picks a free port)", v)
		}
		f.addr = v
	}
	return nil
}

// IsBoolFlag lets --gale_ui stand alone.
func (f *uiFlag) IsBoolFlag() bool { return true }

// defaultUIAddr is where --gale_ui alone serves: a free port on loopback.
const defaultUIAddr = "127.0.0.1:0"

// serveUI starts the dashboard at addr (loopback only), prints its URL to
// standard error and makes cfg's job report to it. The returned function
// waits for ctx to end first when wait is set (the user looks at the
// finished job until Ctrl-C), then stops the server.
func serveUI(ctx context.Context, addr string, wait bool, cfg *Config) (func(), error) {
	srv, err := ui.NewServer(ui.Config{Addr: addr})
	if err != nil {
		return nil, fmt.Errorf("galerunner: --gale_ui: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(os.Stderr, "galerunner: the dashboard stopped: %v\n", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "galerunner: dashboard of the job at %s\n", srv.URL())
	cfg.Monitor = srv
	return func() {
		if wait && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "galerunner: the dashboard stays up at %s until interrupted (Ctrl-C)\n", srv.URL())
			sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			<-sctx.Done()
			stop()
		}
		_ = srv.Close()
		<-done
	}, nil
}
