package gale

import (
	"errors"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/glider/gliderstore"
)

// Glider storage as glider://META-ADDR/prefix (the metadata server's
// host:port, then a directory of the namespace), configured by the store
// options glider.namespace and glider.token — or glider.secret, the
// cluster secret, from which the namespace's token is derived. ReadText,
// WriteText, ReadRecords, WriteRecords and TempStore then read and write
// Glider files; see package glider/gliderstore.
func init() {
	registerStoreScheme("glider", "glider.", []string{"namespace", "token", "secret"},
		func(opts map[string]string) (objstore.Opener, error) {
			ns, tok := opts["namespace"], opts["token"]
			if tok == "" && opts["secret"] != "" {
				tok = glider.NamespaceToken(opts["secret"], ns)
			}
			if tok != "" && ns == "" {
				return nil, errors.New("gale: store option glider.namespace is required with glider.token or glider.secret")
			}
			return gliderstore.Opener(ns, tok), nil
		})
}
