package glider

import (
	"bytes"
	"testing"
)

func TestSmoke(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "t1")
	ctx := testCtx(t)
	data := bytes.Repeat([]byte("abcdefg"), 400000)
	if err := c.WriteFile(ctx, "/f", "", data); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadFile(ctx, "/f")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	if _, err := c.CreateAction(ctx, "/c", ActionCount, ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAction(ctx, "/c", []byte("a\nb\nc\n")); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReadAction(ctx, "/c")
	if err != nil || string(out) != "3\n" {
		t.Fatalf("count %q err %v", out, err)
	}
}
