//go:build !gale_slim || gale_gcp

package gale

import (
	"fmt"
	"strconv"

	"github.com/galeproject/gale/backends/gcp"
	"github.com/galeproject/gale/backends/objstore"
)

// Google Cloud Storage as gs://bucket/prefix, configured by the store
// options gs.endpoint (a JSON API endpoint such as fake-gcs-server's
// http://127.0.0.1:4443/storage/v1/), gs.credentials_file and
// gs.chunk_size (resumable-upload chunk in bytes).
func init() {
	registerStoreScheme("gs", "gs.", []string{"endpoint", "credentials_file", "chunk_size"},
		func(opts map[string]string) (objstore.Opener, error) {
			cfg := gcp.GCSConfig{Endpoint: opts["endpoint"], CredentialsFile: opts["credentials_file"]}
			if v, ok := opts["chunk_size"]; ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("gale: store option gs.chunk_size=%q is not a number of bytes", v)
				}
				cfg.ChunkSize = n
			}
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			return gcp.GCSOpener(cfg), nil
		})
}
