package extsort

// arena holds buffered record bytes in chunks of a standard size; a record
// larger than the standard size gets a chunk of its own. Chunks are used in
// list order and a record's location (chunk<<32 | offset) grows with arrival
// order, which the sort uses as its stable tie-breaker. Standard chunks are
// kept across spills and reused, so a long sort allocates its buffer once.
type arena struct {
	chunks    [][]byte
	std       int   // standard chunk size
	cur       int   // chunk being filled, -1 for none
	off       int   // fill offset in chunks[cur]
	allocated int64 // total size of chunks held
}

func (a *arena) init(budget int64) {
	a.std = int(min(max(budget/8, 64), 8<<20))
	a.cur = -1
}

// alloc reserves n bytes, allocating a chunk if needed as long as the chunks
// held stay within limit bytes.
func (a *arena) alloc(n int, limit int64) (uint64, bool) {
	if a.cur >= 0 && a.off+n <= len(a.chunks[a.cur]) {
		loc := uint64(a.cur)<<32 | uint64(a.off)
		a.off += n
		return loc, true
	}
	next := a.cur + 1
	switch {
	case n <= a.std && next < len(a.chunks):
		// A retained standard chunk (dedicated chunks never follow cur).
	case n <= a.std:
		if a.allocated+int64(a.std) > limit {
			return 0, false
		}
		a.chunks = append(a.chunks, make([]byte, a.std))
		a.allocated += int64(a.std)
	default:
		if a.allocated+int64(n) > limit {
			return 0, false
		}
		a.chunks = append(a.chunks, nil)
		copy(a.chunks[next+1:], a.chunks[next:])
		a.chunks[next] = make([]byte, n)
		a.allocated += int64(n)
	}
	a.cur, a.off = next, n
	return uint64(next) << 32, true
}

func (a *arena) bytes(loc uint64, n int) []byte {
	off := int(loc & 0xffffffff)
	return a.chunks[loc>>32][off : off+n : off+n]
}

// reset empties the arena, keeping its standard chunks for reuse.
func (a *arena) reset() {
	kept := a.chunks[:0]
	for _, c := range a.chunks {
		if len(c) == a.std {
			kept = append(kept, c)
		} else {
			a.allocated -= int64(len(c))
		}
	}
	clear(a.chunks[len(kept):])
	a.chunks = kept
	a.cur, a.off = -1, 0
}

// release drops every chunk.
func (a *arena) release() {
	a.chunks = nil
	a.allocated = 0
	a.cur, a.off = -1, 0
}
