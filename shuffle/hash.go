package shuffle

import "github.com/cespare/xxhash/v2"

// HashPartition returns the partition, in 0..parts-1, of a record whose
// encoded key is key: the key's xxHash64 modulo parts. It is the one hash
// partitioner of Gale's keyed shuffles (the root package's kernels and
// the Beam worker's group and keyed edges), so a change to it changes
// every keyed shuffle at once. parts below 2 sends every key to 0.
func HashPartition(key []byte, parts int) int {
	if parts <= 1 {
		return 0
	}
	return int(xxhash.Sum64(key) % uint64(parts))
}
