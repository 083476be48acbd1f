package gale

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/engine"
)

// inputFile is one resolved input object.
type inputFile struct {
	url  string // the store holding it
	key  string
	size int64
	// modTime and etag are the object's when the job was planned; the job
	// fails if they change before it ends (engine.InputSpec.Expect).
	modTime time.Time
	etag    string
	name    string // for messages
	codec   string // its compression (engine.Compression*), "" for none
}

// stamp is what the job expects the file to stay while it runs.
func (f inputFile) stamp() *engine.ObjectStamp {
	return &engine.ObjectStamp{Size: f.size, ModTime: f.modTime, ETag: f.etag}
}

// compressions maps file name extensions to the compression Gale reads
// through; unreadable lists those it recognizes but does not read, so such
// a file is refused by name instead of being read as raw bytes.
var (
	compressions = map[string]string{".gz": engine.CompressionGzip, ".gzip": engine.CompressionGzip,
		".bz2": engine.CompressionBzip2, ".zst": engine.CompressionZstd, ".zstd": engine.CompressionZstd}
	unreadable = map[string]string{".xz": "xz", ".lz4": "LZ4", ".sz": "Snappy", ".snappy": "Snappy",
		".br": "Brotli", ".zip": "zip", ".7z": "7-Zip", ".lzma": "LZMA", ".z": "compress (.Z)", ".lz": "lzip"}
)

// withCodecs sets each file's compression from its extension, and refuses
// the compressions Gale does not read.
func withCodecs(files []inputFile) ([]inputFile, error) {
	for i := range files {
		ext := strings.ToLower(path.Ext(files[i].key))
		if c, ok := compressions[ext]; ok {
			files[i].codec = c
			continue
		}
		if what, ok := unreadable[ext]; ok {
			return nil, fmt.Errorf("input %s is compressed with %s, which Gale does not read: decompress it, "+
				"or recompress it with gzip (.gz), bzip2 (.bz2) or zstd (.zst)", files[i].name, what)
		}
	}
	return files, nil
}

// expandText resolves a ReadText pattern to files, in a deterministic order.
// Unless uncommitted, folders are read as committed outputs only
// (committedFiles); a file named by its exact path is read as it is.
func expandText(ctx context.Context, open engine.StoreOpener, opts map[string]string, pattern string, uncommitted bool) ([]inputFile, error) {
	u, err := url.Parse(pattern)
	if err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1 {
		return expandObjects(ctx, open, opts, u, pattern, uncommitted)
	}
	p := pattern
	if err == nil && u.Scheme == "file" {
		p = u.Path
	}
	var paths []string
	glob := strings.ContainsAny(p, "*?[")
	if glob {
		paths, err = filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("bad pattern %q: %v", pattern, err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("pattern %s matched no files", pattern)
		}
	} else {
		paths = []string{p}
	}
	var files, globbed []inputFile
	for _, p := range paths {
		// Stat, never open: opening a named pipe blocks until a writer
		// comes, and no signal interrupts that.
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("input %s does not exist", p)
			}
			return nil, fmt.Errorf("input %s: %v", p, err)
		}
		if err := checkSpecial(p, fi); err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			abs, _ := filepath.Abs(p)
			f := inputFile{url: filepath.Dir(abs), key: filepath.Base(abs), size: fi.Size(), modTime: fi.ModTime(), name: p}
			if glob {
				globbed = append(globbed, f)
			} else {
				files = append(files, f)
			}
			continue
		}
		root, _ := filepath.Abs(p)
		var walked []inputFile
		err = filepath.WalkDir(root, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && fp != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch t := d.Type(); {
			case t.IsRegular():
				info, err := d.Info()
				if err != nil {
					return err
				}
				walked = append(walked, inputFile{url: filepath.Dir(fp), key: filepath.Base(fp), size: info.Size(),
					modTime: info.ModTime(), name: fp})
			case t.IsDir(), t&fs.ModeSymlink != 0:
			default:
				return notRegular(fp, t)
			}
			return nil
		})
		if err != nil {
			var se *specialFileError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, fmt.Errorf("input %s: %v", p, err)
		}
		if !uncommitted {
			if walked, err = committedFiles(ctx, walked, true, localKey, localMarker); err != nil {
				return nil, fmt.Errorf("input %s: %w", p, err)
			}
		}
		files = append(files, walked...)
	}
	if !uncommitted {
		if globbed, err = committedFiles(ctx, globbed, false, localKey, localMarker); err != nil {
			return nil, fmt.Errorf("input %s: %w", pattern, err)
		}
	}
	files = append(files, globbed...)
	if uncommitted {
		// Markers are not data, even where the folders are read whole.
		files = slices.DeleteFunc(files, func(f inputFile) bool { return f.key == objstore.SuccessKey })
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("input %s holds no files", pattern)
	}
	return files, nil
}

// specialFileError refuses an input that is not a regular file or a
// directory of them.
type specialFileError struct{ msg string }

func (e *specialFileError) Error() string { return e.msg }

func notRegular(path string, m fs.FileMode) error {
	return &specialFileError{fmt.Sprintf("input %s is %s, not a regular file: Gale reads regular files only, "+
		"since it splits each by its size; copy the data into a file first", path, objstore.FileKind(m))}
}

