package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
)

// MiB is 1<<20 bytes.
const MiB = 1 << 20

// Run runs the conformance suite. newStore returns a new, empty store for
// one subtest; it registers its own cleanup with t. The suite does not call
// t.Parallel, so newStore may use t.Setenv.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, objstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Ranges", testRanges},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListPrefixes", testListPrefixes},
		{"FailedPut", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"ConcurrentPuts", testConcurrentPuts},
		{"InvalidKeys", testInvalidKeys},
		{"Move", testMove},
		{"Copy", testCopy},
		{"Rename", testRename},
		{"String", testString},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// opaque hides every method but Read, so stores take their streaming path
// rather than seeking or sizing the input.
type opaque struct{ r io.Reader }

func (o opaque) Read(p []byte) (int, error) { return o.r.Read(p) }

func put(t *testing.T, s objstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, opaque{bytes.NewReader(b)}); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
}

func get(t *testing.T, s objstore.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): read: %v", key, off, n, err)
	}
	return b
}

func equal(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}

func wantNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("%s: got error %v, want one wrapping objstore.ErrNotExist", what, err)
	}
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	sizes := []int{0, 1, 5 * MiB, 5*MiB + 1, 17 * MiB}
	for i, n := range sizes {
		key := fmt.Sprintf("round/size-%d", n)
		want := Data(uint64(i), n)
		if i%2 == 0 {
			put(t, s, key, want)
		} else if err := s.Put(t.Context(), key, bytes.NewReader(want)); err != nil {
			// A seekable reader may take another path.
			t.Fatalf("Put(%q, bytes.Reader of %d bytes): %v", key, n, err)
		}
		equal(t, "Get "+key, get(t, s, key, 0, -1), want)
		info, err := s.Stat(t.Context(), key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		if info.Key != key || info.Size != int64(n) || info.ModTime.IsZero() {
			t.Fatalf("Stat(%q) = %+v, want key %q, size %d and a modification time", key, info, key, n)
		}
	}
	all, err := objstore.ListAll(t.Context(), s, "round/")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(sizes) {
		t.Fatalf("ListAll(round/) = %d objects, want %d", len(all), len(sizes))
	}
	for _, o := range all {
		var n int64
		fmt.Sscanf(o.Key, "round/size-%d", &n)
		if o.Size != n {
			t.Errorf("listed %q with size %d, want %d", o.Key, o.Size, n)
		}
		// Jobs compare an input's ETag from List (when planned) with
		// Stat's (before reading and committing): they must agree.
		if info, err := s.Stat(t.Context(), o.Key); err != nil || info.ETag != o.ETag {
			t.Errorf("Stat(%q) ETag %q (%v), List's %q: the two must agree", o.Key, info.ETag, err, o.ETag)
		}
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("first, longer content"))
	before, err := s.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", []byte("second"))
	equal(t, "Get after overwrite", get(t, s, "k", 0, -1), []byte("second"))
	info, err := s.Stat(t.Context(), "k")
	if err != nil || info.Size != 6 {
		t.Fatalf("Stat after overwrite = %+v, %v; want size 6", info, err)
	}
	if before.ETag != "" && info.ETag == before.ETag {
		t.Errorf("ETag %q unchanged after the object was rewritten", info.ETag)
	}
}

func testRanges(t *testing.T, s objstore.Store) {
	const size = 1000
	data := Data(7, size)
	put(t, s, "r/obj", data)
	put(t, s, "r/empty", nil)
	cases := []struct {
		off, n int64
		lo, hi int // expected data[lo:hi]
	}{
		{0, 10, 0, 10},
		{0, size, 0, size},
		{500, 100, 500, 600},
		{990, 10, 990, 1000},
		{990, 100, 990, 1000}, // truncated at the end
		{999, 1, 999, 1000},
		{size, 10, size, size}, // at the end
		{size + 500, 10, size, size},
		{10, -1, 10, size},
		{0, -1, 0, size},
		{size, -1, size, size},
		{2 * size, -1, size, size},
		{0, 0, 0, 0},
		{500, 0, 500, 500},
		{1, 1 << 62, 1, size},
	}
	for _, c := range cases {
		got := get(t, s, "r/obj", c.off, c.n)
		equal(t, fmt.Sprintf("Get(off=%d, n=%d)", c.off, c.n), got, data[c.lo:c.hi])
	}
	for _, c := range [][2]int64{{0, -1}, {0, 10}, {5, -1}, {5, 5}} {
		if got := get(t, s, "r/empty", c[0], c[1]); len(got) != 0 {
			t.Fatalf("Get(empty, %d, %d) = %d bytes, want 0", c[0], c[1], len(got))
		}
	}
	if rc, err := s.Get(t.Context(), "r/obj", -1, 10); err == nil {
		rc.Close()
		t.Fatal("Get with a negative offset succeeded, want an error")
	}
}

