package planner

import (
	"strings"
	"testing"
)

// TestAutoStrategy checks --shuffle auto's choice per shuffle and that the
// plan says why: glider for a sort and for an unlifted combine merge
// actions can fold, data shipping for a lifted combine (unless its known
// keys keep the partial aggregates large), for a group, and for everything
// when no Glider cluster is reachable; a fixed strategy gives no reason.
func TestAutoStrategy(t *testing.T) {
	const mib = 1 << 20
	type shuffleWant struct {
		glider bool
		reason string // a substring of the reason
	}
	for _, tc := range []struct {
		name  string
		build func(g *graph) (shuffleNode int)
		opt   func(n int) Options
		want  shuffleWant
	}{
		{"sort", func(g *graph) int {
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = 512 * mib
			srt := g.add(Sort, "sort", s)
			g.add(Sink, "write", srt)
			return srt
		}, func(int) Options { return Options{Parallelism: 2, Glider: true, GliderAuto: true} },
			shuffleWant{true, "auto: glider, the sort moves all of its ~512.0 MiB"}},
		{"lifted combine", func(g *graph) int {
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = 256 * mib
			c := g.add(Combine, "count", s)
			g.add(Sink, "write", c)
			return c
		}, func(int) Options { return Options{Parallelism: 2, Glider: true, GliderAuto: true} },
			shuffleWant{false, "auto: data shipping, lifting shrinks ~256.0 MiB"}},
		{"lifted combine over few keys", func(g *graph) int {
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = 256 * mib
			c := g.add(Combine, "count", s)
			g.nodes[c].Keys = 1024
			g.add(Sink, "write", c)
			return c
		}, func(int) Options { return Options{Parallelism: 2, Glider: true, GliderAuto: true} },
			shuffleWant{false, "to ~64.0 KiB of partial aggregates (1024 keys)"}},
		{"lifted combine over keys too many to shrink", func(g *graph) int {
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = 64 * mib
			c := g.add(Combine, "count", s)
			g.nodes[c].Keys = 10_000_000
			g.add(Sink, "write", c)
			return c
		}, func(int) Options { return Options{Parallelism: 2, Glider: true, GliderAuto: true} },
			shuffleWant{true, "auto: glider, 10000000 keys keep the partial aggregates"}},
		{"unlifted combine merge actions fold", func(g *graph) int {
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = 80 * mib
			c := g.add(Combine, "sum", s)
			g.add(Sink, "write", c)
			return c
		}, func(c int) Options {
			return Options{Parallelism: 2, NoLift: true, Glider: true, GliderAuto: true, GliderUnlifted: map[int]bool{c: true}}
		}, shuffleWant{true, "every value (~80.0 MiB) crosses the shuffle unlifted"}},
		{"group", func(g *graph) int {
			s := g.add(Source, "read")
			c := g.add(GroupByKey, "group", s)
			g.add(Sink, "write", c)
			return c
		}, func(int) Options { return Options{Parallelism: 2, Glider: true, GliderAuto: true} },
			shuffleWant{false, "Glider takes only sorts"}},
		{"no cluster reachable", func(g *graph) int {
			s := g.add(Source, "read")
			srt := g.add(Sort, "sort", s)
			g.add(Sink, "write", srt)
			return srt
		}, func(int) Options {
			return Options{Parallelism: 2, GliderAuto: true, GliderUnavailable: "backend sim:aws cannot reach an embedded Glider cluster"}
		}, shuffleWant{false, "auto: data shipping, backend sim:aws cannot reach"}},
		{"fixed glider strategy", func(g *graph) int {
			s := g.add(Source, "read")
			srt := g.add(Sort, "sort", s)
			g.add(Sink, "write", srt)
			return srt
		}, func(int) Options { return Options{Parallelism: 2, Glider: true} }, shuffleWant{true, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &graph{}
			n := tc.build(g)
			plan, err := Compile(g.logical(), tc.opt(n))
			if err != nil {
				t.Fatal(err)
			}
			sh := plan.Shuffles[0]
			if sh.Glider != tc.want.glider || (tc.want.reason == "") != (sh.StrategyReason == "") ||
				!strings.Contains(sh.StrategyReason, tc.want.reason) {
				t.Fatalf("glider=%v reason %q, want glider=%v and a reason holding %q", sh.Glider, sh.StrategyReason, tc.want.glider, tc.want.reason)
			}
			if tc.want.reason != "" && !strings.Contains(plan.Explain(), sh.StrategyReason) {
				t.Errorf("the plan's explanation does not give the reason:\n%s", plan.Explain())
			}
		})
	}
}
