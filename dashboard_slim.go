//go:build gale_slim

package gale

import (
	"context"
	"errors"

	"github.com/galeproject/gale/engine"
)

// startUI refuses: a slim build (deployed to functions, which never serve
// a dashboard) leaves the dashboard's web server out.
func startUI(context.Context, string, string) (engine.Monitor, func(), error) {
	return nil, nil, errors.New("gale: WithUI: this program was built with -tags " + SlimTag +
		", which leaves the dashboard out; build the driver without it")
}
