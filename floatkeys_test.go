package gale_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/galeproject/gale"
)

// point is a struct key with a float field.
type point struct{ X, Y float64 }

func floatKeys() []float64 {
	negZero := math.Copysign(0, -1)
	return []float64{0, negZero, negZero, math.NaN(), math.Float64frombits(0x7ff8000000000bad), math.NaN(), 1.5, 1.5}
}

func pointOf(f float64) point { return point{X: f, Y: 1} }

func init() {
	workerPipelines["floatkeys"] = func(p *gale.Pipeline) {
		gale.Collect(gale.CountPerElement(gale.FromSlice(p, floatKeys())))
		gale.Collect(gale.CountPerElement(gale.Map(gale.FromSlice(p, floatKeys()), pointOf)))
	}
}

// describe renders float counts so that NaN compares.
func describe[K any](kvs []gale.KV[K, int64]) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, fmt.Sprintf("%v=%d", kv.Key, kv.Value))
	}
	slices.Sort(out)
	return out
}

// TestFloatKeysGroupByValue: -0 and +0 keys formed two groups and NaNs one
// only when their bits agreed. Float keys now group as Go's == would, -0
// with +0, except that every NaN joins one group (documented), with or
// without combiner lifting and on every backend, also inside struct keys.
func TestFloatKeysGroupByValue(t *testing.T) {
	want := []string{"0=3", "1.5=2", "NaN=3"}
	wantPoints := []string{"{0 1}=3", "{1.5 1}=2", "{NaN 1}=3"}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		for _, lift := range []bool{true, false} {
			o := opts
			if !lift {
				o = append(slices.Clone(opts), gale.NoCombinerLifting())
			}
			p := gale.NewPipeline()
			counts := gale.Collect(gale.CountPerElement(gale.FromSlice(p, floatKeys())))
			points := gale.Collect(gale.CountPerElement(gale.Map(gale.FromSlice(p, floatKeys()), pointOf)))
			run(t, p, append(o, gale.Partitions(3))...)
			if got := describe(counts.Values()); !slices.Equal(got, want) {
				t.Errorf("lifting %v: float keys %v, want %v", lift, got, want)
			}
			if got := describe(points.Values()); !slices.Equal(got, wantPoints) {
				t.Errorf("lifting %v: struct keys %v, want %v", lift, got, wantPoints)
			}
		}
	})
}
