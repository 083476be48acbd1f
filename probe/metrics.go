package probe

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Metrics are the thesis's measures of one probe run (section 3.3.6),
// computed from a Trace by Analyze. Durations are in seconds or
// milliseconds as their names say; a percentile over no samples is 0.
type Metrics struct {
	Backend     string  `json:"backend"`
	Task        Task    `json:"task"`
	DurationS   float64 `json:"duration_s"`
	MemoryMiB   int     `json:"memory_mib,omitempty"`
	Invocations int     `json:"invocations"`
	Warm        int     `json:"warm,omitempty"`
	Interrupted bool    `json:"interrupted,omitempty"`

	// OK counts invocations that ran and answered; Failures counts the
	// others, broken down in Errors, Rejected, Timeouts and Cancelled.
	OK        int `json:"ok"`
	Failures  int `json:"failures"`
	Errors    int `json:"errors"`
	Rejected  int `json:"rejected"`
	Timeouts  int `json:"timeouts"`
	Cancelled int `json:"cancelled"`

	// CompletionTimeS runs from the first request sent to the last
	// answer received, whatever its outcome.
	CompletionTimeS float64 `json:"completion_time_s"`
	// ParallelDegree is the most instances running at least one
	// invocation at the same instant; ParallelDegreePct relates it to
	// Invocations. MaxConcurrentInvocations counts invocations instead of
	// instances: they differ where an instance runs several at once.
	ParallelDegree           int     `json:"parallel_degree"`
	ParallelDegreePct        float64 `json:"parallel_degree_pct"`
	MaxConcurrentInvocations int     `json:"max_concurrent_invocations"`
	// Instances is the number of distinct instances that ran an
	// invocation; InvocationsPerInstance{Min,Mean,Max} how they shared the
	// load.
	Instances                  int     `json:"instances"`
	InvocationsPerInstanceMin  int     `json:"invocations_per_instance_min"`
	InvocationsPerInstanceMean float64 `json:"invocations_per_instance_mean"`
	InvocationsPerInstanceMax  int     `json:"invocations_per_instance_max"`
	// Hosts estimates the machines behind the instances from the uptime
	// hint: instances whose boot times (start minus uptime) lie within a
	// second of each other share a host. Zero without the hint.
	Hosts int `json:"hosts_estimated,omitempty"`

	// ColdStarts counts invocations that started a new instance.
	// ColdStartP50Ms and ColdStartP95Ms are their start latency (from the
	// request sent to the task started inside the function: network,
	// scheduling, queueing and instance creation).
	ColdStarts     int     `json:"cold_starts"`
	ColdStartP50Ms float64 `json:"cold_start_p50_ms"`
	ColdStartP95Ms float64 `json:"cold_start_p95_ms"`
	// StartLatency{P50,P95}Ms is the same latency over every answered
	// invocation, warm or cold.
	StartLatencyP50Ms float64 `json:"start_latency_p50_ms"`
	StartLatencyP95Ms float64 `json:"start_latency_p95_ms"`

	// Run{P50,P99,Max}S is the spread of in-function durations (task end
	// minus start), which exposes CPU sharing and interference.
	RunP50S float64 `json:"run_p50_s"`
	RunP99S float64 `json:"run_p99_s"`
	RunMaxS float64 `json:"run_max_s"`
	// ClientOverhead{P50,P99}Ms is the round trip minus the in-function
	// duration: what the client, the network and the platform add to the
	// task, reported apart from it.
	ClientOverheadP50Ms float64 `json:"client_overhead_p50_ms"`
	ClientOverheadP99Ms float64 `json:"client_overhead_p99_ms"`
}