// checkSpecial refuses an input path that is neither a regular file nor a
// directory (a named pipe, a device such as /dev/zero, a socket), and one
// on a kernel pseudo-filesystem such as /proc, whose files stat as empty
// (or as a page) but are generated when read.
func checkSpecial(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return notRegular(path, fi.Mode().Type())
	}
	if name := pseudoFS(path); name != "" {
		return &specialFileError{fmt.Sprintf("input %s is on the kernel's %s pseudo-filesystem, whose files report "+
			"a size (%d bytes) unrelated to what reading them returns, so Gale cannot split them: copy it into a "+
			"regular file first (cp -r %s DEST)", path, name, fi.Size(), path)}
	}
	return nil
}

// expandObjects resolves scheme://bucket/prefix-or-glob against an object
// store: every object whose key starts with the prefix, or matches the
// glob.
func expandObjects(ctx context.Context, open engine.StoreOpener, opts map[string]string, u *url.URL, pattern string, uncommitted bool) ([]inputFile, error) {
	root := u.Scheme + "://" + u.Host
	st, err := open(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	key := strings.TrimPrefix(u.Path, "/")
	prefix, glob := key, ""
	if i := strings.IndexAny(key, "*?["); i >= 0 {
		prefix, glob = key[:i], key
	}
	objs, err := objstore.ListAll(ctx, st, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", pattern, err)
	}
	var files []inputFile
	listed := map[string]bool{}
	for _, o := range objs {
		listed[o.Key] = true
	}
	for _, o := range objs {
		if glob != "" {
			if ok, _ := path.Match(glob, o.Key); !ok {
				continue
			}
		} else if !underPrefix(o.Key, key) {
			continue
		}
		if strings.HasSuffix(o.Key, "/") {
			continue
		}
		if uncommitted && (strings.Contains("/"+o.Key, "/"+objstore.TemporaryDir+"/") || path.Base(o.Key) == objstore.SuccessKey) {
			continue
		}
		files = append(files, inputFile{url: root, key: o.Key, size: o.Size, modTime: o.ModTime, etag: o.ETag,
			name: root + "/" + o.Key})
	}
	// An object named exactly is read as it is; a folder or a glob's
	// matches as committed outputs only.
	if !uncommitted && !(glob == "" && len(files) == 1 && files[0].key == key) {
		marker := storeMarker(st, listed)
		if glob != "" {
			marker = storeMarker(st, nil)
		}
		if files, err = committedFiles(ctx, files, glob == "", func(f inputFile) string { return f.key }, marker); err != nil {
			return nil, fmt.Errorf("input %s: %w", pattern, err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("input %s matched no objects", pattern)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].key < files[j].key })
	return files, nil
}

// textSplits cuts files into chunks of at most chunk bytes. A compressed
// file is one split: its stream cannot be entered in the middle. Empty
// files contribute nothing, but an input of only empty files yields one
// empty split so the job still runs (and commits an empty output).
func textSplits(files []inputFile, chunk int64) []engine.InputSpec {
	var ins []engine.InputSpec
	for _, f := range files {
		if f.codec != "" {
			if f.size > 0 {
				ins = append(ins, engine.InputSpec{Kind: engine.InputText, URL: f.url, Key: f.key, Len: f.size, Compression: f.codec,
					Expect: f.stamp()})
			}
			continue
		}
		for off := int64(0); off < f.size; off += chunk {
			ins = append(ins, engine.InputSpec{Kind: engine.InputText, URL: f.url, Key: f.key, Off: off, Len: min(chunk, f.size-off),
				Expect: f.stamp()})
		}
	}
	if len(ins) == 0 && len(files) > 0 {
		ins = append(ins, engine.InputSpec{Kind: engine.InputText, URL: files[0].url, Key: files[0].key, Expect: files[0].stamp()})
	}
	return ins
}

// underPrefix reports whether key is named by prefix: "data" names the
// object data and everything in the folder data/, not data-old.txt; "data/"
// and "" name a folder.
func underPrefix(key, prefix string) bool {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(key, prefix)
	}
	return key == prefix || strings.HasPrefix(key, prefix+"/")
}

// recordSplits cuts files of fixed-size records into chunks of whole
// records, and reports a file whose size is not a multiple of size.
func recordSplits(files []inputFile, chunk int64, size int) ([]engine.InputSpec, error) {
	rs := int64(size)
	chunk = max(chunk/rs, 1) * rs
	var ins []engine.InputSpec
	for _, f := range files {
		if f.codec != "" {
			// One split; the worker checks the decompressed size.
			if f.size > 0 {
				ins = append(ins, engine.InputSpec{Kind: engine.InputFixed, URL: f.url, Key: f.key, Len: f.size,
					RecordSize: size, Compression: f.codec, Expect: f.stamp()})
			}
			continue
		}
		if f.size%rs != 0 {
			return nil, fmt.Errorf("input %s is %d bytes, not a whole number of %d-byte records: "+
				"the record at offset %d is incomplete", f.name, f.size, size, f.size-f.size%rs)
		}
		for off := int64(0); off < f.size; off += chunk {
			ins = append(ins, engine.InputSpec{Kind: engine.InputFixed, URL: f.url, Key: f.key, Off: off,
				Len: min(chunk, f.size-off), RecordSize: size, Expect: f.stamp()})
		}
	}
	if len(ins) == 0 && len(files) > 0 {
		ins = append(ins, engine.InputSpec{Kind: engine.InputFixed, URL: files[0].url, Key: files[0].key, RecordSize: size,
			Expect: files[0].stamp()})
	}
	return ins, nil
}
