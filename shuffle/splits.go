package shuffle

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
)

// SampleKeyLimit is the longest sample key a sort's sampler keeps: longer
// keys are cut to their first SampleKeyLimit bytes. That bounds a sampler's
// memory by its sample size, and the split points by the partition count,
// whatever the keys; keys sharing a prefix longer than the limit can only
// make partitions less even, never the sort wrong.
const SampleKeyLimit = 1 << 10

// CutSampleKey returns key cut to SampleKeyLimit bytes.
func CutSampleKey(key []byte) []byte {
	if len(key) > SampleKeyLimit {
		return key[:SampleKeyLimit]
	}
	return key
}

// Splits are the split points of a range partitioning into Parts
// partitions. Keys are distinct and increasing; a key k goes to partition
// 0 when k < Keys[0], else to Ends[j] for the last j with Keys[j] <= k.
// Ends are non-decreasing partition numbers below Parts: a split point
// sampled several times (a hot key) leaves the partitions it skips empty,
// as the sampled quantiles dictate, without repeating the key.
//
// The zero Splits with Parts 1 sends every key to partition 0.
type Splits struct {
	Parts int      `json:"parts"`
	Keys  [][]byte `json:"keys,omitempty"`
	Ends  []int    `json:"ends,omitempty"`
}

// Partition returns the partition of key.
func (s *Splits) Partition(key []byte) int {
	// j = the number of split keys <= key.
	j := sort.Search(len(s.Keys), func(i int) bool { return bytes.Compare(key, s.Keys[i]) < 0 })
	if j == 0 {
		return 0
	}
	return s.Ends[j-1]
}

// Size returns the bytes of the split keys.
func (s *Splits) Size() int {
	n := 0
	for _, k := range s.Keys {
		n += len(k)
	}
	return n
}

// Validate checks that s is well formed: what a worker checks before
// partitioning by split points it received.
func (s *Splits) Validate() error {
	if s.Parts < 1 {
		return fmt.Errorf("shuffle: split points for %d partitions", s.Parts)
	}
	if len(s.Ends) != len(s.Keys) {
		return fmt.Errorf("shuffle: %d split keys with %d partition ends", len(s.Keys), len(s.Ends))
	}
	for j := range s.Keys {
		if j > 0 && bytes.Compare(s.Keys[j-1], s.Keys[j]) >= 0 {
			return fmt.Errorf("shuffle: split key %d is not above key %d", j, j-1)
		}
		if s.Ends[j] < 0 || s.Ends[j] >= s.Parts || (j > 0 && s.Ends[j] < s.Ends[j-1]) {
			return fmt.Errorf("shuffle: split key %d leads to partition %d of %d out of order", j, s.Ends[j], s.Parts)
		}
	}
	return nil
}

// SplitPoints picks the split points of parts partitions from sampled keys:
// the keys at evenly spaced ranks of the sorted sample (the quantiles), each
// cut to the shortest prefix that is still above the sampled key ranked
// just below it, so every sampled key lands in the partition its rank
// gives. Equal quantiles (a key sampled more often than a partition's
// share) are kept once: the partitions between them stay empty, and records
// with one key always share a partition. With no sample (empty input) every
// key goes to the last partition. keys is not modified.
func SplitPoints(keys [][]byte, parts int) Splits {
	s := Splits{Parts: max(parts, 1)}
	if parts <= 1 {
		return s
	}
	if len(keys) == 0 {
		s.Keys, s.Ends = [][]byte{{}}, []int{parts - 1}
		return s
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	for i := 1; i < parts; i++ {
		sep := separator(sorted, i*len(sorted)/parts)
		if n := len(s.Keys); n > 0 && bytes.Equal(s.Keys[n-1], sep) {
			s.Ends[n-1] = i // the same point again: partition i-1 stays empty
			continue
		}
		s.Keys = append(s.Keys, slices.Clone(sep))
		s.Ends = append(s.Ends, i)
	}
	return s
}

// separator returns the shortest prefix of sorted[r] that is above every
// sampled key ranked below the first occurrence of sorted[r]; the empty key
// when there is none.
func separator(sorted [][]byte, r int) []byte {
	q := sorted[r]
	lo := sort.Search(r, func(i int) bool { return bytes.Compare(sorted[i], q) >= 0 })
	if lo == 0 {
		return q[:0]
	}
	prev := sorted[lo-1] // < q
	// The shortest prefix of q above prev is one byte past their common
	// prefix; prev < q means q is longer than the common prefix.
	n := 0
	for n < len(prev) && prev[n] == q[n] {
		n++
	}
	return q[:n+1]
}
