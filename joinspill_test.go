package gale_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// A skewed join: hot left key 0 (one order in two), and right key 1 with
// many right values (a customer listed under many rows), so both the
// streamed side and the buffered side of a key exceed a small budget.
const spillOrders, spillCustomers, spillDupRights = 30_000, 500, 2_000

func spillOrder(i int64) gale.KV[int64, int64] {
	k := (i * 7919) % spillCustomers
	if i%2 == 0 {
		k = 0
	}
	if i%500 == 1 {
		k = 1
	}
	return gale.KV[int64, int64]{Key: k, Value: i}
}

// Right values 0..spillCustomers-1 are one per key except key 1's extra
// spillDupRights values (and keys past the orders' range, for OuterJoin).
func spillCustomer(i int64) gale.KV[int64, string] {
	if i >= spillCustomers+20 {
		return gale.KV[int64, string]{Key: 1, Value: fmt.Sprintf("dup%06d-%s", i, strings.Repeat("x", 40))}
	}
	return gale.KV[int64, string]{Key: i, Value: fmt.Sprintf("c%d", i)}
}

func buildSpillJoins(p *gale.Pipeline) (*gale.Collected[gale.KV[int64, int64]], *gale.Collected[gale.KV[int64, int64]]) {
	orders := gale.Generate(p, spillOrders, spillOrder)
	cs := gale.Generate(p, spillCustomers+20+spillDupRights, spillCustomer)
	// Summaries keep the collected output small: per key, the number of
	// pairs and a checksum of what was paired.
	inner := gale.SumPerKey(gale.Map(gale.Join(orders, cs), pairDigest))
	outer := gale.SumPerKey(gale.Map(gale.OuterJoin(orders, cs), pairDigest))
	return gale.Collect(inner), gale.Collect(outer)
}

func init() {
	workerPipelines["spilljoins"] = func(p *gale.Pipeline) { buildSpillJoins(p) }
}

// pairDigest sums, per key, a checksum of each pair: the left value times
// 1,000,003 plus the right value's length and first digits.
func pairDigest(kv gale.KV[int64, gale.Joined[int64, string]]) gale.KV[int64, int64] {
	return gale.KV[int64, int64]{Key: kv.Key, Value: digest(kv.Value.HasLeft, kv.Value.Left, kv.Value.HasRight, kv.Value.Right)}
}

func digest(hasLeft bool, l int64, hasRight bool, r string) int64 {
	d := int64(1) << 40 // counts the pairs in the high bits
	if hasLeft {
		d += l * 1_000_003 % (1 << 30)
	}
	if hasRight {
		var n int64
		fmt.Sscanf(strings.TrimLeft(r, "cdup"), "%d", &n)
		d += int64(len(r))*7 + n
	}
	return d
}

// TestJoinHotKeySpills: a hot key whose values are many times the task
// memory budget (256 KiB) joins correctly on the local and process
// backends: its reduce sorts the partition in runs spilled to disk and
// streams the left values, and the right values of key 1 (about 110 KiB
// encoded, over their quarter of the budget) spill to a file read again
// for each left value. The answer is checked against a hash join computed
// here.
func TestJoinHotKeySpills(t *testing.T) {
	rights := map[int64][]string{}
	for i := range int64(spillCustomers + 20 + spillDupRights) {
		c := spillCustomer(i)
		rights[c.Key] = append(rights[c.Key], c.Value)
	}
	wantInner, wantOuter := map[int64]int64{}, map[int64]int64{}
	lefts := map[int64]bool{}
	for i := range int64(spillOrders) {
		o := spillOrder(i)
		lefts[o.Key] = true
		if len(rights[o.Key]) == 0 {
			wantOuter[o.Key] += digest(true, o.Value, false, "")
		}
		for _, r := range rights[o.Key] {
			d := digest(true, o.Value, true, r)
			wantInner[o.Key] += d
			wantOuter[o.Key] += d
		}
	}
	for k, rs := range rights {
		if !lefts[k] {
			for _, r := range rs {
				wantOuter[k] += digest(false, 0, true, r)
			}
		}
	}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		inner, outer := buildSpillJoins(p)
		spill := t.TempDir()
		// No backups: a losing attempt's process may be stopped before it
		// removes its spill files (the next job and gale gc remove them).
		rep := run(t, p, append(opts, gale.Partitions(3), gale.WorkerMemory(256<<10), gale.SpillDir(spill), gale.NoSpeculation())...)
		if left, _ := os.ReadDir(spill); len(left) > 0 {
			t.Errorf("the spill directory holds %d entries after the job, first %s", len(left), left[0].Name())
		}
		for _, c := range []struct {
			name string
			got  []gale.KV[int64, int64]
			want map[int64]int64
		}{{"Join", inner.Values(), wantInner}, {"OuterJoin", outer.Values(), wantOuter}} {
			got := map[int64]int64{}
			for _, kv := range c.got {
				got[kv.Key] = kv.Value
			}
			if len(got) != len(c.want) {
				t.Errorf("%s: %d keys, want %d", c.name, len(got), len(c.want))
			}
			for _, k := range slices.Sorted(mapKeys(c.want)) {
				if got[k] != c.want[k] {
					t.Errorf("%s: key %d: %d pairs (digest %d), want %d (digest %d)", c.name, k, got[k]>>40, got[k], c.want[k]>>40, c.want[k])
					break
				}
			}
		}
		var spilled int64
		for _, st := range rep.Stages {
			if strings.Contains(st.Name, "Join") && strings.Contains(st.Name, "shuffle") {
				spilled += st.Metrics.SpillRuns
			}
		}
		if spilled == 0 {
			t.Errorf("the join reduces spilled no sorted run under a 256 KiB budget; stages: %+v", rep.Stages)
		}
	})
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
