package gale_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/examples/wordcount"
)

// order is a user record type that travels between stages.
type order struct {
	Customer string
	Amount   int64
	Price    float64 // a multiple of 1/4, so sums are exact in any order
}

func makeOrder(i int64) order {
	return order{Customer: fmt.Sprintf("c%02d", (i*7)%13), Amount: i%5 + 1, Price: float64(i%8) * 0.25}
}

func isBig(o order) bool        { return o.Amount >= 3 }
func never(o order) bool        { return false }
func customerOf(o order) string { return o.Customer }
func amountOf(o order) int64    { return o.Amount }
func addInt64(a, b int64) int64 { return a + b }
func amountKV(kv gale.KV[string, order]) gale.KV[string, int64] {
	return gale.KV[string, int64]{kv.Key, kv.Value.Amount}
}
func priceKV(kv gale.KV[string, order]) gale.KV[string, float64] {
	return gale.KV[string, float64]{kv.Key, kv.Value.Price}
}

// cappedSum is a user combiner configured by an exported field: it sums
// values capped at Cap and reports "sum/count".
type cappedSum struct{ Cap int64 }

type cappedAcc struct{ Sum, N int64 }

func (cappedSum) Create() cappedAcc { return cappedAcc{} }
func (c cappedSum) Add(a cappedAcc, v int64) cappedAcc {
	return cappedAcc{a.Sum + min(v, c.Cap), a.N + 1}
}
func (cappedSum) Merge(a, b cappedAcc) cappedAcc { return cappedAcc{a.Sum + b.Sum, a.N + b.N} }
func (cappedSum) Extract(a cappedAcc) string     { return fmt.Sprintf("%d/%d", a.Sum, a.N) }
func extraOrders() []order                       { return []order{{"zed", 9, 1.5}, {"c01", 4, 0.75}, {"zed", 1, 2}} }
func canon[T any](xs []T) []string               { return canonf(xs, func(x T) string { return fmt.Sprint(x) }) }
func canonf[T any](xs []T, f func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	sort.Strings(out)
	return out
}

// apiResults are the canonical (sorted, printed) outputs of apiPipeline.
type apiResults map[string][]string

// apiPipeline builds a pipeline that uses most of the API and returns a
// function that reads its results after Run.
func apiPipeline(p *gale.Pipeline, words, out string) func(t *testing.T) apiResults {
	gen := gale.Generate(p, 600, makeOrder)
	all := gale.Flatten(gen, gale.FromSlice(p, extraOrders()))
	big := gale.Filter(all, isBig)
	keyed := gale.KeyBy(big, customerOf)
	amounts := gale.Map(keyed, amountKV)
	sums := gale.SumPerKey(amounts)
	gale.WriteText(sums, out) // fan-out: sums also go to Collect below

	cAll := gale.Collect(all)
	cGroups := gale.Collect(gale.GroupByKey(amounts))
	cCounts := gale.Collect(gale.CountPerKey(keyed))
	cSums := gale.Collect(sums)
	cPrices := gale.Collect(gale.SumPerKey(gale.Map(keyed, priceKV)))
	cCapped := gale.Collect(gale.CombinePerKey(amounts, cappedSum{Cap: 3}))
	cTotal := gale.Collect(gale.Reduce(gale.Map(big, amountOf), addInt64))
	cEmpty := gale.Collect(gale.Reduce(gale.Map(gale.Filter(all, never), amountOf), addInt64))
	cWords := gale.Collect(wordcount.Build(p, []string{words}, ""))
	return func(t *testing.T) apiResults {
		groups := canonf(cGroups.Values(), func(kv gale.KV[string, []int64]) string {
			vs := slices.Clone(kv.Value)
			slices.Sort(vs) // values of a key are a multiset
			return fmt.Sprint(kv.Key, vs)
		})
		return apiResults{
			"all": canon(cAll.Values()), "groups": groups, "counts": canon(cCounts.Values()),
			"sums": canon(cSums.Values()), "prices": canon(cPrices.Values()), "capped": canon(cCapped.Values()),
			"total": canon(cTotal.Values()), "empty": canon(cEmpty.Values()), "words": canon(cWords.Values()),
			"text": readSortedLines(t, out),
		}
	}
}

func readSortedLines(t *testing.T, dir string) []string {
	t.Helper()
	lines := readCommitted(t, dir)
	sort.Strings(lines)
	return lines
}

