package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownScheme is returned (wrapped, with the URL and the known schemes)
// by Resolver.Open for a URL whose scheme has no registered Opener.
var ErrUnknownScheme = errors.New("objstore: unknown storage URL scheme")

// Opener opens the store a URL names, rooted at the URL's path: for
// s3://bucket/prefix the store's keys are relative to prefix. It receives
// the parsed URL with its scheme in lower case.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

// Resolver maps storage URLs to stores by scheme. It is safe for concurrent
// use; register schemes before opening URLs that use them.
type Resolver struct {
	mu      sync.RWMutex
	openers map[string]Opener
}

// NewResolver returns a resolver that knows the "file" scheme and bare
// local paths: "/tmp/x", "./x", "x" and "file:///tmp/x" all open a
// filesystem store (NewFS) on that directory.
func NewResolver() *Resolver {
	r := &Resolver{openers: make(map[string]Opener)}
	r.Register("file", openFile)
	return r
}

// Register makes scheme (e.g. "s3", lower case letters, digits, "+", "-",
// ".") open through o. Registering a scheme twice, an invalid scheme or a
// nil Opener is a programmer error and panics, as in database/sql.Register.
func (r *Resolver) Register(scheme string, o Opener) {
	if o == nil {
		panic("objstore: Register of a nil Opener for scheme " + scheme)
	}
	if !validScheme(scheme) {
		panic(fmt.Sprintf("objstore: Register of invalid scheme %q (want lower case, e.g. \"s3\")", scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[scheme]; dup {
		panic("objstore: Register called twice for scheme " + scheme)
	}
	r.openers[scheme] = o
}

// Schemes returns the registered schemes, sorted.
func (r *Resolver) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.openers))
	for k := range r.openers {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// Open returns the store rawURL names. A string without "://" is a local
// path. The error for an unregistered scheme wraps ErrUnknownScheme and
// lists the known ones.
func (r *Resolver) Open(ctx context.Context, rawURL string) (Store, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, errors.New("objstore: empty storage URL (want a directory or a URL such as s3://bucket/prefix)")
	}
	if !strings.Contains(rawURL, "://") {
		if scheme, _, ok := strings.Cut(rawURL, ":"); ok && len(scheme) > 1 && r.known(strings.ToLower(scheme)) {
			return nil, fmt.Errorf("objstore: open %q: malformed URL: write %s://...", rawURL, strings.ToLower(scheme))
		}
		// A bare path, which may contain characters a URL parser rejects
		// ("%", "?", a Windows drive "C:").
		st, err := NewFS(rawURL)
		if err != nil {
			return nil, fmt.Errorf("objstore: open %q: %w", rawURL, err)
		}
		return st, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", rawURL, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	r.mu.RLock()
	o := r.openers[u.Scheme]
	r.mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("%w %q in %q (known: %s)", ErrUnknownScheme, u.Scheme, rawURL, strings.Join(r.Schemes(), ", "))
	}
	st, err := o(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", rawURL, err)
	}
	return st, nil
}

func (r *Resolver) known(scheme string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.openers[scheme] != nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// openFile opens file:///abs/dir (or file://localhost/abs/dir).
func openFile(_ context.Context, u *url.URL) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file URL names host %q: only local files are supported (write file:///path)", u.Host)
	}
	existing := u.RawQuery == "existing=1"
	if u.RawQuery != "" && !existing || u.Fragment != "" {
		return nil, errors.New("file URL takes no query (but existing=1) or fragment")
	}
	if u.Path == "" {
		return nil, errors.New("file URL has no path (write file:///absolute/dir or a bare path)")
	}
	if existing {
		return OpenExistingFS(u.Path)
	}
	return NewFS(u.Path)
}
