package extsort

import "slices"

// radixCutoff is the bucket size below which radixSort hands over to the
// comparison sort.
const radixCutoff = 64

// radixSort orders refs like slices.SortFunc(refs, s.compareRefs): an
// in-place MSD radix sort (American flag sort) on the 8-byte key prefix, one
// byte per level from the top, finishing small buckets and buckets of equal
// prefixes with the comparison sort, which breaks ties by key suffix, key
// length and arrival. It needs no scratch memory, so the budget accounting
// is unchanged; BenchmarkSortBuffer measures it against pdqsort.
func (s *Sorter) radixSort(refs []ref, shift uint) {
	for {
		if len(refs) < radixCutoff {
			slices.SortFunc(refs, s.compareRefs)
			return
		}
		var counts [256]int
		for i := range refs {
			counts[byte(refs[i].prefix>>shift)]++
		}
		if counts[byte(refs[0].prefix>>shift)] == len(refs) {
			// One bucket: nothing to move at this byte.
			if shift == 0 {
				slices.SortFunc(refs, s.compareRefs)
				return
			}
			shift -= 8
			continue
		}
		var next, ends [256]int
		sum := 0
		for b, c := range counts {
			next[b] = sum
			sum += c
			ends[b] = sum
		}
		for b := range 256 {
			for next[b] < ends[b] {
				r := refs[next[b]]
				d := byte(r.prefix >> shift)
				for int(d) != b {
					// Put r in its bucket and carry on with the
					// record it displaces.
					r, refs[next[d]] = refs[next[d]], r
					next[d]++
					d = byte(r.prefix >> shift)
				}
				refs[next[b]] = r
				next[b]++
			}
		}
		start := 0
		for _, c := range counts {
			if c > 1 {
				bucket := refs[start : start+c]
				if shift == 0 {
					slices.SortFunc(bucket, s.compareRefs)
				} else {
					s.radixSort(bucket, shift-8)
				}
			}
			start += c
		}
		return
	}
}
