package glider

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// stampedChunks is a stream of n chunks of size bytes: one random-looking
// base chunk with the chunk's index stamped over its first 8 bytes, so a
// dropped, duplicated, reordered or shifted chunk shows, yet making and
// checking a chunk is two copies and a comparison. size is deliberately not
// a divisor of the block size, so chunks straddle block boundaries.
type stampedChunks struct {
	base []byte
	n    int
}

func newStampedChunks(size, n int) stampedChunks {
	return stampedChunks{base: pattern(size, 0x5eed), n: n}
}

// chunk writes chunk i into dst (len(dst) == len(base)).
func (s stampedChunks) chunk(dst []byte, i int) {
	copy(dst, s.base)
	binary.LittleEndian.PutUint64(dst, uint64(i)^0xa5a5a5a5a5a5a5a5)
}

// Read implements io.Reader over the whole stream; it returns whole chunks.
type stampedReader struct {
	s    stampedChunks
	next int
}

func (r *stampedReader) Read(p []byte) (int, error) {
	if r.next == r.s.n {
		return 0, io.EOF
	}
	size := len(r.s.base)
	if len(p) < size {
		return 0, errors.New("stampedReader: buffer smaller than a chunk")
	}
	k := 0
	for ; k+size <= len(p) && r.next < r.s.n; r.next++ {
		r.s.chunk(p[k:k+size], r.next)
		k += size
	}
	return k, nil
}

// TestFileStreamOneGiB streams 1 GiB (the largest size class) into a file
// on three storage servers and reads it back, checking every chunk without
// holding the stream in the test's memory.
//
// The storage servers of this process hold the gibibyte, which the race
// detector's shadow memory made a 6.3 GB process, the largest of make
// test by five times; so it runs without -race (make test runs it on its
// own), and the streaming code runs under -race in the smaller stream
// tests.
func TestFileStreamOneGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	if raceEnabled {
		t.Skip("holds 1 GiB in memory: run without -race (make test does)")
	}
	const size = 1<<20 - 3 // straddles the 1 MiB blocks
	n := (1<<30 + size - 1) / size
	s := newStampedChunks(size, n)
	total := int64(size) * int64(n)

	cfg := DefaultClusterConfig()
	cfg.StorageServers = 3
	cl := startCluster(t, cfg)
	c := dial(t, cl, "gib")
	// The stream's own deadline: 1 GiB under the race detector takes far
	// longer than the package's usual 45 s.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	w, err := c.Create(ctx, "/big", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(w, &stampedReader{s: s}, make([]byte, 4*size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	node, err := c.Lookup(ctx, "/big")
	if err != nil || node.Size != total {
		t.Fatalf("lookup: %+v %v, want %d bytes", node, err, total)
	}

	r, err := c.Open(ctx, "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, want := make([]byte, size), make([]byte, size)
	for i := range n {
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("chunk %d of %d: %v", i, n, err)
		}
		s.chunk(want, i)
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d of %d (offset %d) differs, first at byte %d", i, n, int64(i)*size, firstDiff(got, want))
		}
	}
	if k, err := r.Read(got); k != 0 || err != io.EOF {
		t.Fatalf("after %d bytes: read %d, %v; want EOF", total, k, err)
	}
	if err := c.Delete(ctx, "/big"); err != nil {
		t.Fatal(err)
	}
}
