//go:build unix

package gale_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Inputs that are not regular files are refused by name before any task
// runs, and promptly: a named pipe (whose open would block for good), a
// device that reads forever, a socket, one inside an input directory, and
// a /proc file (which stats as empty but is not).
func TestSpecialFileInputsAreRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	inDir := filepath.Join(dir, "in")
	if err := os.MkdirAll(inDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(inDir, "a.txt"), []byte("some words\n"))
	nested := filepath.Join(inDir, "pipe")
	if err := syscall.Mkfifo(nested, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, input, want string
	}{
		{"fifo", fifo, fifo + " is a named pipe (FIFO), not a regular file"},
		{"fifo in a directory", inDir, nested + " is a named pipe (FIFO), not a regular file"},
		{"dev zero", "/dev/zero", "/dev/zero is a character device, not a regular file"},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases, struct{ name, input, want string }{"proc", "/proc/self/status",
			"/proc/self/status is on the kernel's proc pseudo-filesystem"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			type result struct {
				err error
				n   int64
			}
			done := make(chan result, 1)
			go func() {
				err, n := runCount(t, []string{tc.input}, out)
				done <- result{err, n}
			}()
			select {
			case r := <-done:
				if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
					t.Fatalf("err = %v; want %q", r.err, tc.want)
				}
				if r.n != 0 {
					t.Errorf("%d tasks ran", r.n)
				}
				mustNotExist(t, out)
			case <-time.After(30 * time.Second):
				t.Fatalf("the job over %s did not end within 30 s", tc.input)
			}
		})
	}
}
