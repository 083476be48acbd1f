package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// DefaultPageSize is the page size List uses when limit <= 0 on the
// filesystem store; it matches S3's maximum page.
const DefaultPageSize = 1000

// FS is a Store on a local directory. Each key maps to the file at
// root/key, with the key's segments as directories.
//
// Put writes a temporary file (named TempPrefix + random, never listed) in
// the object's directory, flushes it to stable storage and renames it into
// place, so an object is visible whole or not at all, even after a machine
// crash. Rename is atomic. Delete removes directories it leaves empty. All
// methods are safe for concurrent use; concurrent Puts of one key leave one
// of the written objects, whole.
//
// A filesystem cannot hold both an object "a" and an object "a/b"; writing
// the second fails. Keys are validated on every call (ValidateKey), so no key
// reaches outside the root.
type FS struct {
	root string // absolute, cleaned
	// existing: the root is never created (OpenExistingFS); a write after
	// the root was removed fails instead of re-creating it.
	existing bool
}

var (
	_ Store   = (*FS)(nil)
	_ Renamer = (*FS)(nil)
	_ Copier  = (*FS)(nil)
)

// NewFS returns a store rooted at the directory root, creating it (and its
// parents) if it does not exist. A relative root is made absolute.
func NewFS(root string) (*FS, error) {
	if root == "" {
		return nil, errors.New("objstore: filesystem store: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("objstore: filesystem store %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: filesystem store: create root directory: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("objstore: filesystem store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("objstore: filesystem store: %s is not a directory", abs)
	}
	return &FS{root: abs}, nil
}

// OpenExistingFS returns a store rooted at the existing directory root. It
// never creates the root: once the directory is removed, writes fail (with
// an error wrapping fs.ErrNotExist) instead of re-creating it. A job's
// staging area is opened this way by its tasks, so a late duplicate of a
// task cannot bring back a staging directory the job already committed or
// removed. The URL form is file:///dir?existing=1 (ExistingDirURL).
func OpenExistingFS(root string) (*FS, error) {
	if root == "" {
		return nil, errors.New("objstore: filesystem store: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("objstore: filesystem store %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("objstore: filesystem store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("objstore: filesystem store: %s is not a directory", abs)
	}
	return &FS{root: abs, existing: true}, nil
}

// ExistingDirURL returns the URL that opens the existing directory dir
// with OpenExistingFS.
func ExistingDirURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: dir, RawQuery: "existing=1"}).String()
}

// Root returns the store's absolute root directory.
func (s *FS) Root() string { return s.root }

// String returns the store's URL, e.g. "file:///data/out".
func (s *FS) String() string { return fileURL(s.root) }

func fileURL(path string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	if !strings.HasPrefix(u.Path, "/") { // Windows drive letters
		u.Path = "/" + u.Path
	}
	return u.String()
}

// name returns the object's URL for messages.
func (s *FS) name(key string) string {
	return fileURL(filepath.Join(s.root, filepath.FromSlash(key)))
}

// path validates key and returns its file path.
func (s *FS) path(op, key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("objstore: %s in %s: %w", op, s, err)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// notExist reports whether err means that no file is at a path: missing, or
// a path segment is a regular file.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	p, err := s.path("get", key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("objstore: get %s: negative offset %d", s.name(key), off)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: get %s: %w", s.name(key), err)
	}
	f, fi, err := openRegular(p)
	if err != nil {
		return nil, fmt.Errorf("objstore: get %s: %w", s.name(key), err)
	}
	size := fi.Size()
	off = min(off, size)
	if n < 0 || n > size-off {
		n = size - off
	}
	return &fileRange{SectionReader: io.NewSectionReader(f, off, n), f: f}, nil
}

// openRegular opens the regular file at p for reading. It never blocks
// (openNonblock: a named pipe without a writer would hold open(2) in the
// kernel, deaf to signals and contexts), and it refuses anything but a
// regular file, such as a named pipe, a device or a socket, with an error
// wrapping ErrNotExist (List does not show such files) that says what the
// file is. A missing file is ErrNotExist too.
func openRegular(p string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		if notExist(err) {
			return nil, nil, ErrNotExist
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: it is %s, not a regular file", ErrNotExist, FileKind(fi.Mode()))
	}
	return f, fi, nil
}

