package objects

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/shuffle"
)

func TestWriteReadRanges(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{shuffle.AppendRecord(nil, []byte("a"), []byte("1")), nil, bytes.Repeat([]byte{7}, 1000)}
	o, err := Write(ctx, st, "shuffle-0/m0", parts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range o.Ranges {
		seg := shuffle.Segment{Key: "shuffle-0/m0", Off: r.Off, Len: r.Len}
		b, err := Read(ctx, st, seg)
		if err != nil || !bytes.Equal(b, parts[i]) {
			t.Errorf("Read partition %d: %v, %d bytes", i, err, len(b))
		}
		sr := NewSegmentReader(ctx, st, seg)
		opened, n := 0, int64(0)
		sr.Opened = func() { opened++ }
		sr.Bytes = func(k int64) { n += k }
		b, err = io.ReadAll(sr)
		sr.Close()
		if err != nil || !bytes.Equal(b, parts[i]) || opened != 1 || n != r.Len {
			t.Errorf("SegmentReader partition %d: %v, %d bytes, %d opens, %d counted", i, err, len(b), opened, n)
		}
	}
	rs, err := Ranges(ctx, st, "shuffle-0/m0")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if rs[i] != o.Ranges[i] {
			t.Errorf("footer range %d = %+v, writer's %+v", i, rs[i], o.Ranges[i])
		}
	}
	// A segment past the object's end is reported as truncated, naming the
	// object.
	_, err = Read(ctx, st, shuffle.Segment{Key: "shuffle-0/m0", Off: o.Size() - 4, Len: 10})
	if err == nil || !strings.Contains(err.Error(), "shuffle-0/m0 is truncated") {
		t.Errorf("reading past the end: %v", err)
	}
	sr := NewSegmentReader(ctx, st, shuffle.Segment{Key: "shuffle-0/m0", Off: o.Size() - 4, Len: 10})
	defer sr.Close()
	if _, err := io.ReadAll(sr); err == nil || !strings.Contains(err.Error(), "is truncated") {
		t.Errorf("streaming past the end: %v", err)
	}
	// Not a shuffle object.
	if err := st.Put(ctx, "other", strings.NewReader(strings.Repeat("x", 40))); err != nil {
		t.Fatal(err)
	}
	if _, err := Ranges(ctx, st, "other"); err == nil || !strings.Contains(err.Error(), "not a shuffle object") {
		t.Errorf("Ranges of a non-shuffle object: %v", err)
	}
}