// expectedAPI computes apiPipeline's results with plain loops.
func expectedAPI(t *testing.T, words string) apiResults {
	var all []order
	for i := range int64(600) {
		all = append(all, makeOrder(i))
	}
	all = append(all, extraOrders()...)
	groups := map[string][]int64{}
	counts := map[string]int64{}
	sums := map[string]int64{}
	prices := map[string]float64{}
	capped := map[string]cappedAcc{}
	var total int64
	for _, o := range all {
		if !isBig(o) {
			continue
		}
		groups[o.Customer] = append(groups[o.Customer], o.Amount)
		counts[o.Customer]++
		sums[o.Customer] += o.Amount
		prices[o.Customer] += o.Price
		capped[o.Customer] = cappedSum{Cap: 3}.Add(capped[o.Customer], o.Amount)
		total += o.Amount
	}
	r := apiResults{"all": canon(all), "empty": canon([]int64(nil)), "total": canon([]int64{total})}
	for k, vs := range groups {
		slices.Sort(vs)
		r["groups"] = append(r["groups"], fmt.Sprint(k, vs))
		r["counts"] = append(r["counts"], fmt.Sprint(gale.KV[string, int64]{k, counts[k]}))
		r["sums"] = append(r["sums"], fmt.Sprint(gale.KV[string, int64]{k, sums[k]}))
		r["prices"] = append(r["prices"], fmt.Sprint(gale.KV[string, float64]{k, prices[k]}))
		r["capped"] = append(r["capped"], fmt.Sprint(gale.KV[string, string]{k, cappedSum{}.Extract(capped[k])}))
		r["text"] = append(r["text"], fmt.Sprintf("%s\t%d", k, sums[k]))
	}
	for w, c := range refCount(t, words) {
		r["words"] = append(r["words"], fmt.Sprint(gale.KV[string, int64]{w, c}))
	}
	for _, v := range r {
		sort.Strings(v)
	}
	return r
}

func TestAPIAgainstIndependentComputation(t *testing.T) {
	words := corpus(t, t.TempDir(), "words.txt", 40<<10, 31, nil)
	want := expectedAPI(t, words)
	configs := []struct {
		name   string
		opts   []gale.RunOption
		faults *faulty.Config
	}{
		{"one worker", []gale.RunOption{gale.Workers(1)}, nil},
		{"four workers", []gale.RunOption{gale.Workers(4), gale.Partitions(3), gale.ChunkSize(4 << 10)}, nil},
		{"one partition no lifting", []gale.RunOption{gale.Workers(2), gale.Partitions(1), gale.NoCombinerLifting()}, nil},
		{"many partitions tiny chunks", []gale.RunOption{gale.Workers(3), gale.Partitions(7), gale.ChunkSize(777)}, nil},
		{"faults", []gale.RunOption{gale.Workers(4), gale.Partitions(4), gale.MaxAttempts(10), gale.JobID("api-faults")},
			&faulty.Config{Seed: 9, RejectRate: 0.1, FailRate: 0.1, LoseRate: 0.1, DuplicateRate: 0.1, DelayRate: 0.1, MaxDelay: 1e6}},
	}
	var first apiResults
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sums")
			p := gale.NewPipeline()
			results := apiPipeline(p, words, out)
			opts := tc.opts
			if tc.faults != nil {
				fb := newFaulty(t, *tc.faults)
				opts = append(opts, gale.WithBackend("faulty", fb))
				defer func() {
					if t.Failed() {
						t.Logf("faults: seed %d, %+v", tc.faults.Seed, fb.Stats())
					}
				}()
			}
			if _, err := gale.Run(context.Background(), p, opts...); err != nil {
				t.Fatal(err)
			}
			got := results(t)
			for k, w := range want {
				if !slices.Equal(got[k], w) {
					t.Errorf("%s: got %d elements, want %d\n got: %.300s\nwant: %.300s", k, len(got[k]), len(w),
						strings.Join(got[k], " "), strings.Join(w, " "))
				}
			}
			// Metamorphic: every configuration gives identical results.
			if first == nil {
				first = got
			} else if fmt.Sprint(first) != fmt.Sprint(got) {
				t.Error("results differ from the first configuration's")
			}
		})
	}
}

func TestRunTwiceCollectsFresh(t *testing.T) {
	p := gale.NewPipeline()
	c := gale.Collect(gale.Reduce(gale.Generate(p, 10, int64Of), addInt64))
	for range 2 {
		if _, err := gale.Run(context.Background(), p, gale.Workers(2)); err != nil {
			t.Fatal(err)
		}
		if got := c.Values(); !slices.Equal(got, []int64{45}) {
			t.Fatalf("Values = %v, want [45]", got)
		}
	}
}

func int64Of(i int64) int64 { return i }
