package gale_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/galeproject/gale"
)

type customer struct {
	ID      int64
	Country string
}

type purchase struct {
	Customer int64
	Amount   int64
}

// Customers 0..199 (a few without orders); orders skewed onto customer 0,
// some for customers that do not exist.
func makeCustomer(i int64) customer { return customer{ID: i, Country: fmt.Sprintf("c%d", i%9)} }
func makePurchase(i int64) purchase {
	c := i % 230
	if i%3 == 0 {
		c = 0 // a hot key
	}
	return purchase{Customer: c, Amount: i%50 + 1}
}
func customerID(c customer) int64 { return c.ID }
func purchaser(p purchase) int64  { return p.Customer }

func buildJoins(p *gale.Pipeline, nc, np int64) (inner, left, outer *gale.Collected[gale.KV[int64, gale.Joined[purchase, customer]]], groups *gale.Collected[gale.KV[int64, gale.CoGrouped[purchase, customer]]]) {
	cs := gale.KeyBy(gale.Generate(p, nc, makeCustomer), customerID)
	ps := gale.KeyBy(gale.Generate(p, np, makePurchase), purchaser)
	return gale.Collect(gale.Join(ps, cs)), gale.Collect(gale.LeftJoin(ps, cs)), gale.Collect(gale.OuterJoin(ps, cs)),
		gale.Collect(gale.CoGroupByKey(ps, cs))
}

func init() {
	workerPipelines["joins"] = func(p *gale.Pipeline) { buildJoins(p, 1, 1) }
}

func joinedString(kv gale.KV[int64, gale.Joined[purchase, customer]]) string {
	j := kv.Value
	return fmt.Sprintf("%d %v/%v %v/%v", kv.Key, j.HasLeft, j.Left, j.HasRight, j.Right)
}

// TestJoins checks CoGroupByKey, Join, LeftJoin and OuterJoin against a
// nested-loop join, on the local and process backends.
func TestJoins(t *testing.T) {
	const nc, np = 200, 3000
	var cs []customer
	var ps []purchase
	for i := range int64(nc) {
		cs = append(cs, makeCustomer(i))
	}
	for i := range int64(np) {
		ps = append(ps, makePurchase(i))
	}
	var inner, left, outer []string
	matched := map[int64]bool{}
	for _, o := range ps {
		found := false
		for _, c := range cs {
			if c.ID == o.Customer {
				found = true
				matched[c.ID] = true
				s := joinedString(gale.KV[int64, gale.Joined[purchase, customer]]{Key: c.ID, Value: gale.Joined[purchase, customer]{Left: o, Right: c, HasLeft: true, HasRight: true}})
				inner, left, outer = append(inner, s), append(left, s), append(outer, s)
			}
		}
		if !found {
			s := joinedString(gale.KV[int64, gale.Joined[purchase, customer]]{Key: o.Customer, Value: gale.Joined[purchase, customer]{Left: o, HasLeft: true}})
			left, outer = append(left, s), append(outer, s)
		}
	}
	for _, c := range cs {
		if !matched[c.ID] {
			outer = append(outer, joinedString(gale.KV[int64, gale.Joined[purchase, customer]]{Key: c.ID, Value: gale.Joined[purchase, customer]{Right: c, HasRight: true}}))
		}
	}
	for _, s := range [][]string{inner, left, outer} {
		slices.Sort(s)
	}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		gi, gl, gout, gg := buildJoins(p, nc, np)
		run(t, p, append(opts, gale.Partitions(3))...)
		for _, c := range []struct {
			name string
			got  *gale.Collected[gale.KV[int64, gale.Joined[purchase, customer]]]
			want []string
		}{{"Join", gi, inner}, {"LeftJoin", gl, left}, {"OuterJoin", gout, outer}} {
			var got []string
			for _, kv := range c.got.Values() {
				got = append(got, joinedString(kv))
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: %d pairs, want %d", c.name, len(got), len(c.want))
			}
		}
		keys := map[int64]bool{}
		var nl, nr int
		for _, kv := range gg.Values() {
			if keys[kv.Key] {
				t.Errorf("CoGroupByKey: key %d twice", kv.Key)
			}
			keys[kv.Key] = true
			nl += len(kv.Value.Left)
			nr += len(kv.Value.Right)
		}
		if nl != np || nr != nc {
			t.Errorf("CoGroupByKey: %d left and %d right values, want %d and %d", nl, nr, np, nc)
		}
	})
}
