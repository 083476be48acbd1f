package galerunner

import (
	"context"
	"net/url"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
)

// openStore opens the temporary store: a local directory directly as a
// filesystem store (the default, and what the process backend's workers
// share with the driver), anything else through gale.OpenStore's scheme
// registry (s3://, gs://, ...).
func openStore(ctx context.Context, raw string, opts map[string]string) (objstore.Store, error) {
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "" || u.Scheme == "file") && len(opts) == 0 {
		path := raw
		if u.Scheme == "file" {
			path = u.Path
		}
		return objstore.NewFS(path)
	}
	return gale.OpenStore(ctx, raw, opts)
}
