//go:build !gale_slim

package gale

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

// startUI starts WithUI's dashboard for job id and returns it and a
// function that closes it and waits for it.
func startUI(ctx context.Context, addr, id string) (engine.Monitor, func(), error) {
	srv, err := ui.NewServer(ui.Config{Addr: addr})
	if err != nil {
		return nil, nil, fmt.Errorf("gale: WithUI: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(os.Stderr, "gale: the dashboard of job %s stopped: %v\n", id, err)
		}
	}()
	fmt.Fprintf(os.Stderr, "gale: dashboard of job %s at %s\n", id, srv.URL())
	return srv, func() {
		_ = srv.Close()
		wg.Wait()
	}, nil
}