// Analyze computes the metrics of a trace's measured round.
func Analyze(tr *Trace) Metrics {
	m := Metrics{Backend: tr.Backend, Task: tr.Task, DurationS: tr.DurationS, MemoryMiB: tr.MemoryMiB,
		Invocations: tr.Invocations, Warm: tr.Warm, Interrupted: tr.Interrupted}
	recs := tr.Records
	var first, last time.Time
	var coldLat, lat, run, over []float64
	perInst := map[string]int{}
	for _, r := range recs {
		switch r.Outcome {
		case OK:
			m.OK++
		case OutcomeRejected:
			m.Rejected++
		case OutcomeTimeout:
			m.Timeouts++
		case OutcomeCancelled:
			m.Cancelled++
		default:
			m.Errors++
		}
		if !r.Sent.IsZero() && (first.IsZero() || r.Sent.Before(first)) {
			first = r.Sent
		}
		if r.Outcome != OutcomeCancelled && r.Returned.After(last) {
			last = r.Returned
		}
		if r.Outcome != OK {
			continue
		}
		if r.Instance != "" {
			perInst[r.Instance]++
		}
		l := ms(r.Start.Sub(r.Sent))
		lat = append(lat, l)
		if r.Cold {
			m.ColdStarts++
			coldLat = append(coldLat, l)
		}
		d := r.End.Sub(r.Start)
		run = append(run, d.Seconds())
		over = append(over, ms(r.Returned.Sub(r.Sent)-d))
	}
	m.Failures = len(recs) - m.OK
	if !first.IsZero() && last.After(first) {
		m.CompletionTimeS = last.Sub(first).Seconds()
	}
	m.ParallelDegree = maxOverlap(instanceIntervals(recs))
	m.MaxConcurrentInvocations = maxOverlap(invocationIntervals(recs))
	if tr.Invocations > 0 {
		m.ParallelDegreePct = 100 * float64(m.ParallelDegree) / float64(tr.Invocations)
	}
	m.Instances = len(perInst)
	if m.Instances > 0 {
		m.InvocationsPerInstanceMin = math.MaxInt
		total := 0
		for _, n := range perInst {
			total += n
			m.InvocationsPerInstanceMin = min(m.InvocationsPerInstanceMin, n)
			m.InvocationsPerInstanceMax = max(m.InvocationsPerInstanceMax, n)
		}
		m.InvocationsPerInstanceMean = float64(total) / float64(m.Instances)
	}
	m.Hosts = estimateHosts(recs)
	m.ColdStartP50Ms, m.ColdStartP95Ms = Percentile(coldLat, 50), Percentile(coldLat, 95)
	m.StartLatencyP50Ms, m.StartLatencyP95Ms = Percentile(lat, 50), Percentile(lat, 95)
	m.RunP50S, m.RunP99S, m.RunMaxS = Percentile(run, 50), Percentile(run, 99), Percentile(run, 100)
	m.ClientOverheadP50Ms, m.ClientOverheadP99Ms = Percentile(over, 50), Percentile(over, 99)
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Percentile returns the p-th percentile (0 < p ≤ 100) of xs by the
// nearest-rank method: the smallest value with at least p% of the samples
// at or below it. It does not modify xs; it returns 0 for no samples.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Interval is a span of time during which something was busy.
type Interval struct{ Start, End time.Time }

// invocationIntervals returns the in-function span of every answered
// invocation.
func invocationIntervals(recs []Record) []Interval {
	var iv []Interval
	for _, r := range recs {
		if r.Outcome == OK && r.End.After(r.Start) {
			iv = append(iv, Interval{r.Start, r.End})
		}
	}
	return iv
}

// instanceIntervals returns, per instance, the union of the spans of its
// invocations: the times it was busy. An instance running two
// overlapping invocations is one busy instance, not two.
func instanceIntervals(recs []Record) []Interval {
	byInst := map[string][]Interval{}
	for _, r := range recs {
		if r.Outcome == OK && r.End.After(r.Start) {
			key := r.Instance
			if key == "" {
				key = fmt.Sprintf("#%d", r.Seq) // unknown instance: count it alone
			}
			byInst[key] = append(byInst[key], Interval{r.Start, r.End})
		}
	}
	var out []Interval
	for _, iv := range byInst {
		sort.Slice(iv, func(i, j int) bool { return iv[i].Start.Before(iv[j].Start) })
		cur := iv[0]
		for _, x := range iv[1:] {
			if x.Start.After(cur.End) {
				out = append(out, cur)
				cur = x
			} else if x.End.After(cur.End) {
				cur.End = x.End
			}
		}
		out = append(out, cur)
	}
	return out
}

// step is a change of the busy count at an instant.
type step struct {
	t     time.Time
	delta int
}

// steps returns the +1/-1 changes of intervals in time order, ends before
// starts at the same instant, so spans that only touch do not overlap.
func steps(iv []Interval) []step {
	s := make([]step, 0, 2*len(iv))
	for _, x := range iv {
		s = append(s, step{x.Start, +1}, step{x.End, -1})
	}
	sort.Slice(s, func(i, j int) bool {
		if !s[i].t.Equal(s[j].t) {
			return s[i].t.Before(s[j].t)
		}
		return s[i].delta < s[j].delta
	})
	return s
}

// maxOverlap returns the most intervals open at one instant.
func maxOverlap(iv []Interval) int {
	best, cur := 0, 0
	for _, s := range steps(iv) {
		cur += s.delta
		best = max(best, cur)
	}
	return best
}

// Point is one point of a step curve: from T on, the value is N.
type Point struct {
	T float64 // seconds since the curve's origin
	N int
}

// ConcurrencyCurve returns the number of invocations (byInstance false)
// or of busy instances (true) over time, as a step curve whose times are
// seconds since origin.
func ConcurrencyCurve(recs []Record, origin time.Time, byInstance bool) []Point {
	iv := invocationIntervals(recs)
	if byInstance {
		iv = instanceIntervals(recs)
	}
	pts := []Point{{0, 0}}
	cur := 0
	for _, s := range steps(iv) {
		cur += s.delta
		t := s.t.Sub(origin).Seconds()
		if n := len(pts); pts[n-1].T == t {
			pts[n-1].N = cur
		} else {
			pts = append(pts, Point{t, cur})
		}
	}
	return pts
}

// Origin returns the time the trace's measured round began: its earliest
// send, or its earliest start if no send was recorded.
func (tr *Trace) Origin() time.Time {
	var o time.Time
	for _, r := range tr.Records {
		for _, t := range []time.Time{r.Sent, r.Start} {
			if !t.IsZero() && (o.IsZero() || t.Before(o)) {
				o = t
			}
		}
	}
	return o
}

// estimateHosts clusters boot times (start minus uptime) one second
// apart, as the thesis did on IBM Cloud Functions.
func estimateHosts(recs []Record) int {
	var boots []float64
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Outcome != OK || r.UptimeS <= 0 || seen[r.Instance] {
			continue
		}
		seen[r.Instance] = true
		boots = append(boots, float64(r.Start.UnixNano())/1e9-r.UptimeS)
	}
	if len(boots) == 0 {
		return 0
	}
	sort.Float64s(boots)
	hosts := 1
	for i := 1; i < len(boots); i++ {
		if boots[i]-boots[i-1] > 1 {
			hosts++
		}
	}
	return hosts
}

