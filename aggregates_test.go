package gale_test

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/galeproject/gale"
)

// aggValue is the i-th input of the aggregate tests: a skewed spread of
// values with repeats.
func aggValue(i int64) int64 { return (i * i * 7919) % 1013 }

func aggKey(v int64) string { return fmt.Sprintf("k%d", v%7) }

// aggregates is every global and per-key aggregate over the same input,
// plus the empty-input cases.
type aggregates struct {
	count, sum                    *gale.Collected[int64]
	min, max                      *gale.Collected[int64]
	mean                          *gale.Collected[float64]
	largest, smallest             *gale.Collected[[]int64]
	distinct                      *gale.Collected[int64]
	combined                      *gale.Collected[int64]
	emptyCount                    *gale.Collected[int64]
	emptyMax                      *gale.Collected[int64]
	emptyLargest                  *gale.Collected[[]int64]
	largestPerKey, smallestPerKey *gale.Collected[gale.KV[string, []int64]]
	minPerKey, maxPerKey          *gale.Collected[gale.KV[string, int64]]
	meanPerKey                    *gale.Collected[gale.KV[string, float64]]
}

func buildAggregates(p *gale.Pipeline, n int64, scale int64) *aggregates {
	xs := gale.Generate(p, n, aggValue)
	none := gale.Filter(xs, isNever)
	keyed := gale.KeyBy(xs, aggKey)
	return &aggregates{
		count: gale.Collect(gale.Count(xs)), sum: gale.Collect(gale.Sum(xs)),
		min: gale.Collect(gale.Min(xs)), max: gale.Collect(gale.Max(xs)), mean: gale.Collect(gale.Mean(xs)),
		largest: gale.Collect(gale.Largest(xs, 5)), smallest: gale.Collect(gale.Smallest(xs, 3)),
		distinct:   gale.Collect(gale.Distinct(xs)),
		combined:   gale.Collect(gale.Combine(xs, Scale{Factor: scale})),
		emptyCount: gale.Collect(gale.Count(none)), emptyMax: gale.Collect(gale.Max(none)),
		emptyLargest:  gale.Collect(gale.Largest(none, 2)),
		largestPerKey: gale.Collect(gale.LargestPerKey(keyed, 2)), smallestPerKey: gale.Collect(gale.SmallestPerKey(keyed, 2)),
		minPerKey: gale.Collect(gale.MinPerKey(keyed)), maxPerKey: gale.Collect(gale.MaxPerKey(keyed)),
		meanPerKey: gale.Collect(gale.MeanPerKey(keyed)),
	}
}

func isNever(int64) bool { return false }

func init() {
	workerPipelines["aggregates"] = func(p *gale.Pipeline) { buildAggregates(p, 1, 1) }
}

func one[T any](t *testing.T, what string, c *gale.Collected[T]) T {
	t.Helper()
	v := c.Values()
	if len(v) != 1 {
		t.Fatalf("%s: %d elements, want 1", what, len(v))
	}
	return v[0]
}

