package gale_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// Side inputs: orders get their customer's country from a lookup table
// (AsMap), numbers are scaled by their own total (AsSingleton computed
// from the same data, which forces a reshuffle), a filter keeps the
// numbers of a small list (AsSlice), and customers list their orders
// (AsMultiMap).

func country(byID map[int64]string, o purchase) gale.KV[string, int64] {
	return gale.KV[string, int64]{Key: byID[o.Customer], Value: o.Amount}
}
func customerCountry(c customer) gale.KV[int64, string] {
	return gale.KV[int64, string]{Key: c.ID, Value: c.Country}
}
func permille(total int64, x int64) int64 { return x * 1000 / total }
func listed(keep []int64, x int64) bool   { return slices.Contains(keep, x) }
func identity64(i int64) int64            { return i }
func byCustomer(o purchase) gale.KV[int64, int64] {
	return gale.KV[int64, int64]{Key: o.Customer, Value: o.Amount}
}
func keepEvery7(i int64) int64 { return i * 7 }
func ordersOf(m map[int64][]int64, c customer, emit func(string)) {
	amounts := slices.Clone(m[c.ID])
	slices.Sort(amounts)
	emit(fmt.Sprintf("%d:%v", c.ID, amounts))
}

type sideResults struct {
	perCountry *gale.Collected[gale.KV[string, int64]]
	scaled     *gale.Collected[int64]
	kept       *gale.Collected[int64]
	lists      *gale.Collected[string]
}

func buildSides(p *gale.Pipeline, nc, np, nn int64) sideResults {
	cs := gale.Generate(p, nc, makeCustomer)
	ps := gale.Generate(p, np, makePurchase)
	byID := gale.AsMap(gale.Map(cs, customerCountry))
	perCountry := gale.SumPerKey(gale.MapWithSide(ps, country, byID))
	nums := gale.Generate(p, nn, identity64)
	total := gale.AsSingleton(gale.Sum(nums))
	keep := gale.AsSlice(gale.Generate(p, 20, keepEvery7))
	orders := gale.AsMultiMap(gale.Map(ps, byCustomer))
	return sideResults{
		perCountry: gale.Collect(perCountry),
		scaled:     gale.Collect(gale.MapWithSide(nums, permille, total)),
		kept:       gale.Collect(gale.FilterWithSide(nums, listed, keep)),
		lists:      gale.Collect(gale.FlatMapWithSide(cs, ordersOf, orders)),
	}
}

func init() {
	workerPipelines["sides"] = func(p *gale.Pipeline) { buildSides(p, 1, 1, 1) }
}

func TestSideInputs(t *testing.T) {
	const nc, np, nn = 200, 3000, 500
	customers := map[int64]string{}
	for i := range int64(nc) {
		c := makeCustomer(i)
		customers[c.ID] = c.Country
	}
	wantCountry := map[string]int64{}
	wantLists := map[int64][]int64{}
	for i := range int64(np) {
		o := makePurchase(i)
		wantCountry[customers[o.Customer]] += o.Amount // "" for unknown customers, as a Go map lookup gives
		wantLists[o.Customer] = append(wantLists[o.Customer], o.Amount)
	}
	var total int64
	for i := range int64(nn) {
		total += i
	}
	var wantScaled, wantKept []int64
	for i := range int64(nn) {
		wantScaled = append(wantScaled, i*1000/total)
		if i%7 == 0 && i/7 < 20 {
			wantKept = append(wantKept, i)
		}
	}
	var wantStrings []string
	for i := range int64(nc) {
		l := slices.Clone(wantLists[i])
		slices.Sort(l)
		wantStrings = append(wantStrings, fmt.Sprintf("%d:%v", i, l))
	}
	slices.Sort(wantStrings)

	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		r := buildSides(p, nc, np, nn)
		run(t, p, opts...)
		got := map[string]int64{}
		for _, kv := range r.perCountry.Values() {
			got[kv.Key] = kv.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(wantCountry) {
			t.Errorf("per country: got %v, want %v", got, wantCountry)
		}
		scaled := slices.Sorted(slices.Values(r.scaled.Values()))
		if !slices.Equal(scaled, wantScaled) {
			t.Errorf("scaled: got %d values %v..., want %d", len(scaled), scaled[:min(5, len(scaled))], len(wantScaled))
		}
		kept := slices.Sorted(slices.Values(r.kept.Values()))
		if !slices.Equal(kept, wantKept) {
			t.Errorf("kept: got %v, want %v", kept, wantKept)
		}
		lists := slices.Sorted(slices.Values(r.lists.Values()))
		if !slices.Equal(lists, wantStrings) {
			t.Errorf("order lists differ: got %d, want %d", len(lists), len(wantStrings))
		}
	})
}