// FileKind names the kind of file a mode describes, for messages: "a
// regular file", "a directory", "a named pipe (FIFO)", "a character
// device", ...
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file (mode " + m.String() + ")"
}

// fileRange is an open byte range of a file.
type fileRange struct {
	*io.SectionReader
	f *os.File
}

func (r *fileRange) Close() error { return r.f.Close() }

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := s.path("put", key)
	if err != nil {
		return err
	}
	if err := s.put(ctx, p, &ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("objstore: put %s: %w", s.name(key), err)
	}
	return nil
}

func (s *FS) put(ctx context.Context, p string, r io.Reader) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := s.createTemp(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return err
	}
	// Objects are files for people too: the usual mode, not CreateTemp's 0600.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	// Flush before the rename, so a crash leaves the old state or the whole
	// new object, never a renamed but empty file.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// createTemp creates a temporary file in dir, creating dir first.
func (s *FS) createTemp(dir string) (*os.File, error) {
	var f *os.File
	err := s.retryPruned(dir, func() (err error) {
		f, err = os.CreateTemp(dir, TempPrefix+"*")
		return err
	})
	return f, err
}

// retryPruned creates dir and runs op, which creates an entry in it. A
// concurrent Delete may prune dir, or one of its parents, at any moment
// until op's entry exists, failing MkdirAll or op with "no such file" (or
// MkdirAll with "file exists"): it then tries again. Each retry follows a prune that made progress elsewhere.
func (s *FS) retryPruned(dir string, op func() error) error {
	var err error
	for range 100 {
		err = s.mkdirAll(dir)
		if errors.Is(err, fs.ErrExist) {
			// MkdirAll's mkdir found the directory, which was pruned
			// before MkdirAll could check that it is one.
			continue
		}
		if err == nil {
			err = op()
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, errRootGone) {
			return err
		}
	}
	return err
}

