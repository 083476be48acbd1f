//go:build unix

package objstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/backends/objstore"
)

// A named pipe among the objects: Get and Copy return at once with an
// error saying what the file is, instead of blocking in open(2) until a
// writer appears (where no signal reaches them).
func TestFSNamedPipeDoesNotBlock(t *testing.T) {
	st := newFS(t)
	if err := syscall.Mkfifo(filepath.Join(st.Root(), "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	ops := map[string]func(ctx context.Context) error{
		"get": func(ctx context.Context) error {
			rc, err := st.Get(ctx, "pipe", 0, -1)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"copy": func(ctx context.Context) error { return st.Copy(ctx, "pipe", "copied") },
	}
	for name, op := range ops {
		done := make(chan error, 1)
		go func() { done <- op(t.Context()) }() // blocks for good without the fix; the test binary's deadline ends it
		select {
		case err := <-done:
			if !errors.Is(err, objstore.ErrNotExist) || !strings.Contains(err.Error(), "named pipe (FIFO), not a regular file") {
				t.Errorf("%s of a named pipe = %v, want ErrNotExist saying it is a named pipe", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s of a named pipe still blocked after 20 s", name)
		}
	}
	if _, err := st.Stat(t.Context(), "pipe"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("Stat of a named pipe = %v, want ErrNotExist", err)
	}
}
