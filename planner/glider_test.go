package planner

import (
	"strings"
	"testing"
)

// TestGliderLowering checks the glider strategy's plan decisions: which
// shuffles go through actions, which sorts' actions write the output,
// which filters run in filter actions, and that nothing is lowered without
// the caller's say-so.
func TestGliderLowering(t *testing.T) {
	type want struct {
		glider, output []bool // per shuffle
		valueKey       []int
		filterStage    int // stage reading through filter actions, -1 none
	}
	for _, tc := range []struct {
		name  string
		build func(g *graph) (sortNode, filterNode int)
		opt   func(sortNode, filterNode int) Options
		want  want
	}{
		{
			name: "a sort feeding only a sink writes its output; a filter on the source is lowered",
			build: func(g *graph) (int, int) {
				s := g.add(Source, "read")
				f := g.add(Narrow, "filter", s)
				srt := g.add(Sort, "sort", f)
				g.add(Sink, "write", srt)
				return srt, f
			},
			opt: func(srt, f int) Options {
				return Options{Parallelism: 2, Glider: true, GliderSortSinks: map[int]bool{srt: true},
					GliderFilters: map[int]bool{f: true}, GliderValueKeys: map[int]int{srt: 10}}
			},
			want: want{glider: []bool{true}, output: []bool{true}, valueKey: []int{10}, filterStage: 1},
		},
		{
			name: "without the glider strategy nothing is lowered",
			build: func(g *graph) (int, int) {
				s := g.add(Source, "read")
				f := g.add(Narrow, "filter", s)
				srt := g.add(Sort, "sort", f)
				g.add(Sink, "write", srt)
				return srt, f
			},
			opt: func(srt, f int) Options {
				return Options{Parallelism: 2, GliderSortSinks: map[int]bool{srt: true}, GliderFilters: map[int]bool{f: true}}
			},
			want: want{glider: []bool{false}, output: []bool{false}, valueKey: []int{-1}, filterStage: 0},
		},
		{
			name: "a sort whose consumer stage does more than sink is read back; a source with two consumers is not filtered in Glider",
			build: func(g *graph) (int, int) {
				s := g.add(Source, "read")
				f := g.add(Narrow, "filter", s)
				g.add(Sink, "raw", s)
				srt := g.add(Sort, "sort", f)
				m := g.add(Narrow, "format", srt)
				g.add(Sink, "write", m)
				return srt, f
			},
			opt: func(srt, f int) Options {
				return Options{Parallelism: 2, Glider: true, GliderSortSinks: map[int]bool{srt: true}, GliderFilters: map[int]bool{f: true}}
			},
			want: want{glider: []bool{true}, output: []bool{false}, valueKey: []int{-1}, filterStage: -1},
		},
		{
			name: "a lifted combine goes through merge actions, a group by key ships data",
			build: func(g *graph) (int, int) {
				s := g.add(Source, "read")
				c := g.add(Combine, "count", s)
				gb := g.add(GroupByKey, "group", c)
				g.add(Sink, "write", gb)
				return -1, -1
			},
			opt:  func(int, int) Options { return Options{Parallelism: 2, Glider: true} },
			want: want{glider: []bool{true, false}, output: []bool{false, false}, valueKey: []int{-1, -1}, filterStage: -1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &graph{}
			srt, f := tc.build(g)
			p, err := Compile(g.logical(), tc.opt(srt, f))
			if err != nil {
				t.Fatal(err)
			}
			for i, sh := range p.Shuffles {
				if sh.Glider != tc.want.glider[i] || sh.GliderOutput != tc.want.output[i] || sh.GliderValueKey != tc.want.valueKey[i] {
					t.Errorf("shuffle %d: glider %v, output %v, value key %d; want %v, %v, %d\n%s", i, sh.Glider, sh.GliderOutput,
						sh.GliderValueKey, tc.want.glider[i], tc.want.output[i], tc.want.valueKey[i], p.Explain())
				}
			}
			lowered := -1
			for _, st := range p.Stages {
				if st.GliderFilter {
					if st.FilterNode != f {
						t.Errorf("stage %d lowers node %d, want %d", st.ID, st.FilterNode, f)
					}
					for _, op := range st.Ops {
						if op.Node == f {
							t.Errorf("stage %d runs the lowered filter in its workers too", st.ID)
						}
					}
					if st.Role == Compute {
						lowered = st.ID
					}
				}
			}
			if tc.want.filterStage == 0 {
				tc.want.filterStage = -1
			}
			if lowered != tc.want.filterStage {
				t.Errorf("compute stage reading through filter actions: %d, want %d\n%s", lowered, tc.want.filterStage, p.Explain())
			}
			ex := p.Explain()
			if lowered >= 0 && !strings.Contains(ex, "through Glider filter actions applying filter") {
				t.Errorf("Explain does not show the lowered filter:\n%s", ex)
			}
			if tc.want.output[0] && !strings.Contains(ex, "sort action writes its part file") {
				t.Errorf("Explain does not show the sort actions writing the output:\n%s", ex)
			}
		})
	}
}
