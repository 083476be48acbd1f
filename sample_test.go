package gale_test

import (
	"slices"
	"testing"

	"github.com/galeproject/gale"
)

func buildSamples(p *gale.Pipeline) (some, all *gale.Collected[[]int64], perKey *gale.Collected[gale.KV[int64, []int64]]) {
	nums := gale.Generate(p, 1000, identity64)
	return gale.Collect(gale.Sample(nums, 10)), gale.Collect(gale.Sample(gale.Generate(p, 7, identity64), 10)),
		gale.Collect(gale.SamplePerKey(gale.Map(nums, kvMod7), 3))
}

func init() {
	workerPipelines["samples"] = func(p *gale.Pipeline) { buildSamples(p) }
}

// TestSample checks Sample's and SamplePerKey's results on the local and
// process backends: the requested number of distinct elements of the
// input (of the key), or all of a smaller input. Uniformity is checked on
// the combiner (TestSampleUniform).
func TestSample(t *testing.T) {
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		some, all, perKey := buildSamples(p)
		run(t, p, opts...)
		check := func(what string, s []int64, n int, ok func(int64) bool) {
			t.Helper()
			if len(s) != n {
				t.Errorf("%s: %d elements, want %d", what, len(s), n)
			}
			sorted := slices.Sorted(slices.Values(s))
			if len(slices.Compact(sorted)) != len(s) {
				t.Errorf("%s: repeated elements in %v", what, s)
			}
			for _, x := range s {
				if !ok(x) {
					t.Errorf("%s: %d is not in the input", what, x)
				}
			}
		}
		if v := some.Values(); len(v) != 1 {
			t.Fatalf("Sample gave %d results, want 1", len(v))
		}
		check("Sample", some.Values()[0], 10, func(x int64) bool { return x >= 0 && x < 1000 })
		if got := slices.Sorted(slices.Values(all.Values()[0])); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6}) {
			t.Errorf("Sample of 7 elements: got %v, want all 7", got)
		}
		if len(perKey.Values()) != 7 {
			t.Errorf("SamplePerKey: %d keys, want 7", len(perKey.Values()))
		}
		for _, kv := range perKey.Values() {
			check("SamplePerKey", kv.Value, 3, func(x int64) bool { return x%7 == kv.Key && x >= 0 && x < 1000 })
		}
	})
}
