// Package objects is the object-store shuffle's writer and reader: a map
// task writes each shuffle's partitions as one object in the shuffle
// layout (shuffle.NewObject), and a reduce task reads its segments of
// those objects with ranged reads. The engine and the Beam worker both
// write and read shuffle objects through it.
//
// Imports: the standard library, shuffle and backends/objstore. Nothing
// here starts goroutines.
package objects

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/shuffle"
)

// Write stores parts as the shuffle object key of st and returns the
// object (its Ranges locate the partitions; Size is what was written).
// One request.
func Write(ctx context.Context, st objstore.Store, key string, parts [][]byte) (*shuffle.Object, error) {
	o := shuffle.NewObject(parts)
	if err := st.Put(ctx, key, o.Reader()); err != nil {
		return nil, fmt.Errorf("shuffle: writing shuffle object %s/%s: %w", st, key, err)
	}
	return o, nil
}

// Read reads seg whole, with one ranged request, and checks that all of
// it arrived.
func Read(ctx context.Context, st objstore.Store, seg shuffle.Segment) ([]byte, error) {
	rc, err := st.Get(ctx, seg.Key, seg.Off, seg.Len)
	if err != nil {
		return nil, fmt.Errorf("shuffle: reading %s/%s: %w", st, seg.Key, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.Grow(int(seg.Len))
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, fmt.Errorf("shuffle: reading %s/%s: %w", st, seg.Key, err)
	}
	if int64(buf.Len()) != seg.Len {
		return nil, truncated(st, seg, int64(buf.Len()))
	}
	return buf.Bytes(), nil
}

func truncated(st objstore.Store, seg shuffle.Segment, got int64) error {
	return fmt.Errorf("shuffle: shuffle object %s/%s is truncated: read %d of %d bytes at offset %d",
		st, seg.Key, got, seg.Len, seg.Off)
}

// SegmentReader streams one segment: it opens the ranged read on its
// first Read (so a reducer holding many segments opens one at a time) and
// fails with a truncation error if the segment ends early. Close it.
type SegmentReader struct {
	ctx  context.Context
	st   objstore.Store
	seg  shuffle.Segment
	rc   io.ReadCloser
	read int64
	// Opened, if set, is called when the ranged read is opened (a
	// request); Bytes, if set, with every count of bytes read.
	Opened func()
	Bytes  func(n int64)
}

// NewSegmentReader returns a lazy reader of seg. ctx bounds the read.
func NewSegmentReader(ctx context.Context, st objstore.Store, seg shuffle.Segment) *SegmentReader {
	return &SegmentReader{ctx: ctx, st: st, seg: seg}
}

// Read implements io.Reader.
func (r *SegmentReader) Read(p []byte) (int, error) {
	if r.rc == nil {
		rc, err := r.st.Get(r.ctx, r.seg.Key, r.seg.Off, r.seg.Len)
		if err != nil {
			return 0, fmt.Errorf("shuffle: reading %s/%s: %w", r.st, r.seg.Key, err)
		}
		r.rc = rc
		if r.Opened != nil {
			r.Opened()
		}
	}
	n, err := r.rc.Read(p)
	r.read += int64(n)
	if r.Bytes != nil {
		r.Bytes(int64(n))
	}
	if err == io.EOF && r.read != r.seg.Len {
		return n, truncated(r.st, r.seg, r.read)
	}
	return n, err
}

// Close ends the ranged read, if it was opened.
func (r *SegmentReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// Ranges reads the footer of the shuffle object key (two ranged reads
// after a Stat) and returns its partitions' ranges: for tools, recovery
// and tests, as readers normally have the ranges from the writer.
func Ranges(ctx context.Context, st objstore.Store, key string) ([]shuffle.Range, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("shuffle: %s/%s: %w", st, key, err)
	}
	size := info.Size
	if size < int64(shuffle.TrailerSize) {
		return nil, fmt.Errorf("shuffle: %s/%s is %d bytes, too short for a shuffle object", st, key, size)
	}
	trailer, err := Read(ctx, st, shuffle.Segment{Key: key, Off: size - int64(shuffle.TrailerSize), Len: int64(shuffle.TrailerSize)})
	if err != nil {
		return nil, err
	}
	n, err := shuffle.FooterLen(trailer)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", st, key, err)
	}
	if n+int64(shuffle.TrailerSize) > size {
		return nil, fmt.Errorf("shuffle: %s/%s: footer of %d bytes in a %d-byte object", st, key, n, size)
	}
	footer, err := Read(ctx, st, shuffle.Segment{Key: key, Off: size - n - int64(shuffle.TrailerSize), Len: n})
	if err != nil {
		return nil, err
	}
	rs, err := shuffle.ParseFooter(append(footer, trailer...), size)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", st, key, err)
	}
	return rs, nil
}
