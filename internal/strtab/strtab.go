// Package strtab is a hash table from strings to int64 sums, the map-side
// table of Gale's counting combiner over string keys.
//
// It is hand-rolled rather than a Go map because that table is the inner
// loop of word count. With tens of thousands of distinct keys, a Go map's
// lookup hashes the key, probes a group, then compares key bytes that live
// wherever the caller allocated them: three cache misses in the worst case.
// Here a key of at most 16 bytes (nearly every word) is packed into two
// 64-bit integers stored in the slot itself; they are the hash's input and
// are compared instead of the bytes, so a hit costs one multiply and one
// slot load. Longer keys store their hash in the slot and compare bytes
// only on a hash match. Linear probing, load factor at most 1/2, 32-byte
// slots that never straddle a cache line.
//
// This package may import only the standard library. A Table is not safe
// for concurrent use.
package strtab

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

type slot struct {
	k0, k1 uint64 // packed key (n <= 17) or hash and 0 (longer keys)
	sum    int64
	n      uint32 // key length + 1; 0 marks an empty slot
	idx    uint32 // index of the key in Table.keys
}

// Table maps strings to int64 sums.
type Table struct {
	slots []slot
	keys  []string
	mask  uint64
}

// New returns an empty table.
func New() *Table {
	t := &Table{}
	t.Reset()
	return t
}

// Len returns the number of keys.
func (t *Table) Len() int { return len(t.keys) }

// Mixing constants: odd 64-bit numbers with well-spread bits (those of
// wyhash), multiplied with 128-bit products and folded.
const (
	m0 = 0xa0761d6478bd642f
	m1 = 0xe7037ed1a0b428db
	m2 = 0x8ebc6af09c88c6e3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^m0, b^m1)
	return hi ^ lo
}

// pack returns two integers that, together with len(s) <= 16, identify s:
// its bytes gathered with a few (possibly overlapping) little-endian loads
// instead of a copy.
func pack(s string) (k0, k1 uint64) {
	n := len(s)
	p := unsafe.StringData(s)
	switch {
	case n >= 8:
		k0 = binary.LittleEndian.Uint64(unsafe.Slice(p, 8))
		if n > 8 {
			// The last 8 bytes, shifted so only s[8:] remains.
			k1 = binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[n-8:]), 8)) >> (8 * (16 - n))
		}
	case n >= 4:
		lo := uint64(binary.LittleEndian.Uint32(unsafe.Slice(p, 4)))
		hi := uint64(binary.LittleEndian.Uint32(unsafe.Slice(unsafe.StringData(s[n-4:]), 4))) >> (8 * (8 - n))
		k0 = lo | hi<<32
	case n > 0:
		k0 = uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16
	}
	return k0, k1
}

func hashLong(s string) uint64 {
	h := uint64(len(s)) * m2
	for len(s) >= 8 {
		h = mix(binary.LittleEndian.Uint64([]byte(s[:8])), h)
		s = s[8:]
	}
	var tail [8]byte
	copy(tail[:], s)
	return mix(binary.LittleEndian.Uint64(tail[:]), h)
}

// Add adds d to the sum of key s. The table copies s when it first sees
// it, so s may alias memory the caller reuses.
func (t *Table) Add(s string, d int64) {
	n := uint32(min(len(s), 1<<31)) + 1
	var k0, k1, h uint64
	short := len(s) <= 16
	if short {
		k0, k1 = pack(s)
		h = mix(k0, k1^uint64(n))
	} else {
		h = hashLong(s)
		k0 = h
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		if sl.n == n && sl.k0 == k0 && sl.k1 == k1 && (short || t.keys[sl.idx] == s) {
			sl.sum += d
			return
		}
		if sl.n == 0 {
			*sl = slot{k0: k0, k1: k1, sum: d, n: n, idx: uint32(len(t.keys))}
			t.keys = append(t.keys, clone(s))
			if 2*len(t.keys) > len(t.slots) {
				t.grow()
			}
			return
		}
	}
}

// clone copies s so the table never keeps a caller's larger buffer (a
// whole line) alive through a key.
func clone(s string) string { return string([]byte(s)) }

func (t *Table) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	t.mask = uint64(len(t.slots) - 1)
	for _, sl := range old {
		if sl.n == 0 {
			continue
		}
		var h uint64
		if sl.n <= 17 {
			h = mix(sl.k0, sl.k1^uint64(sl.n))
		} else {
			h = sl.k0
		}
		i := h & t.mask
		for t.slots[i].n != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = sl
	}
}

// Range calls fn for every key and sum, in no particular order.
func (t *Table) Range(fn func(key string, sum int64)) {
	for _, sl := range t.slots {
		if sl.n != 0 {
			fn(t.keys[sl.idx], sl.sum)
		}
	}
}

// Reset empties the table.
func (t *Table) Reset() {
	const size = 1 << 12
	t.slots = make([]slot, size)
	t.mask = size - 1
	t.keys = nil
}
