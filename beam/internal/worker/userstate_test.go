package worker

import (
	"encoding/binary"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
)

func readAll(t *testing.T, r io.ReadCloser, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, w io.Writer, p string) {
	t.Helper()
	if _, err := w.Write([]byte(p)); err != nil {
		t.Fatal(err)
	}
}

// TestUserStateBags: bags append and clear per (transform, state, key,
// window); past the limit the largest bags spill to files and read back
// the same; reset drops everything and removes the files.
func TestUserStateBags(t *testing.T) {
	files := &iterableFiles{parent: t.TempDir()}
	defer files.remove()
	u := newUserState(files, 1000)
	id := exec.StreamID{PtransformID: "p"}
	k := func(key string) string { return stateKey(id, "s", []byte(key), []byte("w")) }
	want := map[string]string{}
	for i := range 400 {
		key := string(rune('a' + i%4))
		v := strings.Repeat(key, 1+i%7)
		write(t, u.bagAppender(k(key)), v)
		want[key] += v
	}
	write(t, u.bagClearer(k("d")), "")
	delete(want, "d")
	write(t, u.bagAppender(k("d")), "fresh")
	want["d"] = "fresh"
	if u.spilledBags == 0 || u.bytes() > 1000 {
		t.Fatalf("spilled %d bags, %d bytes held; want some spilled and at most the limit", u.spilledBags, u.bytes())
	}
	for key, v := range want {
		r, err := u.bagReader(k(key))
		if got := readAll(t, r, err); got != v {
			t.Errorf("bag %s: %d bytes, want %d", key, len(got), len(v))
		}
	}
	r, err := u.bagReader(stateKey(id, "s", []byte("a"), []byte("other window")))
	if got := readAll(t, r, err); got != "" {
		t.Errorf("another window's bag holds %q", got)
	}
	if err := u.reset(); err != nil {
		t.Fatal(err)
	}
	r, err = u.bagReader(k("a"))
	if got := readAll(t, r, err); got != "" {
		t.Errorf("after reset: %q", got)
	}
	if files.dir != "" {
		if names, _ := os.ReadDir(files.dir); len(names) != 0 {
			t.Errorf("reset left %d spill files", len(names))
		}
	}
}

// TestUserStateMapsAndLists: map keys in insertion order, per-key and
// whole-map clears; ordered lists sorted by key, stable, range reads and
// clears.
func TestUserStateMapsAndLists(t *testing.T) {
	u := newUserState(&iterableFiles{parent: t.TempDir()}, 1<<20)
	id := exec.StreamID{PtransformID: "p"}
	k := stateKey(id, "m", []byte("key"), []byte("w"))
	write(t, u.mapAppender(k, []byte("x")), "1")
	write(t, u.mapAppender(k, []byte("y")), "2")
	write(t, u.mapAppender(k, []byte("x")), "3")
	if got := readAll(t, u.mapKeys(k), nil); got != "xy" {
		t.Errorf("keys %q, want xy", got)
	}
	r, err := u.mapReader(k, []byte("x"))
	if got := readAll(t, r, err); got != "13" {
		t.Errorf("x = %q, want 13", got)
	}
	write(t, u.mapClearer(k, []byte("x")), "")
	if got := readAll(t, u.mapKeys(k), nil); got != "y" {
		t.Errorf("keys after clearing x: %q", got)
	}
	write(t, u.mapClearer(k, nil), "")
	if got := readAll(t, u.mapKeys(k), nil); got != "" {
		t.Errorf("keys after clearing all: %q", got)
	}

	l := stateKey(id, "l", []byte("key"), []byte("w"))
	entry := func(sk int64, v string) string {
		return string(binary.AppendUvarint(nil, uint64(sk))) + v
	}
	for _, e := range []struct {
		k int64
		v string
	}{{5, "e"}, {-3, "a"}, {5, "f"}, {0, "c"}, {9, "z"}} {
		write(t, u.listAppender(l), entry(e.k, e.v))
	}
	all := readAll(t, u.listReader(l, -1<<63, 1<<63-1), nil)
	if want := entry(-3, "a") + entry(0, "c") + entry(5, "e") + entry(5, "f") + entry(9, "z"); all != want {
		t.Errorf("list = %q, want %q", all, want)
	}
	if got, want := readAll(t, u.listReader(l, 0, 9), nil), entry(0, "c")+entry(5, "e")+entry(5, "f"); got != want {
		t.Errorf("range [0, 9) = %q, want %q", got, want)
	}
	write(t, u.listClearer(l, 0, 6), "")
	if got, want := readAll(t, u.listReader(l, -1<<63, 1<<63-1), nil), entry(-3, "a")+entry(9, "z"); got != want {
		t.Errorf("after clearing [0, 6): %q, want %q", got, want)
	}
	if _, err := u.listAppender(l).Write(nil); err == nil {
		t.Error("an empty ordered list entry was accepted")
	}
}
