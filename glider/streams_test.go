package glider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
)

// pattern returns n bytes in which every 8-byte word holds its own offset,
// so a reordered, dropped or duplicated chunk shows up at its position.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := uint64(i) ^ seed*0x9e3779b97f4a7c15
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// writeRandomly writes data in pieces of random sizes.
func writeRandomly(w io.Writer, data []byte, rng *rand.Rand, maxPiece int) error {
	for len(data) > 0 {
		k := min(len(data), 1+rng.IntN(maxPiece))
		if _, err := w.Write(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

func readRandomly(r io.Reader, rng *rand.Rand, maxPiece int) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, maxPiece)
	for {
		n, err := r.Read(buf[:1+rng.IntN(maxPiece)])
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestFileStreamSizes(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.StorageServers = 3 // blocks spread round-robin over three servers
	cl := startCluster(t, cfg)
	c := dial(t, cl, "sizes")
	ctx := testCtx(t)
	bs := DefaultBlockSize
	large := 128 << 20 // the largest stream in tests: ≤ 256 MiB keeps CI fast
	if raceEnabled {
		large = 32 << 20
	}
	for i, n := range []int{0, 1, bs - 1, bs, bs + 1, 7*bs + 12345, large} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := pattern(n, uint64(i))
			path := fmt.Sprintf("/f%d", n)
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			w, err := c.Create(ctx, path, "")
			if err != nil {
				t.Fatal(err)
			}
			if n > 4*bs {
				_, err = w.Write(data) // large writes go out without buffering
			} else {
				err = writeRandomly(w, data, rng, 300<<10)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			node, err := c.Lookup(ctx, path)
			if err != nil || node.Size != int64(n) {
				t.Fatalf("lookup: %+v %v", node, err)
			}
			r, err := c.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readRandomly(r, rng, 3<<20)
			_ = r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes (crc %x), want %d (crc %x); first difference at %d",
					len(got), crc32.ChecksumIEEE(got), n, crc32.ChecksumIEEE(data), firstDiff(got, data))
			}
			if err := c.Delete(ctx, path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPipelinedWritesKeepOrder uses tiny blocks and chunks and a deep
// window, so hundreds of requests to three servers are in flight at once.
func TestPipelinedWritesKeepOrder(t *testing.T) {
	cfg := DefaultClusterConfig()
	cfg.StorageServers = 3
	cfg.Storage = DefaultStorageConfig()
	cfg.Storage.BlockSize = 4096
	cl := startCluster(t, cfg)
	ctx := testCtx(t)
	c, err := Dial(ctx, ClientConfig{Meta: cl.MetaAddr(), Namespace: "order", Token: cl.Token("order"), ChunkSize: 1000, Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := pattern(1<<20+333, 7)
	before := c.Stats()
	if err := c.WriteFile(ctx, "/f", "", data); err != nil {
		t.Fatal(err)
	}
	d := c.Stats().Sub(before)
	// 1000-byte chunks that never cross a 4096-byte block: 5 per block.
	blocks := (len(data) + 4095) / 4096
	if d.Requests < int64(blocks*5-1) || d.BytesSent < int64(len(data)) {
		t.Fatalf("stats %+v for %d bytes in %d blocks", d, len(data), blocks)
	}
	got, err := c.ReadFile(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("order broken: first difference at %d of %d", firstDiff(got, data), len(data))
	}
	// Several files written concurrently on one client keep their own
	// order too.
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			p := pattern(200_000+i, uint64(100+i))
			path := fmt.Sprintf("/c%d", i)
			if err := c.WriteFile(ctx, path, "", p); err != nil {
				errs <- err
				return
			}
			got, err := c.ReadFile(ctx, path)
			if err == nil && !bytes.Equal(got, p) {
				err = fmt.Errorf("%s: first difference at %d", path, firstDiff(got, p))
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// echo stores what each write stream carries and returns the last one on
// read.
type echo struct{ last []byte }

func (e *echo) OnWrite(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	e.last = b
	return nil
}

func (e *echo) OnRead(_ context.Context, w io.Writer) error {
	// Write in odd pieces to exercise the chunking of read streams.
	b := e.last
	for len(b) > 0 {
		k := min(len(b), 77777)
		if _, err := w.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

func (e *echo) StateBytes() int64 { return int64(len(e.last)) }

func TestActionStreamSizes(t *testing.T) {
	reg := DefaultRegistry()
	reg.Register("echo", func() Action { return &echo{} })
	cl := startCluster(t, ClusterConfig{StorageServers: 1, ActiveServers: 1, Registry: reg})
	c := dial(t, cl, "sizes")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/e", "echo", ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	bs := DefaultBlockSize
	large := 64 << 20
	if raceEnabled {
		large = 16 << 20
	}
	for i, n := range []int{0, 1, bs, bs + 1, 9*bs + 5, large} {
		data := pattern(n, uint64(i+50))
		rng := rand.New(rand.NewPCG(uint64(n), 2))
		w, err := c.ActionWriter(ctx, "/e")
		if err != nil {
			t.Fatal(err)
		}
		if err := writeRandomly(w, data, rng, 2<<20); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := c.ActionReader(ctx, "/e")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readRandomly(r, rng, 3<<20)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read %d, first difference at %d", n, len(got), firstDiff(got, data))
		}
	}
	st, err := c.ClusterStats(ctx)
	if err != nil || st.Actions != 1 || st.ActionBytes != int64(large) {
		t.Fatalf("stats %+v %v", st, err)
	}
	// A reader that stops early cuts the stream; the action is still
	// usable afterwards.
	r, err := c.ActionReader(ctx, "/e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	got, err := c.ReadAction(ctx, "/e")
	if err != nil || len(got) != large {
		t.Fatalf("read after an early close: %d bytes, %v", len(got), err)
	}
	if err := c.Delete(ctx, "/e"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ActionReader(ctx, "/e"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reader of a deleted action: %v", err)
	}
}
