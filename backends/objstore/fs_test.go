package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

func newFS(t *testing.T) *objstore.FS {
	t.Helper()
	st, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFSConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		st := newFS(t)
		t.Cleanup(func() { assertNoTemps(t, st.Root()) })
		return st
	})
}

// assertNoTemps fails if any temporary file is left under root.
func assertNoTemps(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		if strings.HasPrefix(d.Name(), objstore.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// files returns the regular files under root, relative, slash-separated.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestFSLayoutOnDisk(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	if err := st.Put(ctx, "a/b/c.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(st.Root(), "a", "b", "c.txt"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("file on disk = %q, %v; want hello", b, err)
	}
	fi, err := os.Stat(filepath.Join(st.Root(), "a", "b", "c.txt"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("file mode = %v, %v; want 0644", fi.Mode(), err)
	}
	// Files placed by hand are objects too.
	if err := os.WriteFile(filepath.Join(st.Root(), "a", "hand.txt"), []byte("by hand"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := st.Stat(ctx, "a/hand.txt")
	if err != nil || info.Size != 7 {
		t.Fatalf("Stat of a hand-placed file = %+v, %v", info, err)
	}
}

func TestFSListHidesTempFiles(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	if err := st.Put(ctx, "d/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// As if a writer were in the middle of a Put, or had crashed in one.
	for _, p := range []string{"d/" + objstore.TempPrefix + "123", objstore.TempPrefix + "9"} {
		if err := os.WriteFile(filepath.Join(st.Root(), filepath.FromSlash(p)), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	all, err := objstore.ListAll(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != "d/x" {
		t.Fatalf("ListAll = %v, want only d/x", all)
	}
	_, err = st.Stat(ctx, "d/"+objstore.TempPrefix+"123")
	if !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Stat of a temporary file = %v, want ErrInvalidKey", err)
	}
}

func TestFSFailedPutLeavesNoFile(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	r := io.MultiReader(strings.NewReader("some bytes"), errReader{})
	if err := st.Put(ctx, "x/y/z", r); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if got := files(t, st.Root()); len(got) != 0 {
		t.Fatalf("files after a failed Put: %v, want none", got)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	err := st.Put(ctx, "x/y/z", strings.NewReader("data"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	if got := files(t, st.Root()); len(got) != 0 {
		t.Fatalf("files after a cancelled Put: %v, want none", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestFSDeletePrunesEmptyDirs(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	for _, k := range []string{"a/b/c/1", "a/b/2", "a/3"} {
		if err := st.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, "a/b/c/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(st.Root(), "a", "b", "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty directory a/b/c kept after Delete: %v", err)
	}
	if err := objstore.Move(ctx, st, "a/b/2", "z/2"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "a/3"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(st.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "z" {
		t.Fatalf("root holds %v, want only z", ents)
	}
	// The root itself stays.
	if err := st.Delete(ctx, "z/2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Root()); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestFSKeyConflict(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	if err := st.Put(ctx, "a", strings.NewReader("file")); err != nil {
		t.Fatal(err)
	}
	err := st.Put(ctx, "a/b", strings.NewReader("below a file"))
	if err == nil || !strings.Contains(err.Error(), "a/b") {
		t.Fatalf("Put below an object = %v, want an error naming a/b", err)
	}
	_, err = st.Stat(ctx, "a/b")
	if !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("Stat below an object = %v, want ErrNotExist", err)
	}
}

func TestFSListCancelled(t *testing.T) {
	st := newFS(t)
	if err := st.Put(t.Context(), "a/b", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.List(ctx, "", "", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestFSInvalidPrefix(t *testing.T) {
	st := newFS(t)
	for _, p := range []string{"/abs", "../x", "a/../", `a\b`, "a//"} {
		if _, err := st.List(t.Context(), p, "", 0); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", p)) {
			t.Errorf("List(%q) = %v, want an error naming the prefix", p, err)
		}
	}
}

func TestNewFSErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewFS(f); err == nil || !strings.Contains(err.Error(), f) {
		t.Fatalf("NewFS on a file = %v, want an error naming it", err)
	}
	if _, err := objstore.NewFS(""); err == nil {
		t.Fatal("NewFS(\"\") succeeded")
	}
	st, err := objstore.NewFS(filepath.Join(t.TempDir(), "new", "dir"))
	if err != nil {
		t.Fatalf("NewFS on a missing directory: %v", err)
	}
	if fi, err := os.Stat(st.Root()); err != nil || !fi.IsDir() {
		t.Fatalf("NewFS did not create its root: %v", err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "a.b/c-d_e", ".hidden", "a/..b", "...", "ü/ç", "sp ace"} {
		if err := objstore.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/../b", "..", ".", "a\\b", "a//b", "a/", "a\x00b", objstore.TempPrefix + "1"} {
		err := objstore.ValidateKey(k)
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func BenchmarkFSPut8MiB(b *testing.B) {
	st, err := objstore.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := objstoretest.Data(1, 8<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := st.Put(b.Context(), "bench/obj", strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFSPutSmall(b *testing.B) {
	st, err := objstore.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := st.Put(b.Context(), "bench/small", strings.NewReader("tiny")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFSConcurrentPutDelete races writers against deletes that prune the
// very directories the writers need.
func TestFSConcurrentPutDelete(t *testing.T) {
	st := newFS(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			for i := range 150 {
				key := fmt.Sprintf("d/e/w%d-%d", w, i)
				if err := st.Put(ctx, key, strings.NewReader(key)); err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					if err := st.Rename(ctx, key, "r/s/"+key); err != nil {
						errs <- err
						return
					}
					key = "r/s/" + key
				}
				if err := st.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := files(t, st.Root()); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	if ents, _ := os.ReadDir(st.Root()); len(ents) != 0 {
		t.Fatalf("directories left: %v", ents)
	}
}

func BenchmarkFSListAll10k(b *testing.B) {
	st, err := objstore.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		p := filepath.Join(st.Root(), fmt.Sprintf("d%02d", i%10), fmt.Sprintf("part-%05d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		all, err := objstore.ListAll(b.Context(), st, "")
		if err != nil || len(all) != 10000 {
			b.Fatal(len(all), err)
		}
	}
}

// TestOpenExistingFSNeverRecreatesItsRoot: a store opened on an existing
// directory (by path or by ExistingDirURL) writes below it, and once the
// directory is removed its writes fail instead of bringing it back.
func TestOpenExistingFSNeverRecreatesItsRoot(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "stage")
	if _, err := objstore.OpenExistingFS(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing directory: %v", err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := objstore.NewResolver().Open(ctx, objstore.ExistingDirURL(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "a/b/c", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a/b/c")); err != nil || string(b) != "x" {
		t.Fatalf("read back: %q %v", b, err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	err = st.Put(ctx, "a/b/d", strings.NewReader("y"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), root) {
		t.Fatalf("put after the root was removed: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the removed root was re-created: %v", err)
	}
	if _, err := objstore.NewResolver().Open(ctx, "file://"+root+"?other=1"); err == nil {
		t.Fatal("a file URL with an unknown query was accepted")
	}
}