// mkdirAll creates dir and its missing parents; in a store opened with
// OpenExistingFS only those below the root, failing once the root is gone.
func (s *FS) mkdirAll(dir string) error {
	if !s.existing {
		return os.MkdirAll(dir, 0o755)
	}
	rel, err := filepath.Rel(s.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("objstore: %s is outside the store's root %s", dir, s.root)
	}
	if _, err := os.Stat(s.root); err != nil {
		return fmt.Errorf("the store's directory %s was removed: %w", s.root, errRootGone)
	}
	p := s.root
	if rel == "." {
		return nil
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// errRootGone ends retryPruned's retries: the root of a store opened with
// OpenExistingFS was removed and is not re-created. It wraps
// fs.ErrNotExist for callers.
var errRootGone = fmt.Errorf("%w (not re-created)", fs.ErrNotExist)

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Stat implements Store.
func (s *FS) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := s.path("stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("objstore: stat %s: %w", s.name(key), err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		if notExist(err) {
			return ObjectInfo{}, fmt.Errorf("objstore: stat %s: %w", s.name(key), ErrNotExist)
		}
		return ObjectInfo{}, fmt.Errorf("objstore: stat %s: %w", s.name(key), err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("objstore: stat %s: %w", s.name(key), ErrNotExist)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements Store. It removes the directories the deletion leaves
// empty, up to the root.
func (s *FS) Delete(ctx context.Context, key string) error {
	p, err := s.path("delete", key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", s.name(key), err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return fmt.Errorf("objstore: delete %s: %w", s.name(key), err)
	}
	if fi.IsDir() { // a "directory" of other keys, not an object
		return nil
	}
	if err := os.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("objstore: delete %s: %w", s.name(key), err)
	}
	s.prune(filepath.Dir(p))
	return nil
}

// prune removes dir and its parents up to the root while they are empty.
// os.Remove refuses a non-empty directory, so a concurrent Put into dir
// either keeps it alive or retries after it is gone (createTemp).
func (s *FS) prune(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Rename implements Renamer: it moves from to to atomically, replacing to,
// creating to's directories and pruning from's emptied ones.
func (s *FS) Rename(ctx context.Context, from, to string) error {
	pf, err := s.path("rename", from)
	if err != nil {
		return err
	}
	pt, err := s.path("rename", to)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: rename %s to %s: %w", s.name(from), to, err)
	}
	fi, err := os.Lstat(pf)
	if err == nil && fi.IsDir() {
		err = ErrNotExist
	} else if err != nil && notExist(err) {
		err = ErrNotExist
	}
	if err != nil {
		return fmt.Errorf("objstore: rename %s to %s: %w", s.name(from), to, err)
	}
	err = s.retryPruned(filepath.Dir(pt), func() error {
		err := os.Rename(pf, pt)
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Lstat(pf); notExist(serr) {
				return ErrNotExist // the source went away meanwhile
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("objstore: rename %s to %s: %w", s.name(from), to, err)
	}
	s.prune(filepath.Dir(pf))
	return nil
}

// Copy implements Copier: it writes a copy of from under to, atomically.
func (s *FS) Copy(ctx context.Context, from, to string) error {
	pf, err := s.path("copy", from)
	if err != nil {
		return err
	}
	pt, err := s.path("copy", to)
	if err != nil {
		return err
	}
	f, _, err := openRegular(pf)
	if err != nil {
		return fmt.Errorf("objstore: copy %s to %s: %w", s.name(from), to, err)
	}
	defer f.Close()
	if err := s.put(ctx, pt, &ctxReader{ctx: ctx, r: f}); err != nil {
		return fmt.Errorf("objstore: copy %s to %s: %w", s.name(from), to, err)
	}
	return nil
}

// List implements Store. Pages hold up to limit objects (DefaultPageSize if
// limit <= 0); the page token is the last key of the previous page.
//
// Directory walks visit names in byte order, but "a.txt" sorts before the
// keys under "a/" ('.' < '/'), so it visits a directory d in the position of
// "d/" among its siblings, which yields keys in exact lexical order and lets
// a page stop reading the tree as soon as it is full.
func (s *FS) List(ctx context.Context, prefix, token string, limit int) (ListPage, error) {
	if err := validatePrefix(prefix); err != nil {
		return ListPage{}, fmt.Errorf("objstore: list %s: %w", s, err)
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	w := walker{ctx: ctx, prefix: prefix, token: token, want: limit + 1}
	// Start at the deepest directory the prefix names in full.
	dirKey := prefix[:strings.LastIndexByte(prefix, '/')+1]
	err := w.walk(filepath.Join(s.root, filepath.FromSlash(dirKey)), dirKey)
	if err != nil {
		return ListPage{}, fmt.Errorf("objstore: list %s prefix %q: %w", s, prefix, err)
	}
	page := ListPage{Objects: w.out}
	if len(w.out) > limit {
		page.Objects = w.out[:limit]
		page.Next = page.Objects[limit-1].Key
	}
	return page, nil
}

// walker collects, in key order, up to want objects whose keys start with
// prefix and sort after token.
type walker struct {
	ctx           context.Context
	prefix, token string
	want          int
	out           []ObjectInfo
}

type dirEntry struct {
	sortName string // name, plus "/" for a directory
	entry    os.DirEntry
}

// walk lists the directory dir, which holds the keys starting with dirKey
// (empty or ending in "/").
func (w *walker) walk(dir, dirKey string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return err
	}
	sorted := make([]dirEntry, 0, len(ents))
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, TempPrefix) {
			continue
		}
		if e.IsDir() {
			name += "/"
		}
		sorted = append(sorted, dirEntry{sortName: name, entry: e})
	}
	slices.SortFunc(sorted, func(a, b dirEntry) int { return strings.Compare(a.sortName, b.sortName) })
	for _, e := range sorted {
		if len(w.out) >= w.want {
			return nil
		}
		key := dirKey + e.sortName
		if e.entry.IsDir() {
			// key ends in "/": every key below starts with it.
			if !strings.HasPrefix(key, w.prefix) && !strings.HasPrefix(w.prefix, key) {
				continue
			}
			if key <= w.token && !strings.HasPrefix(w.token, key) {
				continue // the whole subtree sorts before the token
			}
			if err := w.walk(filepath.Join(dir, e.entry.Name()), key); err != nil {
				return err
			}
			continue
		}
		if key <= w.token || !strings.HasPrefix(key, w.prefix) || keyProblem(key) != "" {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.entry.Name())) // follows symlinks
		if err != nil {
			if notExist(err) {
				continue // deleted meanwhile, or a dangling link
			}
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		w.out = append(w.out, ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return nil
}
