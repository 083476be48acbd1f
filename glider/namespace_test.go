package glider

import (
	"errors"
	"strings"
	"testing"
)

func TestNamespaceOperations(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "ns1")
	ctx := testCtx(t)

	if err := c.Mkdir(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "/a"); !errors.Is(err, ErrExists) {
		t.Fatalf("mkdir twice: %v", err)
	}
	if err := c.Mkdir(ctx, "/x/y"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mkdir without parent: %v", err)
	}
	if err := c.MkdirAll(ctx, "/x/y/z"); err != nil {
		t.Fatal(err)
	}
	if err := c.MkdirAll(ctx, "/x/y/z"); err != nil {
		t.Fatalf("MkdirAll of an existing dir: %v", err)
	}
	if err := c.WriteFile(ctx, "/a/f1", "", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx, "/a/f0", ClassDRAM, []byte("zero!")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx, "/a/f1", "", []byte("again")); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a file: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/a/m", ActionMerge, ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	kids, err := c.List(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range kids {
		got = append(got, k.Path+":"+k.Kind.String())
	}
	if want := "/a/f0:file /a/f1:file /a/m:action"; strings.Join(got, " ") != want {
		t.Fatalf("list = %v, want %s", got, want)
	}
	n, err := c.Lookup(ctx, "/a/f0")
	if err != nil || n.Size != 5 || n.Kind != KindFile || n.Class != ClassDRAM {
		t.Fatalf("lookup = %+v, %v", n, err)
	}
	n, err = c.Lookup(ctx, "/a/m")
	if err != nil || n.Kind != KindAction || n.Type != ActionMerge {
		t.Fatalf("lookup action = %+v, %v", n, err)
	}

	// Errors name what is wrong.
	for _, tc := range []struct {
		err  error
		want error
	}{
		{c.Mkdir(ctx, "/a/f1/sub"), ErrNotDir},
		{c.Mkdir(ctx, "relative"), ErrBadRequest},
		{c.Mkdir(ctx, "/a/../b"), ErrBadRequest},
		{c.Mkdir(ctx, "/a//b"), ErrBadRequest},
		{c.Delete(ctx, "/a"), ErrNotEmpty},
		{c.Delete(ctx, "/nope"), ErrNotFound},
		{c.Delete(ctx, "/"), ErrBadRequest},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("got %v, want %v", tc.err, tc.want)
		}
	}
	if _, err := c.List(ctx, "/a/f1"); !errors.Is(err, ErrNotDir) {
		t.Errorf("list a file: %v", err)
	}
	if _, err := c.Open(ctx, "/a"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("open a directory: %v", err)
	}
	if _, err := c.Open(ctx, "/a/missing"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/a/missing") {
		t.Errorf("open a missing file: %v", err)
	}
	if _, err := c.ActionWriter(ctx, "/a/f1"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("action writer on a file: %v", err)
	}
	if _, err := c.Create(ctx, "/a/g", "nvme"); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "nvme") {
		t.Errorf("unknown storage class: %v", err)
	}

	if err := c.Delete(ctx, "/a/f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "/a/f1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup after delete: %v", err)
	}
	if err := c.DeleteAll(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAll(ctx, "/x"); err != nil {
		t.Fatal(err)
	}
	kids, err = c.List(ctx, "/")
	if err != nil || len(kids) != 0 {
		t.Fatalf("root after deletes: %v %v", kids, err)
	}
	st, err := c.ClusterStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesStored != 0 || st.Actions != 0 {
		t.Fatalf("stats after deleting everything: %+v", st)
	}
}

func TestFileVisibleOnlyAfterClose(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "ns1")
	ctx := testCtx(t)

	w, err := c.Create(ctx, "/f", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 3*DefaultBlockSize+7)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "/f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup of a file being written: %v", err)
	}
	if kids, _ := c.List(ctx, "/"); len(kids) != 0 {
		t.Fatalf("list shows a file being written: %v", kids)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Lookup(ctx, "/f"); err != nil || n.Size != 3*DefaultBlockSize+7 {
		t.Fatalf("lookup after close: %+v %v", n, err)
	}

	// An aborted writer leaves nothing, and its blocks are freed.
	w, err = c.Create(ctx, "/g", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 2*DefaultBlockSize)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := w.Close(); err == nil {
		t.Fatal("Close after Abort succeeded")
	}
	if _, err := c.Lookup(ctx, "/g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("aborted file visible: %v", err)
	}

	// A client that goes away mid-write leaves nothing either.
	c2 := dial(t, cl, "ns1")
	w, err = c2.Create(ctx, "/h", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, DefaultBlockSize+1)); err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	if _, err := c.Lookup(ctx, "/h"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("file of a vanished writer visible: %v", err)
	}

	// Two writers race for one path: the first to commit wins.
	w1, err := c.Create(ctx, "/race", "")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := c.Create(ctx, "/race", "")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w1.Write([]byte("first"))
	_, _ = w2.Write([]byte("second"))
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); !errors.Is(err, ErrExists) {
		t.Fatalf("second commit: %v", err)
	}
	if b, _ := c.ReadFile(ctx, "/race"); string(b) != "first" {
		t.Fatalf("race winner content %q", b)
	}

	// Freed blocks are eventually dropped by the storage server; the
	// committed files are all that remain: 3 MiB + 7 and 5 bytes.
	waitFor(t, func() bool {
		st, err := c.ClusterStats(ctx)
		return err == nil && st.BytesStored == 3*DefaultBlockSize+7+5
	})
}
