package planner

import (
	"strings"
	"testing"
)

// TestPartitionsFollowTheData: a shuffle's partition count follows its
// input bytes and known key count, not the width of the backend.
func TestPartitionsFollowTheData(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bytes  int64
		keys   int64
		lift   bool
		kind   Kind
		parts  int
		option Options
		why    string
	}{
		{"global aggregate on a 1000-wide backend", 10 << 30, 1, true, Combine, 1, Options{Parallelism: 1000}, "at most its 1 distinct key(s)"},
		{"small combine on a 1000-wide backend", 1 << 20, 0, true, Combine, 1, Options{Parallelism: 1000}, "1.0 MiB of input behind partial aggregates, 64.0 MiB per partition"},
		{"large combine is spread", 10 << 30, 0, true, Combine, 160, Options{Parallelism: 1000}, "10.0 GiB of input"},
		{"large combine stops at the parallelism", 10 << 30, 0, true, Combine, 8, Options{Parallelism: 8}, "capped at the 8 tasks that run at once"},
		{"few keys cap a group", 10 << 30, 3, false, GroupByKey, 3, Options{Parallelism: 1000}, "at most its 3 distinct key(s)"},
		{"a fixed count wins", 10 << 30, 1, true, Combine, 7, Options{Parallelism: 1000, Partitions: 7}, "set for the job"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &graph{}
			s := g.add(Source, "read")
			g.nodes[s].SourceBytes = tc.bytes
			c := g.add(tc.kind, "agg", s)
			g.nodes[c].Keys = tc.keys
			g.nodes[c].Liftable = tc.lift
			g.add(Sink, "write", c)
			p, err := Compile(g.logical(), tc.option)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Shuffles[0].Partitions; got != tc.parts {
				t.Errorf("%d partitions, want %d\n%s", got, tc.parts, p.Explain())
			}
			if ex := p.Explain(); !strings.Contains(p.Shuffles[0].PartitionsWhy, tc.why) || !strings.Contains(ex, "; partitions: "+p.Shuffles[0].PartitionsWhy) {
				t.Errorf("reason %q, want one containing %q, shown by Explain:\n%s", p.Shuffles[0].PartitionsWhy, tc.why, ex)
			}
		})
	}
}
