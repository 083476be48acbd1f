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
// TestRadixMatchesComparisonSort checks radixSort against the comparison
// sort on keys with shared prefixes, short keys and many duplicates.
func TestRadixMatchesComparisonSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 20000} {
		s, err := New(Config{}, func(rec []byte) []byte { return rec[1 : 1+int(rec[0])] })
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			klen := rng.IntN(14)
			rec := []byte{byte(klen)}
			for range klen {
				rec = append(rec, byte(rng.IntN(3)))
			}
			rec = append(rec, byte(i), byte(i>>8))
			if err := s.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		want := slices.Clone(s.refs)
		slices.SortFunc(want, s.compareRefs)
		s.radixSort(s.refs, 56)
		if !slices.Equal(s.refs, want) {
			t.Fatalf("n=%d: radix order differs from the comparison sort", n)
		}
	}
}

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
	b.Run("radix", func(b *testing.B) {
		for b.Loop() {
			copy(s.refs, orig)
			s.radixSort(s.refs, 56)
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
