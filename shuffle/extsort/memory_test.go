package extsort_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/galeproject/gale/shuffle/extsort"
)

func key10(rec []byte) []byte { return rec[:10] }

// fillRecord writes a 100-byte record with a random 10-byte key and the
// record number in its value.
func fillRecord(rng *rand.Rand, buf []byte, i uint64) {
	for j := 0; j < 10; j += 8 {
		var w [8]byte
		v := rng.Uint64()
		for k := range w {
			w[k] = byte(v >> (8 * k))
		}
		copy(buf[j:10], w[:])
	}
	for j := 10; j < 100; j++ {
		buf[j] = byte(i >> (8 * (j % 8)))
	}
}

// TestMemoryBound sorts 64 MiB of 100-byte records with an 8 MiB budget,
// generating the input on the fly so the test itself holds no data. The bound
// asserted: the Sorter's accounted buffer never exceeds the budget (exact),
// and the growth of the Go heap in use over the whole Add+Sort, sampled with
// runtime.ReadMemStats, stays within 3 × the budget. The expected live heap
// is the budget plus the 256 KiB write buffer plus one 64 KiB read buffer per
// run (about 11 runs here); the rest of the margin covers garbage the
// collector has not yet reclaimed (GOGC=100 lets the heap reach twice the
// live size).
func TestMemoryBound(t *testing.T) {
	total := int64(64 << 20)
	if testing.Short() {
		total = 16 << 20
	}
	const budget = 8 << 20
	const recSize = 100
	n := total / recSize

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}

	s, err := extsort.New(extsort.Config{MemoryBytes: budget, TempDir: t.TempDir()}, key10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(42, 43))
	buf := make([]byte, recSize)
	var inSum, outSum uint64
	for i := range n {
		fillRecord(rng, buf, uint64(i))
		inSum += checksum(buf)
		if err := s.Add(buf); err != nil {
			t.Fatal(err)
		}
		if i%(1<<15) == 0 {
			sample()
		}
	}
	var prev []byte
	var count int64
	err = s.Sort(context.Background(), func(rec []byte) error {
		if prev != nil && bytes.Compare(prev[:10], rec[:10]) > 0 {
			t.Fatalf("record %d out of order", count)
		}
		prev = append(prev[:0], rec...)
		outSum += checksum(rec)
		count++
		if count%(1<<15) == 0 {
			sample()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n || inSum != outSum {
		t.Fatalf("output %d records checksum %x, input %d records checksum %x", count, outSum, n, inSum)
	}
	st := s.Stats()
	growth := int64(peak) - int64(base)
	t.Logf("sorted %d MiB with a %d MiB budget: %d runs, peak accounted %.1f MiB, peak heap growth %.1f MiB",
		total>>20, budget>>20, st.RunsSpilled, float64(st.PeakBufferedBytes)/(1<<20), float64(growth)/(1<<20))
	if st.PeakBufferedBytes > budget {
		t.Errorf("peak accounted buffer %d exceeds the budget %d", st.PeakBufferedBytes, budget)
	}
	if st.RunsSpilled < int(total/budget) {
		t.Errorf("only %d runs spilled for %d bytes at budget %d", st.RunsSpilled, total, budget)
	}
	if growth > 3*budget {
		t.Errorf("heap in use grew by %d bytes, more than 3 × the %d budget", growth, budget)
	}
}

// checksum is an order-independent record fingerprint (FNV-1a per record,
// summed).
func checksum(rec []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range rec {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}
