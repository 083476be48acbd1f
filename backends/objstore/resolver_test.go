package objstore_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
)

func TestResolverLocalForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := objstore.NewResolver()
	ctx := t.Context()
	for raw, want := range map[string]string{
		filepath.Join(dir, "abs"):           filepath.Join(dir, "abs"),
		"./dot":                             filepath.Join(dir, "dot"),
		"bare":                              filepath.Join(dir, "bare"),
		"file://" + filepath.Join(dir, "u"): filepath.Join(dir, "u"),
		"FILE://localhost" + filepath.Join(dir, "h"): filepath.Join(dir, "h"),
		"with space/and%percent":                     filepath.Join(dir, "with space", "and%percent"),
	} {
		st, err := r.Open(ctx, raw)
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		fsStore, ok := st.(*objstore.FS)
		if !ok {
			t.Fatalf("Open(%q) = %T, want *objstore.FS", raw, st)
		}
		if fsStore.Root() != want {
			t.Fatalf("Open(%q) rooted at %q, want %q", raw, fsStore.Root(), want)
		}
		if err := st.Put(ctx, "k", strings.NewReader("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(want, "k")); err != nil {
			t.Fatalf("object of Open(%q) not at %s: %v", raw, want, err)
		}
		if u, err := url.Parse(st.String()); err != nil || u.Scheme != "file" || u.Path != filepath.ToSlash(want) {
			t.Fatalf("String() = %q, want a file URL of %s", st.String(), want)
		}
	}
}

func TestResolverErrors(t *testing.T) {
	r := objstore.NewResolver()
	ctx := t.Context()
	_, err := r.Open(ctx, "gs://bucket/x")
	if !errors.Is(err, objstore.ErrUnknownScheme) || !strings.Contains(err.Error(), "gs://bucket/x") || !strings.Contains(err.Error(), "file") {
		t.Fatalf("Open of an unknown scheme = %v, want ErrUnknownScheme naming the URL and the known schemes", err)
	}
	for _, raw := range []string{"", "file://otherhost/x", "file://", "file:///x?y=1"} {
		if _, err := r.Open(ctx, raw); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", raw)
		}
	}
	// A registered scheme written without "//" is a mistake, not a directory.
	r.Register("mem", func(context.Context, *url.URL) (objstore.Store, error) { return nil, errors.New("unused") })
	if _, err := r.Open(ctx, "mem:bucket"); err == nil || !strings.Contains(err.Error(), "mem://") {
		t.Fatalf(`Open("mem:bucket") = %v, want a hint to write mem://`, err)
	}
}

func TestResolverRegister(t *testing.T) {
	r := objstore.NewResolver()
	var got *url.URL
	dir := t.TempDir()
	r.Register("mem", func(_ context.Context, u *url.URL) (objstore.Store, error) {
		got = u
		return objstore.NewFS(dir)
	})
	if _, err := r.Open(t.Context(), "MEM://bucket/some/prefix"); err != nil {
		t.Fatal(err)
	}
	if got.Scheme != "mem" || got.Host != "bucket" || got.Path != "/some/prefix" {
		t.Fatalf("opener got %#v", got)
	}
	if s := r.Schemes(); strings.Join(s, ",") != "file,mem" {
		t.Fatalf("Schemes() = %v", s)
	}
	for name, fn := range map[string]func(){
		"duplicate": func() { r.Register("mem", func(context.Context, *url.URL) (objstore.Store, error) { return nil, nil }) },
		"nil":       func() { r.Register("x", nil) },
		"invalid":   func() { r.Register("S3", func(context.Context, *url.URL) (objstore.Store, error) { return nil, nil }) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register (%s) did not panic", name)
				}
			}()
			fn()
		}()
	}
}
