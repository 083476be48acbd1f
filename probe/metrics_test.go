package probe

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2020, 10, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// ok builds an answered invocation: sent at 0, started and ended at the
// given seconds, returned 0.1 s after its end.
func ok(seq int, inst string, cold bool, start, end float64) Record {
	return Record{Seq: seq, Outcome: OK, Sent: at(0), Returned: at(end + 0.1), Start: at(start), End: at(end),
		Instance: inst, Cold: cold}
}

func TestAnalyzeHandBuiltTraces(t *testing.T) {
	tests := []struct {
		name string
		recs []Record
		want Metrics // only the fields checked below
	}{{
		// Four instances, all cold, all overlapping in [0.5, 1.0].
		name: "all parallel",
		recs: []Record{ok(0, "a", true, 0.3, 1.3), ok(1, "b", true, 0.4, 1.4), ok(2, "c", true, 0.5, 1.5), ok(3, "d", true, 0.2, 1.2)},
		want: Metrics{ParallelDegree: 4, MaxConcurrentInvocations: 4, Instances: 4, ColdStarts: 4, OK: 4,
			CompletionTimeS: 1.6, ColdStartP50Ms: 300, ColdStartP95Ms: 500, RunP50S: 1,
			InvocationsPerInstanceMin: 1, InvocationsPerInstanceMax: 1},
	}, {
		// Azure-like stairs: one instance runs three invocations one after
		// another; a second instance runs one. Back-to-back spans touch
		// but do not overlap.
		name: "stairs",
		recs: []Record{ok(0, "a", true, 2, 3), ok(1, "a", false, 3, 4), ok(2, "a", false, 4, 5), ok(3, "b", true, 4.5, 5.5)},
		want: Metrics{ParallelDegree: 2, MaxConcurrentInvocations: 2, Instances: 2, ColdStarts: 2, OK: 4,
			CompletionTimeS: 5.6, ColdStartP50Ms: 2000, ColdStartP95Ms: 4500, RunP50S: 1,
			InvocationsPerInstanceMin: 1, InvocationsPerInstanceMax: 3},
	}, {
		// Per-instance concurrency: three overlapping invocations on one
		// instance are one busy instance but three concurrent invocations.
		name: "co-located",
		recs: []Record{ok(0, "a", true, 1, 4), ok(1, "a", false, 1, 4), ok(2, "a", false, 1, 4)},
		want: Metrics{ParallelDegree: 1, MaxConcurrentInvocations: 3, Instances: 1, ColdStarts: 1, OK: 3,
			CompletionTimeS: 4.1, ColdStartP50Ms: 1000, ColdStartP95Ms: 1000, RunP50S: 3,
			InvocationsPerInstanceMin: 3, InvocationsPerInstanceMax: 3},
	}, {
		// Failures are counted, not dropped, and a rejected request that
		// came back last still ends the run.
		name: "failures",
		recs: []Record{
			ok(0, "a", true, 0.5, 1.5),
			{Seq: 1, Outcome: OutcomeRejected, Sent: at(0), Returned: at(10), Error: "429"},
			{Seq: 2, Outcome: OutcomeError, Sent: at(0), Returned: at(2)},
			{Seq: 3, Outcome: OutcomeTimeout, Sent: at(0), Returned: at(3)},
			{Seq: 4, Outcome: OutcomeCancelled, Sent: at(0)},
		},
		want: Metrics{ParallelDegree: 1, MaxConcurrentInvocations: 1, Instances: 1, ColdStarts: 1, OK: 1,
			Failures: 4, Rejected: 1, Errors: 1, Timeouts: 1, Cancelled: 1,
			CompletionTimeS: 10, ColdStartP50Ms: 500, ColdStartP95Ms: 500, RunP50S: 1,
			InvocationsPerInstanceMin: 1, InvocationsPerInstanceMax: 1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Trace{Backend: "hand", Invocations: len(tc.recs), Records: tc.recs}
			m := Analyze(tr)
			w := tc.want
			ints := []struct {
				name      string
				got, want int
			}{
				{"ParallelDegree", m.ParallelDegree, w.ParallelDegree},
				{"MaxConcurrentInvocations", m.MaxConcurrentInvocations, w.MaxConcurrentInvocations},
				{"Instances", m.Instances, w.Instances},
				{"ColdStarts", m.ColdStarts, w.ColdStarts},
				{"OK", m.OK, w.OK},
				{"Failures", m.Failures, w.Failures},
				{"Rejected", m.Rejected, w.Rejected},
				{"Errors", m.Errors, w.Errors},
				{"Timeouts", m.Timeouts, w.Timeouts},
				{"Cancelled", m.Cancelled, w.Cancelled},
				{"InvocationsPerInstanceMin", m.InvocationsPerInstanceMin, w.InvocationsPerInstanceMin},
				{"InvocationsPerInstanceMax", m.InvocationsPerInstanceMax, w.InvocationsPerInstanceMax},
			}
			for _, c := range ints {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
			floats := []struct {
				name      string
				got, want float64
			}{
				{"CompletionTimeS", m.CompletionTimeS, w.CompletionTimeS},
				{"ColdStartP50Ms", m.ColdStartP50Ms, w.ColdStartP50Ms},
				{"ColdStartP95Ms", m.ColdStartP95Ms, w.ColdStartP95Ms},
				{"RunP50S", m.RunP50S, w.RunP50S},
				{"ParallelDegreePct", m.ParallelDegreePct, 100 * float64(w.ParallelDegree) / float64(len(tc.recs))},
			}
			for _, c := range floats {
				if math.Abs(c.got-c.want) > 1e-6 {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{15, 20, 35, 40, 50}
	for _, c := range []struct{ p, want float64 }{{5, 15}, {30, 20}, {40, 20}, {50, 35}, {100, 50}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", xs, c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}

func TestConcurrencyCurve(t *testing.T) {
	recs := []Record{ok(0, "a", true, 0, 2), ok(1, "a", false, 1, 3), ok(2, "b", true, 2, 4)}
	got := ConcurrencyCurve(recs, t0, false)
	want := []Point{{0, 1}, {1, 2}, {2, 2}, {3, 1}, {4, 0}}
	if len(got) != len(want) {
		t.Fatalf("invocation curve = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("invocation curve = %v, want %v", got, want)
		}
	}
	// By instance: a is busy [0,3], b [2,4].
	got = ConcurrencyCurve(recs, t0, true)
	want = []Point{{0, 1}, {2, 2}, {3, 1}, {4, 0}}
	if len(got) != len(want) {
		t.Fatalf("instance curve = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("instance curve = %v, want %v", got, want)
		}
	}
}

func TestEstimateHostsFromUptime(t *testing.T) {
	// Two hosts booted 1000 s and 5000 s before t0; three instances on
	// the first read uptimes consistent with it at different start times.
	recs := []Record{ok(0, "a", true, 1, 2), ok(1, "b", true, 3, 4), ok(2, "c", true, 2, 3), ok(3, "d", true, 1, 2)}
	recs[0].UptimeS, recs[1].UptimeS, recs[2].UptimeS = 1001, 1003.2, 1002
	recs[3].UptimeS = 5001
	if got := Analyze(&Trace{Records: recs}).Hosts; got != 2 {
		t.Errorf("Hosts = %d, want 2", got)
	}
}

func TestMetricsJSONKeys(t *testing.T) {
	b, err := json.Marshal(Analyze(&Trace{Records: []Record{ok(0, "a", true, 0, 1)}, Invocations: 1}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"parallel_degree", "parallel_degree_pct", "completion_time_s", "cold_start_p50_ms",
		"cold_start_p95_ms", "failures", "rejected", "instances", "run_p50_s", "run_p99_s", "client_overhead_p50_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics JSON lacks %q: %s", k, b)
		}
	}
}
