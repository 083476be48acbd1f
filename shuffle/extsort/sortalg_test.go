package extsort

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkSortBuffer compares the buffer sort used (pdqsort with the arrival
// location as last tie-breaker) with slices.SortStableFunc on the same
// references: 80,000 100-byte records with 10-byte random keys (8 MiB).
func BenchmarkSortBuffer(b *testing.B) {
	s, err := New(Config{}, key10)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	rec := make([]byte, 100)
	for range 80000 {
		for i := range rec {
			rec[i] = byte(rng.Uint32())
		}
		if err := s.Add(rec); err != nil {
			b.Fatal(err)
		}
	}
	orig := slices.Clone(s.refs)
	b.Run("pdqsort+loc", func(b *testing.B) {
		for b.Loop() {
			copy(s.refs, orig)
			s.sortBuffer()
		}
	})
	b.Run("SortStableFunc", func(b *testing.B) {
		for b.Loop() {
			copy(s.refs, orig)
			slices.SortStableFunc(s.refs, func(x, y ref) int {
				return bytes.Compare(s.keyOf(s.rec(x)), s.keyOf(s.rec(y)))
			})
		}
	})
}
