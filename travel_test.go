package gale_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// Values that configure what workers compute (combiners, MapWith
// parameters) reach worker processes as their JSON encoding. These tests
// pin down that a worker computes exactly what the driver asked for, or
// that the pipeline is refused before anything runs.

// hiddenScale keeps its configuration in an unexported field, which JSON
// does not carry: a worker process would rebuild a combiner without it.
type hiddenScale struct{ factor int64 }

func (hiddenScale) Create() int64                { return 0 }
func (s hiddenScale) Add(a int64, v int64) int64 { return a + s.factor*v }
func (hiddenScale) Merge(a, b int64) int64       { return a + b }
func (hiddenScale) Extract(a int64) int64        { return a }

// Scale is the travelling form of hiddenScale.
type Scale struct{ Factor int64 }

func (Scale) Create() int64                { return 0 }
func (s Scale) Add(a int64, v int64) int64 { return a + s.Factor*v }
func (Scale) Merge(a, b int64) int64       { return a + b }
func (Scale) Extract(a int64) int64        { return a }

// skipScale hides its factor from JSON with a tag.
type skipScale struct {
	Factor int64 `json:"-"`
}

func (skipScale) Create() int64                { return 0 }
func (s skipScale) Add(a int64, v int64) int64 { return a + s.Factor*v }
func (skipScale) Merge(a, b int64) int64       { return a + b }
func (skipScale) Extract(a int64) int64        { return a }

// fnScale carries a function, which no encoding carries.
type fnScale struct {
	F func(int64) int64
}

func (fnScale) Create() int64                { return 0 }
func (s fnScale) Add(a int64, v int64) int64 { return a + s.F(v) }
func (fnScale) Merge(a, b int64) int64       { return a + b }
func (fnScale) Extract(a int64) int64        { return a }

func double(v int64) int64 { return 2 * v }

func scaleInputs() []gale.KV[string, int64] {
	var kvs []gale.KV[string, int64]
	for i := range int64(200) {
		kvs = append(kvs, gale.KV[string, int64]{Key: string(rune('a' + i%5)), Value: i})
	}
	return kvs
}

func scaledPipeline[A gale.Combiner[int64, int64, int64]](p *gale.Pipeline, comb A) *gale.Collected[gale.KV[string, int64]] {
	return gale.Collect(gale.CombinePerKey(gale.FromSlice(p, scaleInputs()), comb))
}

func init() {
	// A worker process configures the combiner with what it knows by
	// itself: factor 1. The driver computes 3 at run time.
	workerPipelines["travel.scale"] = func(p *gale.Pipeline) { scaledPipeline(p, Scale{Factor: 1}) }
}

func wantScaled(factor int64) []gale.KV[string, int64] {
	sums := map[string]int64{}
	for _, kv := range scaleInputs() {
		sums[kv.Key] += factor * kv.Value
	}
	var out []gale.KV[string, int64]
	for k, v := range sums {
		out = append(out, gale.KV[string, int64]{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b gale.KV[string, int64]) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// TestCombinerStateThatCannotTravelIsRefused: a combiner configured in an
// unexported field, a field JSON skips or a func gave one answer on the
// local backend and another on worker processes, without an error. It is
// now refused when the pipeline is built, naming the type and the field.
func TestCombinerStateThatCannotTravelIsRefused(t *testing.T) {
	cases := []struct {
		name string
		add  func(p *gale.Pipeline)
		want []string
	}{
		{"unexported field", func(p *gale.Pipeline) { scaledPipeline(p, hiddenScale{factor: 3}) },
			[]string{"hiddenScale", "unexported field factor", "export the field", "travel_test.go:"}},
		{"json:\"-\" field", func(p *gale.Pipeline) { scaledPipeline(p, skipScale{Factor: 3}) },
			[]string{"skipScale", "Factor", `json:"-"`}},
		{"func field", func(p *gale.Pipeline) { scaledPipeline(p, fnScale{F: double}) },
			[]string{"fnScale", "F", "func"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := gale.NewPipeline()
			c.add(p)
			err := p.Err()
			if err == nil {
				t.Fatal("the pipeline was accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, rerr := gale.Run(context.Background(), p); rerr == nil {
				t.Error("Run ran the refused pipeline")
			}
		})
	}
}

// TestCombinerConfigComputedByTheDriverReachesWorkers: a combiner whose
// (exported) configuration the driver computes at run time gives the
// driver's answer on worker processes that configured it otherwise.
func TestCombinerConfigComputedByTheDriverReachesWorkers(t *testing.T) {
	factor := int64(len("abc")) // known to the driver only
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		out := scaledPipeline(p, Scale{Factor: factor})
		run(t, p, opts...)
		got := slices.Clone(out.Values())
		slices.SortFunc(got, func(a, b gale.KV[string, int64]) int { return strings.Compare(a.Key, b.Key) })
		if want := wantScaled(factor); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// threshold is a MapWith parameter whose state hides from JSON.
type threshold struct{ min int64 }

func keepAbove(th threshold, v int64) bool { return v > th.min }

type withAny struct{ V any }

func keepAny(th withAny, v int64) bool { return th.V != nil }

// TestParamStateThatCannotTravelIsRefused: MapWith's family decodes its
// parameter from JSON on every backend, so a parameter with state JSON
// skips silently became its zero value.
func TestParamStateThatCannotTravelIsRefused(t *testing.T) {
	p := gale.NewPipeline()
	nums := gale.FromSlice(p, []int64{1, 5, 10})
	gale.Collect(gale.FilterWith(nums, keepAbove, threshold{min: 4}))
	err := p.Err()
	if err == nil || !strings.Contains(err.Error(), "threshold") || !strings.Contains(err.Error(), "unexported field min") {
		t.Errorf("FilterWith with an unexported parameter field: %v", err)
	}
	p = gale.NewPipeline()
	nums = gale.FromSlice(p, []int64{1, 5, 10})
	gale.Collect(gale.FilterWith(nums, keepAny, withAny{V: int64(3)}))
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("FilterWith with an interface parameter field: %v", err)
	}
}

func byLen(s string) int { return len(s) }

// TestSortByRefusesKeyPrefix: KeyPrefix applies to Sort's byte keys only;
// SortBy ignored it without a word.
func TestSortByRefusesKeyPrefix(t *testing.T) {
	p := gale.NewPipeline()
	gale.Collect(gale.SortBy(gale.FromSlice(p, []string{"bb", "a"}), byLen, gale.KeyPrefix(1)))
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "KeyPrefix") {
		t.Errorf("SortBy with KeyPrefix: %v", err)
	}
}
