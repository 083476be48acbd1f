package ring

import (
	"fmt"
	"math"
	"strconv"
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

func TestLocateNIsStableUnderMembershipChange(t *testing.T) {
	nodes := []string{"1", "2", "3", "4"}
	r, _ := New(nodes, 0)
	r5, _ := New(append(nodes, "5"), 0)
	moved := 0
	for i := 0; i < 1000; i++ {
		k := strconv.Itoa(i)
		a, b := r.LocateN(k, 2), r5.LocateN(k, 2)
		if len(a) != 2 || a[0] == a[1] {
			t.Fatalf("LocateN(%q, 2) = %v", k, a)
		}
		if a[0] != r.Locate(k) {
			t.Fatalf("LocateN's first node %s is not Locate's %s", a[0], r.Locate(k))
		}
		// The new node may enter the list; the others keep their order.
		var kept []string
		for _, n := range b {
			if n != "5" {
				kept = append(kept, n)
			}
		}
		for j := range kept {
			if kept[j] != a[j] {
				t.Fatalf("key %s: replicas %v became %v", k, a, b)
			}
		}
		if len(kept) < 2 {
			moved++
		}
	}
	if moved < 250 || moved > 550 {
		t.Errorf("%d of 1000 keys gained the new node as a replica, want about 2/5", moved)
	}
	if got := r.LocateN("x", 9); len(got) != 4 {
		t.Errorf("LocateN past the node count = %v", got)
	}
}
