package shuffle

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestRecordsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type kv struct{ k, v []byte }
	var want []kv
	var buf []byte
	for i := range 2000 {
		k := make([]byte, rng.IntN(300))
		v := make([]byte, rng.IntN(70000*(i%3/2)+20))
		for j := range k {
			k[j] = byte(rng.IntN(256))
		}
		for j := range v {
			v[j] = byte(rng.IntN(256))
		}
		want = append(want, kv{k, v})
		buf = AppendRecord(buf, k, v)
	}
	// In memory.
	rest := buf
	for i, w := range want {
		k, v, next, err := ReadRecord(rest)
		if err != nil || !bytes.Equal(k, w.k) || !bytes.Equal(v, w.v) {
			t.Fatalf("ReadRecord %d: %q %q %v", i, k, v, err)
		}
		rest = next
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
	// Streamed through small reads, which defeat the in-buffer fast path.
	rr := NewRecordReader(io.MultiReader(bytes.NewReader(buf[:len(buf)/3]), bytes.NewReader(buf[len(buf)/3:])))
	for i, w := range want {
		k, v, err := rr.Next()
		if err != nil || !bytes.Equal(k, w.k) || !bytes.Equal(v, w.v) {
			t.Fatalf("Next %d: %v", i, err)
		}
	}
	if _, _, err := rr.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	if rr.Records() != int64(len(want)) {
		t.Fatalf("Records = %d, want %d", rr.Records(), len(want))
	}
}

func TestRecordsTruncated(t *testing.T) {
	rec := AppendRecord(nil, []byte("key"), []byte("value"))
	for cut := 1; cut < len(rec); cut++ {
		if _, _, _, err := ReadRecord(rec[:cut]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ReadRecord cut at %d: %v, want ErrTruncated", cut, err)
		}
		rr := NewRecordReader(bytes.NewReader(rec[:cut]))
		if _, _, err := rr.Next(); !errors.Is(err, ErrTruncated) {
			t.Errorf("Next cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
	huge := AppendField(nil, nil)[:0]
	huge = append(huge, 0xff, 0xff, 0xff, 0xff, 0x0f) // a key of 4 GiB
	if _, _, err := NewRecordReader(bytes.NewReader(huge)).Next(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a 4 GiB field: %v, want ErrTooLarge", err)
	}
}

// TestFieldsAreRecords checks that a key-value record is two fields, the
// framing the Beam worker's three-field records share.
func TestFieldsAreRecords(t *testing.T) {
	a := AppendRecord(nil, []byte("k"), []byte("v"))
	b := AppendField(AppendField(nil, []byte("k")), []byte("v"))
	if !bytes.Equal(a, b) || !bytes.Equal(a, []byte{1, 'k', 1, 'v'}) {
		t.Fatalf("AppendRecord = %x, fields = %x", a, b)
	}
}

// TestHashPartition pins the partitioner: keyed shuffle outputs written
// by one Gale version are read by reducers of the same version only, but
// the Beam worker and the root package must agree, and a change here
// changes every keyed job's partitions.
func TestHashPartition(t *testing.T) {
	for _, parts := range []int{0, 1} {
		if p := HashPartition([]byte("x"), parts); p != 0 {
			t.Errorf("HashPartition(x, %d) = %d", parts, p)
		}
	}
	counts := make([]int, 7)
	for i := range 7000 {
		k := []byte{byte(i), byte(i >> 8), 'k'}
		p := HashPartition(k, 7)
		if want := int(xxhash.Sum64(k) % 7); p != want {
			t.Fatalf("HashPartition(%x, 7) = %d, want %d", k, p, want)
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("partition %d got %d of 7000 keys", p, n)
		}
	}
}