// TestGlobalAndPerKeyAggregates checks every aggregate against a
// sequential computation, on the local and process backends, with and
// without combiner lifting and with several partitions.
func TestGlobalAndPerKeyAggregates(t *testing.T) {
	const n = 5000
	var xs []int64
	for i := range int64(n) {
		xs = append(xs, aggValue(i))
	}
	var sum int64
	perKey := map[string][]int64{}
	for _, x := range xs {
		sum += x
		perKey[aggKey(x)] = append(perKey[aggKey(x)], x)
	}
	sorted := slices.Sorted(slices.Values(xs))
	desc := slices.Clone(sorted)
	slices.Reverse(desc)
	distinct := slices.Compact(slices.Clone(sorted))
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		for _, extra := range [][]gale.RunOption{nil, {gale.NoCombinerLifting(), gale.Partitions(3)}} {
			p := gale.NewPipeline()
			a := buildAggregates(p, n, 3)
			run(t, p, append(slices.Clone(opts), extra...)...)
			if got := one(t, "Count", a.count); got != n {
				t.Errorf("Count = %d", got)
			}
			if got := one(t, "Sum", a.sum); got != sum {
				t.Errorf("Sum = %d, want %d", got, sum)
			}
			if got := one(t, "Min", a.min); got != sorted[0] {
				t.Errorf("Min = %d", got)
			}
			if got := one(t, "Max", a.max); got != desc[0] {
				t.Errorf("Max = %d", got)
			}
			if got, want := one(t, "Mean", a.mean), float64(sum)/n; math.Abs(got-want) > 1e-9 {
				t.Errorf("Mean = %v, want %v", got, want)
			}
			if got := one(t, "Largest", a.largest); !slices.Equal(got, desc[:5]) {
				t.Errorf("Largest = %v, want %v", got, desc[:5])
			}
			if got := one(t, "Smallest", a.smallest); !slices.Equal(got, sorted[:3]) {
				t.Errorf("Smallest = %v, want %v", got, sorted[:3])
			}
			if got := slices.Sorted(slices.Values(a.distinct.Values())); !slices.Equal(got, distinct) {
				t.Errorf("Distinct: %d values, want %d", len(got), len(distinct))
			}
			if got := one(t, "Combine", a.combined); got != 3*sum {
				t.Errorf("Combine = %d, want %d", got, 3*sum)
			}
			if got := one(t, "Count of nothing", a.emptyCount); got != 0 {
				t.Errorf("Count of nothing = %d", got)
			}
			if got := a.emptyMax.Values(); len(got) != 0 {
				t.Errorf("Max of nothing = %v, want no element", got)
			}
			if got := one(t, "Largest of nothing", a.emptyLargest); got == nil || len(got) != 0 {
				t.Errorf("Largest of nothing = %#v, want an empty slice", got)
			}
			checkPerKey(t, "LargestPerKey", a.largestPerKey.Values(), perKey, func(vs []int64) []int64 {
				s := slices.SortedFunc(slices.Values(vs), func(a, b int64) int { return cmp.Compare(b, a) })
				return s[:min(2, len(s))]
			})
			checkPerKey(t, "SmallestPerKey", a.smallestPerKey.Values(), perKey, func(vs []int64) []int64 {
				s := slices.Sorted(slices.Values(vs))
				return s[:min(2, len(s))]
			})
			checkPerKey(t, "MinPerKey", a.minPerKey.Values(), perKey, func(vs []int64) int64 { return slices.Min(vs) })
			checkPerKey(t, "MaxPerKey", a.maxPerKey.Values(), perKey, func(vs []int64) int64 { return slices.Max(vs) })
			checkPerKey(t, "MeanPerKey", a.meanPerKey.Values(), perKey, func(vs []int64) float64 {
				var s int64
				for _, v := range vs {
					s += v
				}
				return float64(s) / float64(len(vs))
			})
		}
	})
}

func checkPerKey[O any](t *testing.T, what string, got []gale.KV[string, O], groups map[string][]int64, want func([]int64) O) {
	t.Helper()
	if len(got) != len(groups) {
		t.Errorf("%s: %d keys, want %d", what, len(got), len(groups))
	}
	for _, kv := range got {
		w := want(groups[kv.Key])
		if fmt.Sprint(kv.Value) != fmt.Sprint(w) {
			t.Errorf("%s[%s] = %v, want %v", what, kv.Key, kv.Value, w)
		}
	}
}

// TestMinMaxIgnoreNaN: a NaN among floats does not hide the extremes.
func TestMinMaxIgnoreNaN(t *testing.T) {
	p := gale.NewPipeline()
	xs := gale.FromSlice(p, []float64{3, math.NaN(), -2, 7, math.NaN()})
	lo, hi := gale.Collect(gale.Min(xs)), gale.Collect(gale.Max(xs))
	top := gale.Collect(gale.Largest(xs, 2))
	run(t, p, gale.Workers(2))
	if one(t, "Min", lo) != -2 || one(t, "Max", hi) != 7 || !slices.Equal(one(t, "Largest", top), []float64{7, 3}) {
		t.Errorf("Min %v Max %v Largest %v", lo.Values(), hi.Values(), top.Values())
	}
}
