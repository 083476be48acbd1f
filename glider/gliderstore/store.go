// Package gliderstore is an object store (objstore.Store) on Glider files,
// so Gale's text input, output and temporary store can live in Glider's
// ephemeral storage: glider://META-ADDR/prefix, where META-ADDR is the
// metadata server's host:port and prefix a directory of the namespace.
//
// An object key maps to the file root/key, its segments to directories
// (created on Put as needed). Put writes with glider.Client.Replace, so an
// object appears whole when Put returns nil, or not at all, and an object
// it replaces stays as it was until then. Rename is one metadata
// operation. As on a filesystem, an object "a" and an object "a/b" cannot
// both exist; directories that deletes leave empty stay (they hold no
// objects and are not listed). The data is ephemeral: it lives as long as
// the Glider cluster.
//
//	st, err := gliderstore.New(gliderstore.Config{Meta: addr, Namespace: "data", Token: tok, Root: "corpus"})
//	err = st.Put(ctx, "part-00000", r)
//
// Imports: the standard library, glider and backends/objstore.
//
// Goroutines: none of its own. Each operation dials a Glider client and
// closes it (and so waits for its goroutines) before returning, or, for
// Get, when the returned reader is closed.
package gliderstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/glider"
)

// Config locates a Glider store.
type Config struct {
	// Meta is the metadata server's address (host:port). Required.
	Meta string
	// Namespace is the tenant namespace. Required.
	Namespace string
	// Token opens the namespace (glider.NamespaceToken of the cluster
	// secret). Required.
	Token string
	// Root is the directory of the namespace that holds the objects,
	// without leading or trailing slashes; "" for the namespace's root.
	Root string
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Meta == "" {
		errs = append(errs, errors.New("Config.Meta (the metadata server's host:port) is required"))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("Config.Namespace is required (store option glider.namespace)"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("Config.Token is required (store option glider.token, or glider.secret to derive it)"))
	}
	if c.Root != "" {
		if err := objstore.ValidateKey(c.Root); err != nil {
			errs = append(errs, fmt.Errorf("Config.Root: %w", err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// One line, naming the package once.
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return &configError{msg: "gliderstore: " + strings.Join(msgs, "; "), errs: errs}
}

// configError is every problem with a Config, on one line.
type configError struct {
	msg  string
	errs []error
}

func (e *configError) Error() string   { return e.msg }
func (e *configError) Unwrap() []error { return e.errs }

// Store is an objstore.Store on the files of one Glider namespace. It is
// safe for concurrent use.
type Store struct {
	cfg Config
}

var (
	_ objstore.Store   = (*Store)(nil)
	_ objstore.Renamer = (*Store)(nil)
)

// New returns a store; it connects to Glider on each operation.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg}, nil
}

// Opener returns an objstore.Opener for glider://META-ADDR/prefix URLs in
// namespace ns with token.
func Opener(ns, token string) objstore.Opener {
	return func(_ context.Context, u *url.URL) (objstore.Store, error) {
		if u.Host == "" {
			return nil, fmt.Errorf("gliderstore: %s has no metadata server address (write glider://host:port/prefix)", u)
		}
		return New(Config{Meta: u.Host, Namespace: ns, Token: token, Root: strings.Trim(u.Path, "/")})
	}
}

// Location returns the Glider metadata server, namespace and the absolute
// path of the store's root directory, so that Gale can tell that a store
// lives in a given Glider cluster (and let actions write into it).
func (s *Store) Location() (meta, namespace, root string) {
	return s.cfg.Meta, s.cfg.Namespace, "/" + s.cfg.Root
}

// Path returns the Glider path of key.
func (s *Store) Path(key string) string {
	if s.cfg.Root == "" {
		return "/" + key
	}
	return "/" + s.cfg.Root + "/" + key
}

// String returns the store's URL.
func (s *Store) String() string {
	u := url.URL{Scheme: "glider", Host: s.cfg.Meta, Path: "/" + s.cfg.Root}
	return strings.TrimSuffix(u.String(), "/")
}

func (s *Store) name(key string) string { return s.String() + "/" + key }

func (s *Store) dial(ctx context.Context) (*glider.Client, error) {
	c, err := glider.Dial(ctx, glider.ClientConfig{Meta: s.cfg.Meta, Namespace: s.cfg.Namespace, Token: s.cfg.Token})
	if err != nil {
		return nil, fmt.Errorf("gliderstore: connecting to %s: %w", s, err)
	}
	return c, nil
}

// missing reports whether err means that no object is at a key.
func missing(err error) bool {
	return errors.Is(err, glider.ErrNotFound) || errors.Is(err, glider.ErrNotDir) || errors.Is(err, glider.ErrWrongKind)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("gliderstore: get in %s: %w", s, err)
	}
	if off < 0 {
		return nil, fmt.Errorf("gliderstore: get %s: negative offset %d", s.name(key), off)
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.Open(ctx, s.Path(key))
	if err != nil {
		c.Close()
		if missing(err) {
			return nil, fmt.Errorf("gliderstore: get %s: %w", s.name(key), objstore.ErrNotExist)
		}
		return nil, fmt.Errorf("gliderstore: get %s: %w", s.name(key), err)
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		r.Close()
		c.Close()
		return nil, fmt.Errorf("gliderstore: get %s: %w", s.name(key), err)
	}
	var rd io.Reader = r
	if n >= 0 {
		rd = io.LimitReader(r, n)
	}
	return &reader{Reader: rd, f: r, c: c}, nil
}

// reader is an open object; closing it closes its client.
type reader struct {
	io.Reader
	f *glider.FileReader
	c *glider.Client
}

func (r *reader) Close() error {
	r.f.Close()
	return r.c.Close()
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := objstore.ValidateKey(key); err != nil {
		return fmt.Errorf("gliderstore: put in %s: %w", s, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gliderstore: put %s: %w", s.name(key), err)
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := s.put(ctx, c, key, r); err != nil {
		return fmt.Errorf("gliderstore: put %s: %w", s.name(key), err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, c *glider.Client, key string, r io.Reader) error {
	p := s.Path(key)
	if dir := path.Dir(p); dir != "/" {
		if err := c.MkdirAll(ctx, dir); err != nil {
			return err
		}
	}
	w, err := c.Replace(ctx, p, "")
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		w.Abort()
		return err
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// ctxReader fails reads once ctx is done, so a cancelled Put stops.
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

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("gliderstore: stat in %s: %w", s, err)
	}
	c, err := s.dial(ctx)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	defer c.Close()
	n, err := c.Lookup(ctx, s.Path(key))
	if err == nil && n.Kind != glider.KindFile {
		err = glider.ErrWrongKind
	}
	if err != nil {
		if missing(err) {
			return objstore.ObjectInfo{}, fmt.Errorf("gliderstore: stat %s: %w", s.name(key), objstore.ErrNotExist)
		}
		return objstore.ObjectInfo{}, fmt.Errorf("gliderstore: stat %s: %w", s.name(key), err)
	}
	return objstore.ObjectInfo{Key: key, Size: n.Size, ModTime: n.ModTime}, nil
}

// Delete implements objstore.Store. A missing key, or a key naming a
// directory, is not an error and removes nothing.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.ValidateKey(key); err != nil {
		return fmt.Errorf("gliderstore: delete in %s: %w", s, err)
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := c.Lookup(ctx, s.Path(key))
	if err != nil {
		if missing(err) {
			return nil
		}
		return fmt.Errorf("gliderstore: delete %s: %w", s.name(key), err)
	}
	if n.Kind != glider.KindFile {
		return nil
	}
	if err := c.Delete(ctx, s.Path(key)); err != nil && !missing(err) {
		return fmt.Errorf("gliderstore: delete %s: %w", s.name(key), err)
	}
	return nil
}

// Rename implements objstore.Renamer: one metadata operation, replacing an
// object at to.
func (s *Store) Rename(ctx context.Context, from, to string) error {
	for _, k := range []string{from, to} {
		if err := objstore.ValidateKey(k); err != nil {
			return fmt.Errorf("gliderstore: rename in %s: %w", s, err)
		}
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := c.Lookup(ctx, s.Path(from))
	if err == nil && n.Kind != glider.KindFile {
		err = glider.ErrWrongKind
	}
	if err != nil {
		if missing(err) {
			return fmt.Errorf("gliderstore: rename %s: %w", s.name(from), objstore.ErrNotExist)
		}
		return fmt.Errorf("gliderstore: rename %s: %w", s.name(from), err)
	}
	if dir := path.Dir(s.Path(to)); dir != "/" {
		if err := c.MkdirAll(ctx, dir); err != nil {
			return fmt.Errorf("gliderstore: rename %s to %s: %w", s.name(from), s.name(to), err)
		}
	}
	if err := c.Rename(ctx, s.Path(from), s.Path(to)); err != nil {
		if errors.Is(err, glider.ErrNotFound) {
			return fmt.Errorf("gliderstore: rename %s: %w", s.name(from), objstore.ErrNotExist)
		}
		return fmt.Errorf("gliderstore: rename %s to %s: %w", s.name(from), s.name(to), err)
	}
	return nil
}

// List implements objstore.Store. Keys are listed in byte order; the page
// token is the last key of the previous page.
func (s *Store) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "\\\x00") {
		return objstore.ListPage{}, fmt.Errorf("gliderstore: list %s: invalid prefix %q", s, prefix)
	}
	if limit <= 0 {
		limit = objstore.DefaultPageSize
	}
	c, err := s.dial(ctx)
	if err != nil {
		return objstore.ListPage{}, err
	}
	defer c.Close()
	// Walk the deepest directory the prefix names completely.
	dirKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i]
	}
	start := "/" + s.cfg.Root
	if dirKey != "" {
		start = s.Path(dirKey)
	}
	start = path.Clean(start)
	base := path.Clean("/"+s.cfg.Root) + "/"
	if base == "//" {
		base = "/"
	}
	var objs []objstore.ObjectInfo
	var walk func(dir string) error
	walk = func(dir string) error {
		kids, err := c.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, k := range kids {
			key := strings.TrimPrefix(k.Path, base)
			switch k.Kind {
			case glider.KindDir:
				if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
					if err := walk(k.Path); err != nil {
						return err
					}
				}
			case glider.KindFile:
				if strings.HasPrefix(key, prefix) && key > token {
					objs = append(objs, objstore.ObjectInfo{Key: key, Size: k.Size, ModTime: k.ModTime})
				}
			}
		}
		return nil
	}
	if err := walk(start); err != nil {
		if missing(err) {
			return objstore.ListPage{}, nil
		}
		return objstore.ListPage{}, fmt.Errorf("gliderstore: list %s/%s: %w", s, prefix, err)
	}
	slices.SortFunc(objs, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	page := objstore.ListPage{Objects: objs}
	if len(objs) > limit {
		page.Objects = objs[:limit:limit]
		page.Next = objs[limit-1].Key
	}
	return page, nil
}
