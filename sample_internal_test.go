package gale

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSampleUniform checks that the bottom-n sketch behind Sample picks
// every element equally often, however the elements are split among map
// tasks and in whatever order the partial samples merge: each of 20
// elements must appear in 5-of-20 samples 25% of the time, within six
// standard deviations over 20,000 trials.
func TestSampleUniform(t *testing.T) {
	const elems, n, trials = 20, 5, 20000
	s := sampleCombiner[int]{N: n}
	seen := make([]int, elems)
	rng := rand.New(rand.NewPCG(1, 2))
	for range trials {
		parts := make([][]prioritized[int], 3)
		for e := range elems {
			i := rng.IntN(3)
			parts[i] = s.Add(parts[i], e)
		}
		rng.Shuffle(3, func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		got := s.Extract(s.Merge(s.Merge(s.Create(), parts[0]), s.Merge(parts[1], parts[2])))
		if len(got) != n {
			t.Fatalf("sample of %d elements, want %d", len(got), n)
		}
		dup := map[int]bool{}
		for _, e := range got {
			if dup[e] {
				t.Fatalf("element %d sampled twice", e)
			}
			dup[e] = true
			seen[e]++
		}
	}
	p := float64(n) / elems
	mean, sd := trials*p, math.Sqrt(trials*p*(1-p))
	for e, c := range seen {
		if math.Abs(float64(c)-mean) > 6*sd {
			t.Errorf("element %d sampled %d times, want %.0f ± %.0f", e, c, mean, 6*sd)
		}
	}
}
