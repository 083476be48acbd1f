//go:build !gale_slim || gale_azure

package gale

import (
	"fmt"
	"strconv"

	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/objstore"
)

// Azure Blob Storage as azblob://container/prefix, configured by the store
// options azblob.account, azblob.endpoint (the Blob service URL, e.g.
// Azurite's http://127.0.0.1:10000/devstoreaccount1), azblob.key (the
// account's shared key; without it the Azure SDK's default credential
// chain is used), azblob.block_size and azblob.concurrency.
func init() {
	registerStoreScheme("azblob", "azblob.", []string{"account", "endpoint", "key", "block_size", "concurrency"},
		func(opts map[string]string) (objstore.Opener, error) {
			cfg := azure.BlobConfig{Account: opts["account"], Endpoint: opts["endpoint"], Key: opts["key"]}
			if v, ok := opts["block_size"]; ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("gale: store option azblob.block_size=%q is not a number of bytes", v)
				}
				cfg.BlockSize = n
			}
			if v, ok := opts["concurrency"]; ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("gale: store option azblob.concurrency=%q is not a number", v)
				}
				cfg.Concurrency = n
			}
			// Validated when an azblob:// URL is opened: a job that uses no
			// Blob store needs no azblob options.
			return azure.BlobOpener(cfg), nil
		})
}
