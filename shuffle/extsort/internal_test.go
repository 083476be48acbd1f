package extsort

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func key10(rec []byte) []byte { return rec[:10] }

// TestSpillENOSPC writes runs to /dev/full, which fails every write with
// ENOSPC, and checks the error names the run file and the reason and that no
// file is left behind.
func TestSpillENOSPC(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	dir := t.TempDir()
	s, err := New(Config{MemoryBytes: 4 << 10, TempDir: dir}, key10)
	if err != nil {
		t.Fatal(err)
	}
	s.openRun = func(path string) (io.WriteCloser, error) {
		// Create the real run file (so removal is exercised), write to
		// /dev/full.
		f, err := createRunFile(path)
		if err != nil {
			return nil, err
		}
		f.Close()
		return os.OpenFile("/dev/full", os.O_WRONLY, 0)
	}
	var addErr error
	for i := 0; i < 1000 && addErr == nil; i++ {
		addErr = s.Add([]byte(fmt.Sprintf("%010d%0300d", (i*7)%1000, i)))
	}
	if !errors.Is(addErr, syscall.ENOSPC) {
		t.Fatalf("Add error = %v, want ENOSPC", addErr)
	}
	var se *SpillError
	if !errors.As(addErr, &se) || !strings.HasPrefix(se.Path, dir) || !strings.Contains(se.Path, "run-") {
		t.Fatalf("error %v does not carry the run file path", addErr)
	}
	if msg := addErr.Error(); !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, se.Path) {
		t.Errorf("message %q lacks path or reason", msg)
	}
	if _, err := os.Stat(se.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed run file %s still exists (%v)", se.Path, err)
	}
	if err := s.Sort(context.Background(), func([]byte) error { return nil }); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Sort after failure = %v, want the sticky ENOSPC", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d entries left in %s after Close", len(ents), dir)
	}
}

// TestCorruptRunDetected truncates a spill file between Add and Sort.
func TestCorruptRunDetected(t *testing.T) {
	for _, cut := range []int64{-1, -50, 0} {
		dir := t.TempDir()
		s, err := New(Config{MemoryBytes: 4 << 10, TempDir: dir}, key10)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 500 {
			if err := s.Add([]byte(fmt.Sprintf("%010d%090d", (i*7)%500, i))); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.runs) < 2 {
			t.Fatalf("only %d runs", len(s.runs))
		}
		p := s.runs[0].path
		st, _ := os.Stat(p)
		size := st.Size() + cut
		if cut == 0 {
			size = st.Size() + 3 // trailing garbage
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{1, 'x', 'y'})
			f.Close()
		} else if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		err = s.Sort(context.Background(), func([]byte) error { return nil })
		if !errors.Is(err, ErrCorruptRun) || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Errorf("cut %d: Sort = %v, want ErrCorruptRun naming %s", cut, err, p)
		}
		s.Close()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%d entries left after Close", len(ents))
		}
	}
}
