package planner

import (
	"fmt"
	"strings"
	"testing"
)

// TestSideInputs checks that a stage reading a side input waits for the
// stages that write it, that stages are renumbered so each follows its
// dependencies, and that a stage waiting for itself is refused.
func TestSideInputs(t *testing.T) {
	t.Run("side from a shuffle stage reorders the reading source stage", func(t *testing.T) {
		g := &graph{}
		small := g.add(Source, "small")
		agg := g.add(Combine, "total", small)
		side := g.add(Sink, "AsSingleton", agg)
		big := g.add(Source, "big")
		m := g.add(Narrow, "scale", big)
		g.nodes[m].Sides = []int{side}
		g.add(Sink, "write", m)
		plan, err := Compile(g.logical(), Options{Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		var reader, writer = -1, -1
		for _, st := range plan.Stages {
			for _, dep := range st.Deps {
				if dep >= st.ID {
					t.Errorf("stage %d depends on stage %d, which does not precede it", st.ID, dep)
				}
			}
			for _, op := range st.Ops {
				if op.Kind == OpSink && op.Node == side {
					writer = st.ID
				}
				if op.Node == m {
					reader = st.ID
					if len(op.Sides) != 1 || op.Sides[0] != side {
						t.Errorf("op of the side reader has sides %v, want [%d]", op.Sides, side)
					}
				}
			}
		}
		if reader < 0 || writer < 0 {
			t.Fatalf("reader stage %d, writer stage %d", reader, writer)
		}
		if !containsInt(plan.Stages[reader].Deps, writer) {
			t.Errorf("reader stage %d deps %v lack the side's writer %d", reader, plan.Stages[reader].Deps, writer)
		}
		sh := plan.Shuffles[0]
		if plan.Stages[sh.Consumer].Input != FromShuffle || !containsInt(sh.Producers, 0) {
			t.Errorf("shuffle renumbered wrongly: producers %v consumer %d", sh.Producers, sh.Consumer)
		}
		ex := plan.Explain()
		if !strings.Contains(ex, "with side input AsSingleton") {
			t.Errorf("Explain does not name the side input:\n%s", ex)
		}
		if want := fmt.Sprintf("stage %d: 4 task(s) reading big [1.0 GiB] after stage(s) %d", reader, writer); !strings.Contains(ex, want) {
			t.Errorf("Explain lacks %q:\n%s", want, ex)
		}
	})
	t.Run("a stage reading its own side input is refused", func(t *testing.T) {
		g := &graph{}
		s := g.add(Source, "read")
		agg := g.add(Combine, "total", s)
		side := g.add(Sink, "AsSingleton", agg)
		m := g.add(Narrow, "scale", s)
		g.nodes[m].Sides = []int{side}
		g.add(Sink, "write", m)
		_, err := Compile(g.logical(), Options{Parallelism: 2})
		if err == nil || !strings.Contains(err.Error(), "wait for each other") {
			t.Fatalf("got %v, want a side-input cycle error", err)
		}
	})
	t.Run("only narrow nodes read sink nodes as side inputs", func(t *testing.T) {
		g := &graph{}
		s := g.add(Source, "read")
		c := g.add(Combine, "count", s)
		g.nodes[c].Sides = []int{s}
		g.add(Sink, "write", c)
		err := g.logical().Validate()
		if err == nil || !strings.Contains(err.Error(), "only narrow nodes") {
			t.Fatalf("got %v", err)
		}
	})
}
