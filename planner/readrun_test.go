package planner

import "testing"

func TestReadRun(t *testing.T) {
	for _, c := range []struct {
		m     int64
		parts int
		max   int64
		want  int
	}{
		{200, 200, 100_000, 1},     // 40,000 reads: within the bound
		{200, 200, 4_000, 10},      // 20 reduce tasks of 10 partitions
		{1000, 1000, 100_000, 10},  // 100 reduce tasks
		{4096, 4000, 100_000, 167}, // 24 tasks x 4096 reads = 98,304
		{200_000, 10, 100_000, 10}, // M alone is over: one reduce task
		{5, 1, 1, 1},
		{0, 100, 1, 1},
	} {
		got := ReadRun(c.m, c.parts, c.max)
		if got != c.want {
			t.Errorf("ReadRun(%d, %d, %d) = %d, want %d", c.m, c.parts, c.max, got, c.want)
		}
		tasks := (c.parts + got - 1) / got
		if reads := c.m * int64(tasks); got > 1 && tasks > 1 && reads > c.max {
			t.Errorf("ReadRun(%d, %d, %d) = %d: %d reads", c.m, c.parts, c.max, got, reads)
		}
	}
}

// TestCompileCoalescesLargeShuffles: a shuffle of 200 map tasks into 200
// partitions under a 4,000-read bound is read by 20 reduce tasks of 10
// partitions each; one whose node fixes its partitions, or within the
// bound, is not.
func TestCompileCoalescesLargeShuffles(t *testing.T) {
	l := Logical{Nodes: []Node{
		{ID: 0, Kind: Source, Label: "src", Splits: 200},
		{ID: 1, Kind: GroupByKey, Label: "group", Inputs: []int{0}, Kernel: "k"},
		{ID: 2, Kind: Sink, Label: "out", Inputs: []int{1}},
	}}
	for _, c := range []struct {
		name      string
		max       int64
		fixed     int
		wantRun   int
		wantTasks int
	}{
		{"over the bound", 4_000, 0, 10, 20},
		{"default bound", 0, 0, 1, 200},
		{"no bound", -1, 0, 1, 200},
		{"fixed by the node", 4_000, 200, 1, 200},
	} {
		l.Nodes[1].Partitions = c.fixed
		p, err := Compile(l, Options{Partitions: 200, MaxShuffleReads: c.max})
		if err != nil {
			t.Fatal(err)
		}
		sh := p.Shuffles[0]
		if sh.Partitions != 200 || sh.ReadRun != c.wantRun || p.Stages[sh.Consumer].Tasks != c.wantTasks {
			t.Errorf("%s: %d partitions, read run %d, %d reduce tasks; want 200, %d, %d\n%s",
				c.name, sh.Partitions, sh.ReadRun, p.Stages[sh.Consumer].Tasks, c.wantRun, c.wantTasks, p.Explain())
		}
	}
}
