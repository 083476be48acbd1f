package gensort

import "math/bits"

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func (x u128) add(y u128) u128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	return u128{x.hi + y.hi + carry, lo}
}

func (x u128) mul(y u128) u128 {
	hi, lo := bits.Mul64(x.lo, y.lo)
	return u128{hi + x.hi*y.lo + x.lo*y.hi, lo}
}

// The generator of gensort's rand16.c: X(k+1) = lcgA·X(k) + lcgC mod 2^128.
var (
	lcgA = u128{0x2360ed051fc65da4, 0x4385df649fccf645}
	lcgC = u128{0x4a696d4772617952, 0x4950202020202001}
)

func nextRand(x u128) u128 { return x.mul(lcgA).add(lcgC) }

// skipAhead returns X(n): the generator advanced n steps from 0. It composes
// the affine maps f^(2^i) for the set bits of n (they commute).
func skipAhead(n u128) u128 {
	var x u128
	a, c := lcgA, lcgC // f^(2^i)(x) = a·x + c
	for i := range 128 {
		word := n.lo
		if i >= 64 {
			word = n.hi
		}
		if word>>(i%64)&1 == 1 {
			x = x.mul(a).add(c)
		}
		// f^(2^(i+1)) = f^(2^i) ∘ f^(2^i)
		a, c = a.mul(a), a.mul(c).add(c)
	}
	return x
}

// randFor returns R(n) = X(n+1), the random number of record n.
func randFor(n u128) u128 { return nextRand(skipAhead(n)) }
