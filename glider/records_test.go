package glider

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestRecordReader reads records of every size class — empty, small, and
// larger than the reader's buffer — from streams cut into pieces of one
// byte, of random sizes and whole, and checks each against what was
// written; a cut record is an error, not a short stream.
func TestRecordReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	type rec struct{ k, v []byte }
	var recs []rec
	var stream []byte
	for i := range 300 {
		kl, vl := rng.IntN(20), rng.IntN(300)
		if i%50 == 7 {
			vl = 300 << 10 // larger than the 256 KiB buffer
		}
		r := rec{make([]byte, kl), make([]byte, vl)}
		for j := range r.k {
			r.k[j] = byte(rng.Uint32())
		}
		for j := range r.v {
			r.v[j] = byte(rng.Uint32())
		}
		recs = append(recs, r)
		stream = AppendRecord(stream, r.k, r.v)
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"halves":   iotest.HalfReader(bytes.NewReader(stream)),
	} {
		rr := NewRecordReader(r)
		for i, want := range recs {
			k, v, err := rr.Next()
			if err != nil {
				t.Fatalf("%s: record %d: %v", name, i, err)
			}
			if !bytes.Equal(k, want.k) || !bytes.Equal(v, want.v) {
				t.Fatalf("%s: record %d differs", name, i)
			}
		}
		if _, _, err := rr.Next(); err != io.EOF {
			t.Fatalf("%s: after the last record: %v, want io.EOF", name, err)
		}
	}
	rr := NewRecordReader(bytes.NewReader(stream[:len(stream)-1]))
	var err error
	for err == nil {
		_, _, err = rr.Next()
	}
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a cut stream ended with %v, want ErrBadRequest (truncated)", err)
	}
}
