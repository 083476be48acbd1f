package extsort_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/galeproject/gale/shuffle/extsort"
)

// BenchmarkAddSort measures Add+Sort throughput on 64 MiB of 100-byte
// records with 10-byte random keys, in memory and with spills.
func BenchmarkAddSort(b *testing.B) {
	const total = (64 << 20) / 100 * 100
	const recSize = 100
	data := make([]byte, total)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < total; i += recSize {
		fillRecord(rng, data[i:i+recSize], uint64(i))
	}
	for _, bc := range []struct {
		name   string
		budget int64
	}{
		{"memory", 256 << 20},
		{"spill-8MiB", 8 << 20},
		{"spill-2MiB-fanin4", 2 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			fan := 0
			if bc.name == "spill-2MiB-fanin4" {
				fan = 4
			}
			for b.Loop() {
				s, err := extsort.New(extsort.Config{MemoryBytes: bc.budget, TempDir: b.TempDir(), MergeFanIn: fan}, key10)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < total; i += recSize {
					if err := s.Add(data[i : i+recSize]); err != nil {
						b.Fatal(err)
					}
				}
				n := 0
				if err := s.Sort(context.Background(), func(rec []byte) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != total/recSize {
					b.Fatalf("emitted %d", n)
				}
				st := s.Stats()
				b.ReportMetric(float64(st.RunsSpilled), "runs")
				b.ReportMetric(float64(st.MergePasses), "passes")
				s.Close()
			}
		})
	}
}
