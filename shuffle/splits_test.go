package shuffle

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// quantilePartition is the range partitioning by the uncut sample
// quantiles with repeats: a key goes to the number of quantiles <= it.
func quantilePartition(sample [][]byte, parts int, key []byte) int {
	sorted := slices.Clone(sample)
	slices.SortFunc(sorted, bytes.Compare)
	n := 0
	for i := 1; i < parts; i++ {
		if bytes.Compare(sorted[i*len(sorted)/parts], key) <= 0 {
			n++
		}
	}
	return n
}

func randKey(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(10))
	for i := range b {
		b[i] = byte('a' + r.IntN(3)) // few distinct bytes: repeats and shared prefixes
	}
	return b
}

// TestSplitPointsPartitionSampledKeysByRank: every sampled key lands where
// the uncut quantiles put it, and any key's partition never decreases as
// the key grows.
func TestSplitPointsPartitionSampledKeysByRank(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		parts := 1 + r.IntN(20)
		sample := make([][]byte, 1+r.IntN(300))
		for i := range sample {
			sample[i] = randKey(r)
		}
		s := SplitPoints(sample, parts)
		if err := s.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, k := range sample {
			if got, want := s.Partition(k), quantilePartition(sample, parts, k); got != want {
				t.Fatalf("seed %d: sampled key %q in partition %d, its rank gives %d", seed, k, got, want)
			}
		}
		probe := make([][]byte, 500)
		for i := range probe {
			probe[i] = randKey(r)
		}
		slices.SortFunc(probe, bytes.Compare)
		last := 0
		for _, k := range probe {
			p := s.Partition(k)
			if p < last || p >= parts {
				t.Fatalf("seed %d: key %q in partition %d after %d (of %d)", seed, k, p, last, parts)
			}
			last = p
		}
	}
}

// TestSplitPointsAreCompact: one enormous key sampled once, and a hot key
// sampled many times, give split points of a few bytes, each key at most
// once.
func TestSplitPointsAreCompact(t *testing.T) {
	huge := bytes.Repeat([]byte("x"), 50<<20)
	s := SplitPoints([][]byte{huge}, 50)
	if s.Size() > 1 || len(s.Keys) != 1 {
		t.Fatalf("one 50 MiB key gives %d split keys of %d bytes, want one empty key", len(s.Keys), s.Size())
	}
	if p := s.Partition(huge); p != 49 {
		t.Errorf("the sampled key goes to partition %d, want 49", p)
	}
	var sample [][]byte
	long := strings.Repeat("k", 1000)
	for i := range 1000 {
		sample = append(sample, []byte(long+string(rune('a'+i%3))))
	}
	s = SplitPoints(sample, 100)
	if len(s.Keys) != 3 || s.Size() > 2*1001 {
		t.Fatalf("three distinct keys sampled 1000 times give %d split keys (%d bytes), want 3", len(s.Keys), s.Size())
	}
	b, _ := json.Marshal(s)
	if len(b) > 4000 {
		t.Errorf("split points for 100 partitions of a hot key encode to %d bytes", len(b))
	}
}

func TestSplitPointsEdgeCases(t *testing.T) {
	if s := SplitPoints(nil, 1); s.Partition([]byte("a")) != 0 || len(s.Keys) != 0 {
		t.Errorf("one partition: %+v", s)
	}
	s := SplitPoints(nil, 4)
	for _, k := range []string{"", "a", "\xff\xff"} {
		if p := s.Partition([]byte(k)); p != 3 {
			t.Errorf("empty sample: key %q in partition %d, want the last (3)", k, p)
		}
	}
	// The separator is the shortest prefix above the key ranked below.
	s = SplitPoints([][]byte{[]byte("apple"), []byte("apricot")}, 2)
	if len(s.Keys) != 1 || string(s.Keys[0]) != "apr" {
		t.Errorf("split of apple|apricot is %q, want \"apr\"", s.Keys)
	}
	if s.Partition([]byte("apple")) != 0 || s.Partition([]byte("apricot")) != 1 || s.Partition([]byte("apq")) != 0 {
		t.Error("apple, apq, apricot partitioned wrongly")
	}
	// A prefix of the key below: "ab" < "abc".
	s = SplitPoints([][]byte{[]byte("ab"), []byte("abc")}, 2)
	if string(s.Keys[0]) != "abc" {
		t.Errorf("split of ab|abc is %q", s.Keys)
	}
}

func TestCutSampleKey(t *testing.T) {
	k := bytes.Repeat([]byte{1}, SampleKeyLimit+5)
	if len(CutSampleKey(k)) != SampleKeyLimit || len(CutSampleKey(k[:3])) != 3 {
		t.Error("CutSampleKey does not cut at SampleKeyLimit")
	}
}

func TestSplitsValidate(t *testing.T) {
	for _, bad := range []Splits{
		{Parts: 0},
		{Parts: 3, Keys: [][]byte{[]byte("a")}},
		{Parts: 3, Keys: [][]byte{[]byte("b"), []byte("a")}, Ends: []int{1, 2}},
		{Parts: 3, Keys: [][]byte{[]byte("a")}, Ends: []int{3}},
		{Parts: 3, Keys: [][]byte{[]byte("a"), []byte("b")}, Ends: []int{2, 1}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v is valid", bad)
		}
	}
}
