package strtab

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestTableAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tab := New()
	want := map[string]int64{}
	buf := make([]byte, 0, 16)
	for i := 0; i < 200000; i++ {
		buf = fmt.Appendf(buf[:0], "k%d", r.IntN(30000))
		if r.IntN(50) == 0 {
			buf = buf[:0] // the empty key is a key too
		}
		d := int64(r.IntN(5)) - 1
		// Reusing buf checks that the table copies keys.
		tab.Add(string(buf), d)
		want[string(buf)] += d
	}
	if tab.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", tab.Len(), len(want))
	}
	seen := 0
	tab.Range(func(k string, v int64) {
		seen++
		if want[k] != v {
			t.Errorf("key %q: got %d, want %d", k, v, want[k])
		}
	})
	if seen != len(want) {
		t.Fatalf("Range visited %d keys, want %d", seen, len(want))
	}
	tab.Reset()
	if tab.Len() != 0 {
		t.Fatal("Reset left keys")
	}
}

func TestLongAndBoundaryKeys(t *testing.T) {
	tab := New()
	want := map[string]int64{}
	for n := 0; n < 40; n++ {
		for _, c := range []byte("ab") {
			k := string(make([]byte, n)) // zero bytes: packed keys must still differ by length
			k2 := ""
			for i := 0; i < n; i++ {
				k2 += string(c)
			}
			for _, key := range []string{k, k2} {
				tab.Add(key, int64(n+1))
				want[key] += int64(n + 1)
			}
		}
	}
	got := map[string]int64{}
	tab.Range(func(k string, v int64) { got[k] = v })
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %q: got %d, want %d", k, got[k], v)
		}
	}
}