// TestSideInputPlan checks that a side input computed from the main
// input's own data is read after a reshuffle, that of two stages reading
// each other's side inputs one is cut, and that other readers stay fused.
func TestSideInputPlan(t *testing.T) {
	p := gale.NewPipeline()
	buildSides(p, 10, 10, 10)
	plan, err := gale.Explain(context.Background(), p, gale.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MapWithSide(gale_test.country) with side input AsMap", "Reshuffle", "MapWithSide(gale_test.permille) with side input AsSingleton"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	// The total reads its own data; the customers' stage writes the
	// orders' lookup table and reads the lists the orders' stage writes,
	// so one of those two readers starts a stage of its own as well. The
	// filter by a list of other data needs none.
	if n := strings.Count(plan, "-> GroupByKey"); n != 2 {
		t.Errorf("plan has %d reshuffles, want 2:\n%s", n, plan)
	}
}

func twice(i int64) gale.KV[int64, int64]    { return gale.KV[int64, int64]{Key: i % 3, Value: i} }
func first(m map[int64]int64, x int64) int64 { return m[x] }
func plus(one int64, x int64) int64          { return one + x }
func evens(i int64) bool                     { return i%2 == 0 }

func init() {
	workerPipelines["sides.errors"] = func(p *gale.Pipeline) {
		nums := gale.Generate(p, 1, identity64)
		gale.Collect(gale.MapWithSide(nums, first, gale.AsMap(gale.Map(nums, twice))))
		gale.Collect(gale.MapWithSide(nums, plus, gale.AsSingleton(gale.Filter(nums, evens))))
		gale.Collect(gale.MapWithSide(nums, plus, gale.AsSingleton(gale.Max(gale.Filter(nums, evens)))))
	}
}

// TestSideInputErrors checks that a repeated AsMap key, an AsSingleton of
// several elements and one of none fail the job with errors naming the
// side input, and that a side input larger than half the worker memory is
// refused before its readers run.
func TestSideInputErrors(t *testing.T) {
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		for _, c := range []struct {
			name  string
			build func(p *gale.Pipeline, nums gale.Collection[int64])
			want  []string
		}{
			{"repeated key", func(p *gale.Pipeline, nums gale.Collection[int64]) {
				gale.Collect(gale.MapWithSide(nums, first, gale.AsMap(gale.Map(nums, twice))))
			}, []string{"side input AsMap (sides_test.go:", "appears more than once", "AsMultiMap"}},
			{"several elements", func(p *gale.Pipeline, nums gale.Collection[int64]) {
				gale.Collect(gale.MapWithSide(nums, plus, gale.AsSingleton(gale.Filter(nums, evens))))
			}, []string{"side input AsSingleton (sides_test.go:", "holds 5 elements, want exactly 1"}},
			{"no element", func(p *gale.Pipeline, nums gale.Collection[int64]) {
				gale.Collect(gale.MapWithSide(nums, plus, gale.AsSingleton(gale.Max(gale.Filter(nums, noneKept)))))
			}, []string{"holds 0 elements"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				p := gale.NewPipeline()
				c.build(p, gale.Generate(p, 10, identity64))
				_, err := gale.Run(context.Background(), p, append(opts, gale.MaxAttempts(1))...)
				if err == nil {
					t.Fatal("the job succeeded")
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			})
		}
		t.Run("too large", func(t *testing.T) {
			p := gale.NewPipeline()
			nums := gale.Generate(p, 100, identity64)
			big := gale.AsSlice(gale.Generate(p, 5000, identity64))
			gale.Collect(gale.FilterWithSide(nums, listed, big))
			_, err := gale.Run(context.Background(), p, append(opts, gale.WorkerMemory(16<<10))...)
			if err == nil || !strings.Contains(err.Error(), "side input AsSlice (sides_test.go:") || !strings.Contains(err.Error(), "gale.Join") {
				t.Fatalf("got %v, want the side input refused as too large", err)
			}
		})
	})
	p := gale.NewPipeline()
	nums := gale.Generate(p, 10, identity64)
	gale.MapWithSide(nums, func(s int64, x int64) int64 { return s + x }, gale.AsSingleton(gale.Sum(nums)))
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "closure") {
		t.Errorf("a closure with a side input: got %v, want it refused", err)
	}
}

func noneKept(int64) bool { return false }

func init() {
	workerPipelines["sides.none"] = func(p *gale.Pipeline) {
		nums := gale.Generate(p, 1, identity64)
		gale.Collect(gale.MapWithSide(nums, plus, gale.AsSingleton(gale.Max(gale.Filter(nums, noneKept)))))
		big := gale.AsSlice(gale.Generate(p, 1, identity64))
		gale.Collect(gale.FilterWithSide(nums, listed, big))
	}
}
