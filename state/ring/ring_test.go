package ring

import (
	"fmt"
	"math"
	"testing"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = ObjectKey("AtomicLong", fmt.Sprintf("obj-%d", i))
	}
	return out
}

func TestBalanceAndDeterminism(t *testing.T) {
	nodes := []string{"a:1", "b:1", "c:1", "d:1"}
	r1, _ := New(nodes, 0)
	r2, _ := New([]string{"d:1", "c:1", "b:1", "a:1"}, 0)
	count := map[string]int{}
	ks := keys(40000)
	for _, k := range ks {
		n := r1.Locate(k)
		if n != r2.Locate(k) {
			t.Fatalf("placement depends on membership order for %q", k)
		}
		count[n]++
	}
	for _, n := range nodes {
		share := float64(count[n]) / float64(len(ks))
		if math.Abs(share-0.25) > 0.08 {
			t.Errorf("node %s holds %.3f of the keys, want about 0.25", n, share)
		}
	}
}

func TestMinimalMovement(t *testing.T) {
	before, _ := New([]string{"a:1", "b:1", "c:1", "d:1"}, 0)
	after, _ := New([]string{"a:1", "b:1", "c:1", "d:1", "e:1"}, 0)
	ks := keys(40000)
	moved := 0
	for _, k := range ks {
		b, a := before.Locate(k), after.Locate(k)
		if b != a {
			moved++
			if a != "e:1" {
				t.Fatalf("key %q moved from %s to %s, not to the new node", k, b, a)
			}
		}
	}
	share := float64(moved) / float64(len(ks))
	if math.Abs(share-0.2) > 0.06 {
		t.Fatalf("adding a 5th node moved %.3f of the keys, want about 1/5", share)
	}
	// Removing a node moves only its own keys.
	removed, _ := New([]string{"a:1", "c:1", "d:1"}, 0)
	for _, k := range ks {
		b, a := before.Locate(k), removed.Locate(k)
		if b != "b:1" && a != b {
			t.Fatalf("key %q on surviving node %s moved to %s", k, b, a)
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil, 0); err != ErrEmpty {
		t.Fatalf("err = %v", err)
	}
	if _, err := New([]string{"a", "a"}, 0); err == nil {
		t.Fatal("duplicate accepted")
	}
}
