package worker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGrouperGroupsByKeyAndWindow files records with random keys, windows
// and values over several segments and checks every group against a
// reference grouping built by a plain scan: the groups in the order they
// first appear, each with its values in arrival order.
func TestGrouperGroupsByKeyAndWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type rec struct{ key, win, val string }
	var segs [][]byte
	var all []rec
	for s := 0; s < 4; s++ {
		var seg []byte
		for i := 0; i < 500; i++ {
			// Keys of several lengths, so a key that is a prefix of another
			// (and the window field after it) must not be confused.
			r := rec{key: fmt.Sprintf("k%d", rng.IntN(40)), win: string([]byte{byte(rng.IntN(3))}), val: fmt.Sprintf("v%d-%d", s, i)}
			if rng.IntN(10) == 0 {
				r.key = r.key + "\x01"
			}
			all = append(all, r)
			seg = appendField(seg, []byte(r.key))
			seg = appendField(seg, []byte(r.win))
			seg = appendField(seg, []byte(r.val))
		}
		segs = append(segs, seg)
	}
	type grp struct {
		key, win string
		vals     []string
	}
	var want []grp
	for _, r := range all {
		i := slices.IndexFunc(want, func(g grp) bool { return g.key == r.key && g.win == r.win })
		if i < 0 {
			want = append(want, grp{key: r.key, win: r.win})
			i = len(want) - 1
		}
		want[i].vals = append(want[i].vals, r.val)
	}

	g := newGrouper()
	for _, seg := range segs {
		if err := g.addSegment(seg); err != nil {
			t.Fatal(err)
		}
	}
	if g.records() != int64(len(all)) {
		t.Fatalf("records() = %d, want %d", g.records(), len(all))
	}
	var got []grp
	err := g.each(func(key, win []byte, vals func(func([]byte) bool), n int) error {
		gr := grp{key: string(key), win: string(win)}
		for v := range vals {
			gr.vals = append(gr.vals, string(v))
		}
		if n != len(gr.vals) {
			return fmt.Errorf("group %q: n = %d but %d values", key, n, len(gr.vals))
		}
		got = append(got, gr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].key != want[i].key || got[i].win != want[i].win || !slices.Equal(got[i].vals, want[i].vals) {
			t.Fatalf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGrouperRejectsTruncatedRecords(t *testing.T) {
	seg := appendField(nil, []byte("key"))
	seg = appendField(seg, []byte("w"))
	seg = appendField(seg, []byte("value"))
	for cut := 1; cut < len(seg); cut++ {
		if err := newGrouper().addSegment(seg[:cut]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes was accepted", cut, len(seg))
		}
	}
}
