package gale

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/galeproject/gale/backends/objstore"
)

// ReadUncommitted lets ReadText and ReadRecords read folders that look
// like outputs of a job that has not committed them, or died before it
// did: part files or a _temporary folder, and no _SUCCESS marker. By
// default such an input is refused, and a folder with a _SUCCESS manifest
// is read as the parts it lists only (docs/engine.md, "Committing
// output"). On the gale command line: --read-uncommitted.
func ReadUncommitted(ok bool) RunOption { return func(c *runConfig) { c.readUncommitted = ok } }

// uncommittedHint is what an input error about an uncommitted output adds.
const uncommittedHint = "; wait for the job writing it, rerun the job that died, or read it anyway with " +
	"gale.ReadUncommitted(true) (--read-uncommitted on the gale command line)"

// committedFiles keeps, of files found in folders (a directory walk, a
// glob's matches, an object-store listing), those of committed outputs
// (objstore.SelectCommitted). key gives a file's slash-separated key,
// whose folders marker looks up.
func committedFiles(ctx context.Context, files []inputFile, complete bool, key func(inputFile) string, marker objstore.Marker) ([]inputFile, error) {
	if len(files) == 0 {
		return files, nil
	}
	byKey := map[string]inputFile{}
	objs := make([]objstore.ObjectInfo, 0, len(files))
	for _, f := range files {
		k := key(f)
		byKey[k] = f
		objs = append(objs, objstore.ObjectInfo{Key: k, Size: f.size, ModTime: f.modTime})
	}
	sel, err := objstore.SelectCommitted(ctx, objs, complete, marker)
	if err != nil {
		if errors.Is(err, objstore.ErrUncommitted) {
			return nil, errors.New(err.Error() + uncommittedHint)
		}
		return nil, err
	}
	out := make([]inputFile, 0, len(sel))
	for _, o := range sel {
		out = append(out, byKey[o.Key])
	}
	return out, nil
}

// localKey is the key of a local file: its absolute path, slash-separated,
// without the leading slash.
func localKey(f inputFile) string {
	return strings.TrimPrefix(filepath.ToSlash(filepath.Join(f.url, f.key)), "/")
}

// localMarker reads the _SUCCESS file of a local folder given as a key.
func localMarker(_ context.Context, folder string) ([]byte, bool, error) {
	p := filepath.FromSlash("/" + folder + objstore.SuccessKey)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	b, err := os.ReadFile(p)
	return b, err == nil, err
}

// storeMarker reads _SUCCESS objects of st; listed, if not nil, holds
// every key of the folders asked about, so a marker not in it is absent
// without a request.
func storeMarker(st objstore.Store, listed map[string]bool) objstore.Marker {
	return func(ctx context.Context, folder string) ([]byte, bool, error) {
		k := folder + objstore.SuccessKey
		if listed != nil && !listed[k] {
			return nil, false, nil
		}
		rc, err := st.Get(ctx, k, 0, -1)
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return b, err == nil, err
	}
}