// Print writes m as a two-column table.
func (m Metrics) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	mem := "default"
	if m.MemoryMiB > 0 {
		mem = fmt.Sprintf("%d MiB", m.MemoryMiB)
	}
	row("backend", "%s", m.Backend)
	row("run (I/W/T/M)", "%d/%d/%s %gs/%s", m.Invocations, m.Warm, m.Task, m.DurationS, mem)
	if m.Interrupted {
		row("interrupted", "yes: figures cover what was measured before the interruption")
	}
	row("completion time", "%.2f s", m.CompletionTimeS)
	row("parallel degree", "%d (%.0f%% of %d)", m.ParallelDegree, m.ParallelDegreePct, m.Invocations)
	row("max concurrent invocations", "%d", m.MaxConcurrentInvocations)
	row("instances", "%d (invocations each: min %d, mean %.1f, max %d)", m.Instances,
		m.InvocationsPerInstanceMin, m.InvocationsPerInstanceMean, m.InvocationsPerInstanceMax)
	if m.Hosts > 0 {
		row("hosts (uptime hint)", "%d", m.Hosts)
	}
	row("cold starts", "%d (start latency p50 %.0f ms, p95 %.0f ms)", m.ColdStarts, m.ColdStartP50Ms, m.ColdStartP95Ms)
	row("start latency, all", "p50 %.0f ms, p95 %.0f ms", m.StartLatencyP50Ms, m.StartLatencyP95Ms)
	row("in-function duration", "p50 %.3f s, p99 %.3f s, max %.3f s", m.RunP50S, m.RunP99S, m.RunMaxS)
	row("client overhead", "p50 %.1f ms, p99 %.1f ms", m.ClientOverheadP50Ms, m.ClientOverheadP99Ms)
	var f []string
	for _, x := range []struct {
		n    int
		name string
	}{{m.Errors, "errors"}, {m.Rejected, "rejected"}, {m.Timeouts, "timeouts"}, {m.Cancelled, "cancelled"}} {
		if x.n > 0 {
			f = append(f, fmt.Sprintf("%d %s", x.n, x.name))
		}
	}
	if len(f) == 0 {
		row("failures", "none")
	} else {
		row("failures", "%d (%s)", m.Failures, strings.Join(f, ", "))
	}
	tw.Flush()
}

// PrintComparison writes several runs side by side, one column per run,
// in the layout of the thesis's Table 3.4.
func PrintComparison(w io.Writer, ms []Metrics) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	line := func(name string, f func(m Metrics) string) {
		fmt.Fprint(tw, name)
		for _, m := range ms {
			fmt.Fprint(tw, "\t", f(m))
		}
		fmt.Fprintln(tw)
	}
	line("", func(m Metrics) string { return m.Backend })
	line("cold start p50 / p95", func(m Metrics) string {
		return fmt.Sprintf("%s / %s", human(m.ColdStartP50Ms), human(m.ColdStartP95Ms))
	})
	line("completion time", func(m Metrics) string { return fmt.Sprintf("%.1f s", m.CompletionTimeS) })
	line("parallel degree", func(m Metrics) string {
		return fmt.Sprintf("%d (%.0f%%)", m.ParallelDegree, m.ParallelDegreePct)
	})
	line("instances", func(m Metrics) string { return fmt.Sprint(m.Instances) })
	line("run time p50 / p99", func(m Metrics) string { return fmt.Sprintf("%.2f / %.2f s", m.RunP50S, m.RunP99S) })
	line("failures", func(m Metrics) string {
		switch {
		case m.Failures == 0:
			return "none"
		case m.Rejected == m.Failures:
			return fmt.Sprintf("%d rejects", m.Rejected)
		}
		return fmt.Sprintf("%d (%d rejects)", m.Failures, m.Rejected)
	})
	tw.Flush()
}

// human formats milliseconds as ms below one second, else as seconds.
func human(msv float64) string {
	if msv < 1000 {
		return fmt.Sprintf("%.0f ms", msv)
	}
	return fmt.Sprintf("%.1f s", msv/1000)
}
