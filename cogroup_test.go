package gale_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/galeproject/gale"
)

func kvMod7(i int64) gale.KV[int64, int64] { return gale.KV[int64, int64]{Key: i % 7, Value: i} }
func kvMod5s(i int64) gale.KV[int64, string] {
	return gale.KV[int64, string]{Key: i % 5, Value: fmt.Sprint("s", i)}
}
func kvMod9f(i int64) gale.KV[int64, float64] {
	return gale.KV[int64, float64]{Key: i % 9, Value: float64(i) / 2}
}
func kvMod4b(i int64) gale.KV[int64, bool] {
	return gale.KV[int64, bool]{Key: i%4 + 6, Value: i%2 == 0}
}

type coGroupResults struct {
	three *gale.Collected[gale.KV[int64, gale.CoGrouped3[int64, string, float64]]]
	four  *gale.Collected[gale.KV[int64, gale.CoGrouped4[int64, string, float64, bool]]]
	n     *gale.Collected[gale.KV[int64, [][]int64]]
}

func buildCoGroups(p *gale.Pipeline) coGroupResults {
	a := gale.Map(gale.Generate(p, 40, identity64), kvMod7)
	b := gale.Map(gale.Generate(p, 30, identity64), kvMod5s)
	c := gale.Map(gale.Generate(p, 20, identity64), kvMod9f)
	d := gale.Map(gale.Generate(p, 10, identity64), kvMod4b)
	a2 := gale.Map(gale.Generate(p, 25, keepEvery7), kvMod7)
	return coGroupResults{
		three: gale.Collect(gale.CoGroupByKey3(a, b, c)),
		four:  gale.Collect(gale.CoGroupByKey4(a, b, c, d)),
		n:     gale.Collect(gale.CoGroupByKeyN(a, a2, a)),
	}
}

func init() {
	workerPipelines["cogroups"] = func(p *gale.Pipeline) { buildCoGroups(p) }
}

func sortedOf[T any](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	slices.Sort(s)
	return fmt.Sprint(s)
}

// TestCoGroupByKeyMany checks CoGroupByKey3, 4 and N against groups built
// here from the same inputs, on the local and process backends.
func TestCoGroupByKeyMany(t *testing.T) {
	type group [4][]string
	want3, want4, wantN := map[int64]*group{}, map[int64]*group{}, map[int64]*group{}
	add := func(m map[int64]*group, side int, k int64, v any) {
		if m[k] == nil {
			m[k] = &group{}
		}
		m[k][side] = append(m[k][side], fmt.Sprint(v))
	}
	for i := range int64(40) {
		kv := kvMod7(i)
		add(want3, 0, kv.Key, kv.Value)
		add(want4, 0, kv.Key, kv.Value)
		add(wantN, 0, kv.Key, kv.Value)
		add(wantN, 2, kv.Key, kv.Value)
	}
	for i := range int64(30) {
		kv := kvMod5s(i)
		add(want3, 1, kv.Key, kv.Value)
		add(want4, 1, kv.Key, kv.Value)
	}
	for i := range int64(20) {
		kv := kvMod9f(i)
		add(want3, 2, kv.Key, kv.Value)
		add(want4, 2, kv.Key, kv.Value)
	}
	for i := range int64(10) {
		kv := kvMod4b(i)
		add(want4, 3, kv.Key, kv.Value)
	}
	for i := range int64(25) {
		kv := kvMod7(keepEvery7(i))
		add(wantN, 1, kv.Key, kv.Value)
	}
	render := func(m map[int64]*group, sides int) []string {
		var out []string
		for k, g := range m {
			s := fmt.Sprint(k)
			for i := range sides {
				s += " " + sortedOf(g[i])
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		r := buildCoGroups(p)
		run(t, p, append(opts, gale.Partitions(3))...)
		got3, got4, gotN := map[int64]*group{}, map[int64]*group{}, map[int64]*group{}
		for _, kv := range r.three.Values() {
			got3[kv.Key] = &group{}
			for _, v := range kv.Value.First {
				add(got3, 0, kv.Key, v)
			}
			for _, v := range kv.Value.Second {
				add(got3, 1, kv.Key, v)
			}
			for _, v := range kv.Value.Third {
				add(got3, 2, kv.Key, v)
			}
		}
		for _, kv := range r.four.Values() {
			got4[kv.Key] = &group{}
			for _, v := range kv.Value.First {
				add(got4, 0, kv.Key, v)
			}
			for _, v := range kv.Value.Second {
				add(got4, 1, kv.Key, v)
			}
			for _, v := range kv.Value.Third {
				add(got4, 2, kv.Key, v)
			}
			for _, v := range kv.Value.Fourth {
				add(got4, 3, kv.Key, v)
			}
		}
		for _, kv := range r.n.Values() {
			if len(kv.Value) != 3 {
				t.Fatalf("CoGroupByKeyN: key %d has %d inputs' values, want 3", kv.Key, len(kv.Value))
			}
			gotN[kv.Key] = &group{}
			for side, vs := range kv.Value {
				for _, v := range vs {
					add(gotN, side, kv.Key, v)
				}
			}
		}
		for _, c := range []struct {
			name      string
			got, want map[int64]*group
			sides     int
		}{{"CoGroupByKey3", got3, want3, 3}, {"CoGroupByKey4", got4, want4, 4}, {"CoGroupByKeyN", gotN, wantN, 3}} {
			if g, w := render(c.got, c.sides), render(c.want, c.sides); !slices.Equal(g, w) {
				t.Errorf("%s:\ngot  %v\nwant %v", c.name, g, w)
			}
		}
	})
}
