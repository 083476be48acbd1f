package gensort

import (
	"math/big"
	"testing"
)

func toBig(x u128) *big.Int {
	b := new(big.Int).SetUint64(x.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(x.lo))
}

// TestSkipAhead checks the 128-bit arithmetic against math/big and against
// entries of gensort's published table of generator powers: X(2) and X(4)
// are the constants of f^2 and f^4, X(2^64) that of f^(2^64).
func TestSkipAhead(t *testing.T) {
	mod := new(big.Int).Lsh(big.NewInt(1), 128)
	a, c := toBig(lcgA), toBig(lcgC)
	x := new(big.Int)
	var seq u128
	for n := range uint64(2000) {
		if got := skipAhead(u128{0, n}); toBig(got).Cmp(x) != 0 || got != seq {
			t.Fatalf("X(%d) = %x, want %x", n, toBig(got), x)
		}
		x.Mul(x, a).Add(x, c).Mod(x, mod)
		seq = nextRand(seq)
	}
	for _, tc := range []struct {
		n    u128
		want u128
	}{
		{u128{0, 2}, u128{0x95e0e48262b3edfe, 0x04479485c755b646}},
		{u128{0, 4}, u128{0x882a02c315362b60, 0x765f100068b33a1c}},
		{u128{1, 0}, u128{0xf0b1944bfd71a97f, 0x0000000000000000}},
	} {
		if got := skipAhead(tc.n); got != tc.want {
			t.Errorf("X(%x:%x) = %x:%x, want %x:%x", tc.n.hi, tc.n.lo, got.hi, got.lo, tc.want.hi, tc.want.lo)
		}
	}
	// Jumps compose across the 64-bit boundary.
	y := skipAhead(u128{1, 0})
	for range 5 {
		y = nextRand(y)
	}
	if got := skipAhead(u128{1, 5}); got != y {
		t.Errorf("X(2^64+5) = %x:%x, want %x:%x", got.hi, got.lo, y.hi, y.lo)
	}
}
