package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestReadLinesBorrowed: lent lines are the same lines, and lending them
// allocates no string per line.
func TestReadLinesBorrowed(t *testing.T) {
	data := []byte(strings.Repeat("alpha beta\ngamma\r\n", 5000) + "last")
	var want []string
	if _, err := readLines(context.Background(), bytes.NewReader(data), 0, int64(len(data)), func(s string) { want = append(want, s) }); err != nil {
		t.Fatal(err)
	}
	i := 0
	if _, err := readLinesOpt(context.Background(), bytes.NewReader(data), 0, int64(len(data)), 0, true, func(s string) {
		if s != want[i] {
			t.Fatalf("line %d: lent %q, want %q", i, s, want[i])
		}
		i++
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("lent %d lines, want %d", i, len(want))
	}
	for _, borrow := range []bool{false, true} {
		allocs := testing.AllocsPerRun(3, func() {
			_, _ = readLinesOpt(context.Background(), bytes.NewReader(data), 0, int64(len(data)), 0, borrow, func(string) {})
		})
		t.Logf("borrow=%v: %.0f allocations for %d lines", borrow, allocs, len(want))
		if borrow && allocs > 10 {
			t.Errorf("lending %d lines allocated %.0f times, want a fixed few (the read buffer)", len(want), allocs)
		}
	}
}
