package planner

import (
	"strings"
	"testing"
)

// graph builds logical graphs tersely for tests.
type graph struct{ nodes []Node }

func (g *graph) add(kind Kind, label string, inputs ...int) int {
	id := len(g.nodes)
	n := Node{ID: id, Kind: kind, Label: label, Inputs: inputs, Kernel: "k:" + label, Elem: "e"}
	if kind == Source {
		n.Splits, n.SourceBytes = 4, 1<<30
	}
	if kind == Combine {
		n.Liftable = true
	}
	g.nodes = append(g.nodes, n)
	return id
}

func (g *graph) logical() Logical { return Logical{Nodes: g.nodes} }

func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		build     func(g *graph)
		opt       Options
		stages    int
		tasks     []int
		shuffles  []int // partitions per shuffle
		combined  []bool
		explainHs []string // substrings Explain must contain
	}{
		{
			name: "word count fuses map into the source stage and lifts the combiner",
			build: func(g *graph) {
				s := g.add(Source, "read")
				f := g.add(Narrow, "split", s)
				c := g.add(Combine, "count", f)
				g.add(Sink, "write", c)
			},
			opt:    Options{Parallelism: 3},
			stages: 2, tasks: []int{4, 3}, shuffles: []int{3}, combined: []bool{true},
			explainHs: []string{"stage 0: 4 task(s) reading read", "combined per key", "stage 1: 3 task(s) reading shuffle 0"},
		},
		{
			name: "group by key partitions by size",
			build: func(g *graph) {
				s := g.add(Source, "read")
				k := g.add(Narrow, "key", s)
				gb := g.add(GroupByKey, "group", k)
				g.add(Sink, "write", gb)
			},
			opt:    Options{Parallelism: 2, PartitionBytes: 300 << 20},
			stages: 2, tasks: []int{4, 4}, shuffles: []int{4}, combined: []bool{false},
		},
		{
			name: "no lifting and a fixed partition count",
			build: func(g *graph) {
				s := g.add(Source, "read")
				c := g.add(Combine, "sum", s)
				g.add(Sink, "write", c)
			},
			opt:    Options{Parallelism: 2, Partitions: 7, NoLift: true},
			stages: 2, tasks: []int{4, 7}, shuffles: []int{7}, combined: []bool{false},
			explainHs: []string{"values combined"},
		},
		{
			name: "flatten of two sources feeding one shuffle makes two producers",
			build: func(g *graph) {
				a := g.add(Source, "a")
				b := g.add(Source, "b")
				f := g.add(Flatten, "both", a, b)
				c := g.add(Combine, "count", f)
				g.add(Sink, "write", c)
			},
			opt:    Options{Parallelism: 2},
			stages: 3, tasks: []int{4, 4, 2}, shuffles: []int{2}, combined: []bool{true},
			explainHs: []string{"after stage(s) 0, 1"},
		},
		{
			name: "fan-out feeds a sink and a shuffle from one stage; dead branches are pruned",
			build: func(g *graph) {
				s := g.add(Source, "read")
				m := g.add(Narrow, "map", s)
				g.add(Sink, "raw", m)
				g.add(Narrow, "unused", m)
				c := g.add(Combine, "count", m)
				g.add(Sink, "counts", c)
			},
			opt:    Options{Parallelism: 1},
			stages: 2, tasks: []int{4, 1}, shuffles: []int{1}, combined: []bool{true},
		},
		{
			name: "chained shuffles",
			build: func(g *graph) {
				s := g.add(Source, "read")
				c := g.add(Combine, "count", s)
				m := g.add(Narrow, "swap", c)
				gb := g.add(GroupByKey, "byCount", m)
				g.add(Sink, "write", gb)
			},
			opt:    Options{Parallelism: 2, PartitionBytes: 1 << 30},
			stages: 3, tasks: []int{4, 2, 1}, shuffles: []int{2, 1}, combined: []bool{true, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &graph{}
			tc.build(g)
			p, err := Compile(g.logical(), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Stages) != tc.stages {
				t.Fatalf("%d stages, want %d:\n%s", len(p.Stages), tc.stages, p.Explain())
			}
			for i, st := range p.Stages {
				if st.Tasks != tc.tasks[i] {
					t.Errorf("stage %d: %d tasks, want %d", i, st.Tasks, tc.tasks[i])
				}
				for _, d := range st.Deps {
					if d >= i {
						t.Errorf("stage %d depends on later stage %d", i, d)
					}
				}
			}
			for i, sh := range p.Shuffles {
				if sh.Partitions != tc.shuffles[i] || sh.Combined != tc.combined[i] {
					t.Errorf("shuffle %d: %d partitions combined=%v, want %d %v", i, sh.Partitions, sh.Combined, tc.shuffles[i], tc.combined[i])
				}
			}
			ex := p.Explain()
			for _, h := range tc.explainHs {
				if !strings.Contains(ex, h) {
					t.Errorf("Explain lacks %q:\n%s", h, ex)
				}
			}
			if strings.Contains(ex, "unused") {
				t.Errorf("a dead branch survived:\n%s", ex)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	l := Logical{Nodes: []Node{
		{ID: 0, Kind: Source, Label: "src"},                 // no splits
		{ID: 1, Kind: Narrow, Label: "m", Inputs: []int{5}}, // reads a later node
		{ID: 2, Kind: Flatten, Label: "f"},                  // no inputs
		{ID: 7, Kind: Narrow, Label: "bad id", Inputs: []int{0}},
	}}
	err := l.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken graph")
	}
	for _, want := range []string{"0 splits", "does not precede", "flatten 2", "has ID 7", "no sink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSortPlansSamplingBeforePartitioning(t *testing.T) {
	g := &graph{}
	s := g.add(Source, "read")
	m := g.add(Narrow, "parse", s)
	g.add(Sink, "raw", m)
	srt := g.add(Sort, "sort", m)
	g.add(Sink, "write", srt)
	p, err := Compile(g.logical(), Options{Parallelism: 2, SortPartitionBytes: 300 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 3 {
		t.Fatalf("%d stages:\n%s", len(p.Stages), p.Explain())
	}
	smp, part, sorted := p.Stages[0], p.Stages[1], p.Stages[2]
	if smp.Role != Sampling || smp.SortShuffle != 0 || smp.Tasks != 4 {
		t.Errorf("stage 0 should sample shuffle 0 with 4 tasks: %+v", smp)
	}
	for _, op := range smp.Ops {
		if op.Kind == OpSink || op.Kind == OpShuffleWrite {
			t.Errorf("sampling stage kept %v", op.Kind)
		}
	}
	if len(part.Deps) != 1 || part.Deps[0] != 0 {
		t.Errorf("partitioning stage deps = %v, want [0]", part.Deps)
	}
	sh := p.Shuffles[0]
	if !sh.Range || sh.Partitions != 4 || len(sh.Samplers) != 1 || sorted.Tasks != 4 {
		t.Errorf("sort shuffle = %+v, sorted stage tasks %d", sh, sorted.Tasks)
	}
	if ex := p.Explain(); !strings.Contains(ex, "sampling keys") || !strings.Contains(ex, "range-partitioned") {
		t.Errorf("Explain:\n%s", ex)
	}
}