func testMissing(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	_, err := s.Stat(ctx, "no/such/key")
	wantNotExist(t, "Stat of a missing key", err)
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {100, 10}, {0, 0}} {
		rc, err := s.Get(ctx, "no/such/key", r[0], r[1])
		if err == nil {
			rc.Close()
		}
		wantNotExist(t, fmt.Sprintf("Get(missing, %d, %d)", r[0], r[1]), err)
	}
	// A "directory" of other keys is no object.
	put(t, s, "dir/child", []byte("x"))
	_, err = s.Stat(ctx, "dir")
	wantNotExist(t, "Stat of a prefix that is not an object", err)
	rc, err := s.Get(ctx, "dir", 0, -1)
	if err == nil {
		rc.Close()
	}
	wantNotExist(t, "Get of a prefix that is not an object", err)
	page, err := s.List(ctx, "nothing/", "", 0)
	if err != nil || len(page.Objects) != 0 || page.Next != "" {
		t.Fatalf("List of an empty prefix = %+v, %v; want an empty last page", page, err)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	put(t, s, "d/a", []byte("a"))
	put(t, s, "d/sub/b", []byte("b"))
	if err := s.Delete(ctx, "d/sub/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Stat(ctx, "d/sub/b")
	wantNotExist(t, "Stat after Delete", err)
	if err := s.Delete(ctx, "d/sub/b"); err != nil {
		t.Fatalf("second Delete of the same key: %v, want nil", err)
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of a key that never existed: %v, want nil", err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatalf("Delete of a prefix that is not an object: %v, want nil", err)
	}
	equal(t, "sibling after Delete", get(t, s, "d/a", 0, -1), []byte("a"))
	all, err := objstore.ListAll(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != "d/a" {
		t.Fatalf("after deletes, store holds %v, want only d/a", keysOf(all))
	}
	// A deleted "directory" can be written again.
	put(t, s, "d/sub/c", []byte("c"))
	equal(t, "Get after re-creating a deleted directory", get(t, s, "d/sub/c", 0, -1), []byte("c"))
}

func keysOf(objs []objstore.ObjectInfo) []string {
	k := make([]string, len(objs))
	for i, o := range objs {
		k[i] = o.Key
	}
	return k
}

// trickyKeys sort differently from a naive directory walk ("a.txt" < "a/b"
// because '.' < '/') or need escaping in URLs.
var trickyKeys = []string{
	"t/a.txt", "t/a/b.x", "t/a/b/c", "t/a/b0", "t/a-b", "t/a0", "t/a/b/c.d/e",
	"t/sp ace/x y", "t/plus+sign", "t/ünï/ç", "t/~tilde", "t/pct%2Fliteral",
	"t/.hidden", "t/Upper", "t/z", "t/amp&er=sand",
}

// putAll writes each key with its own name as content, 8 at a time.
func putAll(t *testing.T, s objstore.Store, keys []string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		work = make(chan string)
	)
	for range 8 {
		wg.Go(func() {
			for k := range work {
				if err := s.Put(t.Context(), k, strings.NewReader(k)); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("Put(%q): %w", k, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// listPages lists prefix page by page and checks each page's size and the
// sizes of the objects.
func listPages(t *testing.T, s objstore.Store, prefix string, limit, maxPages int) []string {
	t.Helper()
	var keys []string
	token := ""
	for pages := 1; ; pages++ {
		if pages > maxPages {
			t.Fatalf("List(%q, limit %d): more than %d pages", prefix, limit, maxPages)
		}
		page, err := s.List(t.Context(), prefix, token, limit)
		if err != nil {
			t.Fatalf("List(%q, token %q, limit %d): %v", prefix, token, limit, err)
		}
		if limit > 0 && len(page.Objects) > limit {
			t.Fatalf("List(%q, limit %d) returned %d objects", prefix, limit, len(page.Objects))
		}
		for _, o := range page.Objects {
			if o.Size != int64(len(o.Key)) {
				t.Fatalf("List: %q has size %d, want %d", o.Key, o.Size, len(o.Key))
			}
			keys = append(keys, o.Key)
		}
		if page.Next == "" {
			return keys
		}
		token = page.Next
	}
}

func checkKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: %d keys, want %d; first difference at %d: got %q, want %q", what, len(got), len(want), i, got[i], want[i])
		}
	}
	t.Fatalf("%s: got %d keys, want %d (got %q...)", what, len(got), len(want), got[:min(len(got), 5)])
}

func testList(t *testing.T, s objstore.Store) {
	var keys []string
	for i := range 1200 {
		keys = append(keys, fmt.Sprintf("many/%02d/part-%04d", i%12, i))
	}
	keys = append(keys, trickyKeys...)
	putAll(t, s, keys)
	want := slices.Clone(keys)
	slices.Sort(want)

	checkKeys(t, "List all, limit 100", listPages(t, s, "", 100, len(want)/100+2), want)
	checkKeys(t, "List all, default limit", listPages(t, s, "", 0, len(want)/2), want)
	all, err := objstore.ListAll(t.Context(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "ListAll", keysOf(all), want)
	tricky := slices.Clone(trickyKeys)
	slices.Sort(tricky)
	checkKeys(t, "List t/, limit 1", listPages(t, s, "t/", 1, len(tricky)+2), tricky)
	checkKeys(t, "List t/, limit 3", listPages(t, s, "t/", 3, len(tricky)), tricky)
}

func testListPrefixes(t *testing.T, s objstore.Store) {
	var keys []string
	for i := range 60 {
		keys = append(keys, fmt.Sprintf("p/%d/%02d", i%3, i))
	}
	keys = append(keys, trickyKeys...)
	putAll(t, s, keys)
	slices.Sort(keys)
	for _, prefix := range []string{
		"", "t/", "t/a", "t/a/", "t/a/b", "t/a/b/", "t/a/b/c", "t/a/b/c.", "t/ü", "t/sp ace/",
		"p/", "p/1", "p/1/", "p/1/4", "p/1/40", "p/10", "nope/", "nope", "t/z/",
	} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		checkKeys(t, fmt.Sprintf("List(%q)", prefix), listPages(t, s, prefix, 7, len(want)/7+2), want)
	}
}

// failingReader returns n bytes of data, then an error.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

var errReader = errors.New("objstoretest: reader failed on purpose")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func testFailedPut(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	for _, n := range []int{0, 100, 12 * MiB} {
		key := fmt.Sprintf("fail/after-%d", n)
		r := &failingReader{r: bytes.NewReader(Data(1, 20*MiB)), n: n, err: errReader}
		if err := s.Put(ctx, key, r); err == nil {
			t.Fatalf("Put(%q) from a reader failing after %d bytes succeeded", key, n)
		}
		_, err := s.Stat(ctx, key)
		wantNotExist(t, "Stat after a failed Put", err)
	}
	// A failed overwrite leaves the old object whole.
	old := Data(2, 3000)
	put(t, s, "fail/existing", old)
	r := &failingReader{r: bytes.NewReader(Data(3, 7*MiB)), n: 6 * MiB, err: errReader}
	if err := s.Put(ctx, "fail/existing", r); err == nil {
		t.Fatal("overwrite from a failing reader succeeded")
	}
	equal(t, "object after a failed overwrite", get(t, s, "fail/existing", 0, -1), old)
	all, err := objstore.ListAll(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "store after failed Puts", keysOf(all), []string{"fail/existing"})
}

// cancellingReader cancels a context after n bytes and keeps supplying data.
type cancellingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func testCancelledPut(t *testing.T, s objstore.Store) {
	for _, n := range []int{0, 1000, 9 * MiB} {
		key := fmt.Sprintf("cancel/after-%d", n)
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: bytes.NewReader(Data(4, 20*MiB)), n: n, cancel: cancel}
		err := s.Put(ctx, key, r)
		cancel()
		if err == nil {
			t.Fatalf("Put(%q) with its context cancelled after %d bytes succeeded", key, n)
		}
		_, err = s.Stat(t.Context(), key)
		wantNotExist(t, "Stat after a cancelled Put", err)
	}
	all, err := objstore.ListAll(t.Context(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "store after cancelled Puts", keysOf(all), nil)
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	const writers = 6
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = Data(uint64(100+i), 256<<10)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			for range 3 {
				if err := s.Put(t.Context(), "same/key", opaque{bytes.NewReader(contents[i])}); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := get(t, s, "same/key", 0, -1)
	for _, c := range contents {
		if bytes.Equal(got, c) {
			return
		}
	}
	t.Fatalf("after concurrent Puts the object (%d bytes) is none of the written objects", len(got))
}

var invalidKeys = []string{
	"", "/abs", "a/../b", "..", "../up", "a/..", `a\b`, "a//b", "a/", "./a", "a/./b",
	"a/" + objstore.TempPrefix + "x",
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	for _, key := range invalidKeys {
		err := s.Put(ctx, key, strings.NewReader("x"))
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want an error wrapping objstore.ErrInvalidKey", key, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
			t.Errorf("Put(%q) error %q does not name the key", key, err)
		}
	}
	put(t, s, "valid", []byte("v"))
	for _, key := range invalidKeys[1:5] {
		if err := objstore.Move(ctx, s, "valid", key); err == nil {
			t.Errorf("Move to invalid key %q succeeded", key)
		}
	}
	all, err := objstore.ListAll(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "store after invalid writes", keysOf(all), []string{"valid"})
}

func testMove(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	data := Data(5, 6*MiB)
	put(t, s, "m/src", data)
	if err := objstore.Move(ctx, s, "m/src", "m/deep/new/dst"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	equal(t, "moved object", get(t, s, "m/deep/new/dst", 0, -1), data)
	_, err := s.Stat(ctx, "m/src")
	wantNotExist(t, "Stat of Move's source", err)
	wantNotExist(t, "Move of a missing key", objstore.Move(ctx, s, "m/src", "m/other"))
	// Move replaces an existing target.
	put(t, s, "m/a", []byte("a"))
	put(t, s, "m/b", []byte("b"))
	if err := objstore.Move(ctx, s, "m/a", "m/b"); err != nil {
		t.Fatalf("Move onto an existing key: %v", err)
	}
	equal(t, "Move onto an existing key", get(t, s, "m/b", 0, -1), []byte("a"))
	all, err := objstore.ListAll(ctx, s, "m/")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "store after moves", keysOf(all), []string{"m/b", "m/deep/new/dst"})
}

func testCopy(t *testing.T, s objstore.Store) {
	c, ok := s.(objstore.Copier)
	if !ok {
		t.Skipf("%s does not implement objstore.Copier", s)
	}
	ctx := t.Context()
	data := Data(6, 100_000)
	put(t, s, "c/src", data)
	if err := c.Copy(ctx, "c/src", "c/x/dst"); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	equal(t, "copy", get(t, s, "c/x/dst", 0, -1), data)
	equal(t, "copy's source", get(t, s, "c/src", 0, -1), data)
	wantNotExist(t, "Copy of a missing key", c.Copy(ctx, "c/missing", "c/y"))
	if err := c.Copy(ctx, "c/src", "bad//key"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Copy to an invalid key = %v, want objstore.ErrInvalidKey", err)
	}
	_, err := s.Stat(ctx, "c/y")
	wantNotExist(t, "target of a failed Copy", err)
}

func testRename(t *testing.T, s objstore.Store) {
	r, ok := s.(objstore.Renamer)
	if !ok {
		t.Skipf("%s does not implement objstore.Renamer", s)
	}
	ctx := t.Context()
	put(t, s, "rn/a", []byte("a"))
	put(t, s, "rn/b", []byte("b"))
	if err := r.Rename(ctx, "rn/a", "rn/b"); err != nil {
		t.Fatalf("Rename onto an existing key: %v", err)
	}
	equal(t, "renamed", get(t, s, "rn/b", 0, -1), []byte("a"))
	wantNotExist(t, "Rename of a missing key", r.Rename(ctx, "rn/a", "rn/c"))
	put(t, s, "rn/dir/x", []byte("x"))
	wantNotExist(t, "Rename of a prefix that is not an object", r.Rename(ctx, "rn/dir", "rn/d2"))
	if err := r.Rename(ctx, "rn/b", "rn/new/dir/c"); err != nil {
		t.Fatalf("Rename into a new directory: %v", err)
	}
	all, err := objstore.ListAll(ctx, s, "rn/")
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "store after renames", keysOf(all), []string{"rn/dir/x", "rn/new/dir/c"})
}

func testString(t *testing.T, s objstore.Store) {
	if s.String() == "" {
		t.Fatal("String() is empty, want a name such as s3://bucket/prefix")
	}
}
