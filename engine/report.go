package engine

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/planner"
)

// Report describes a job run: per stage and task, wall time, records,
// bytes per storage tier and retries. It is safe to read after Run returns;
// during the run the engine updates it under its lock.
type Report struct {
	mu sync.Mutex

	JobID   string        `json:"job_id"`
	Backend string        `json:"backend"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end"`
	Stages  []StageReport `json:"stages"`
	// Outputs lists the committed output locations.
	Outputs []string `json:"outputs,omitempty"`
	// Collected lists, per Collect sink node, the objects in the temporary
	// store that hold its records, in order.
	Collected map[int][]string `json:"-"`
	// Warnings lists problems that did not fail the job (an events file
	// that could not be written).
	Warnings []string `json:"warnings,omitempty"`
	// Shuffles reports each shuffle's strategy and how much it stored.
	Shuffles []ShuffleReport `json:"shuffles,omitempty"`
	// Sizing says how the planner chose each source stage's task count
	// and each shuffle's partition count (planner.Node.SplitsWhy,
	// planner.Shuffle.PartitionsWhy).
	Sizing []string `json:"sizing,omitempty"`
	// Throttled counts invocations the platform throttled during the job
	// (retried with backoff by the backend), for backends that count them.
	Throttled int64 `json:"throttled,omitempty"`
	// Invocations counts every attempt invoked, failed ones included, and
	// BilledSeconds sums their durations as the client saw them.
	Invocations   int64   `json:"invocations"`
	BilledSeconds float64 `json:"billed_seconds"`
	// Cost estimates the run's price in US dollars on its backend from the
	// backend's traits (memory × billed time × price per GB-second, plus
	// the price per request); 0 when the backend publishes no prices.
	Cost float64 `json:"cost_usd"`
	// SimulatedSeconds is, on a backend that runs tasks in simulated time
	// (a Simulator, such as backends/sim), the job's makespan in that
	// time: how long the job is predicted to take on the modelled
	// platform. BilledSeconds and Cost are then simulated too. Zero on
	// other backends.
	SimulatedSeconds float64 `json:"simulated_seconds,omitempty"`
	// SimulatedStorage is, on a backend that models its object store (a
	// StorageSimulator), what the job's storage requests cost there.
	SimulatedStorage *StorageReport `json:"simulated_storage,omitempty"`
	// Backups counts backup attempts launched for stragglers and
	// BackupsWon those that finished first; TimedOut counts attempts
	// abandoned at their deadline. WastedSeconds sums the client-side
	// time of every abandoned attempt (lost to another attempt or timed
	// out), part of BilledSeconds.
	Backups       int     `json:"backups,omitempty"`
	BackupsWon    int     `json:"backups_won,omitempty"`
	TimedOut      int     `json:"timed_out,omitempty"`
	WastedSeconds float64 `json:"wasted_seconds,omitempty"`
	// Interrupted is the cause of the job's interruption (its context
	// ended before it finished: ErrInterrupted), "" if it was not
	// interrupted. InterruptedAttempts counts the attempts in flight
	// then, cancelled and counted neither as failed nor as done.
	Interrupted         string `json:"interrupted,omitempty"`
	InterruptedAttempts int    `json:"interrupted_attempts,omitempty"`
}

// Simulator is implemented by backends that run tasks in simulated time
// (backends/sim). Run reads both clocks before and after the job: the
// growth of SimulatedElapsed is the job's predicted makespan
// (Report.SimulatedSeconds), and that of SimulatedBilled, the simulated
// in-function time of its invocations, replaces the client's wall time in
// BilledSeconds and Cost. Backends without it are priced on wall time.
type Simulator interface {
	SimulatedElapsed() time.Duration
	SimulatedBilled() time.Duration
}

// StorageSimulator is implemented by simulated backends that model the
// object store their functions use (backends/sim): its name ("" when none
// is modelled), the GET and PUT requests served so far, those delayed by
// its request-rate limits (throttled) and their price in US dollars. Run
// reads it before and after the job (Report.SimulatedStorage).
type StorageSimulator interface {
	SimulatedStorage() (name string, gets, puts, throttled int64, cost float64)
}

// StorageReport is the modelled store's share of a simulated job.
type StorageReport struct {
	Model     string  `json:"model"`
	Gets      int64   `json:"gets"`
	Puts      int64   `json:"puts"`
	Throttled int64   `json:"throttled"`
	Cost      float64 `json:"cost_usd"`
}

// simClock is a Simulator's reading at the start of a job.
type simClock struct {
	s               Simulator
	elapsed, billed time.Duration
	st              StorageSimulator // nil unless the backend models storage
	storage         StorageReport
}

func readSimClock(b backends.Backend) *simClock {
	s, ok := b.(Simulator)
	if !ok {
		return nil
	}
	c := &simClock{s: s, elapsed: s.SimulatedElapsed(), billed: s.SimulatedBilled()}
	if st, ok := b.(StorageSimulator); ok {
		if name, gets, puts, thr, cost := st.SimulatedStorage(); name != "" {
			c.st, c.storage = st, StorageReport{Model: name, Gets: gets, Puts: puts, Throttled: thr, Cost: cost}
		}
	}
	return c
}

// simulated records the simulated makespan and billed time since c was
// read.
func (r *Report) simulated(c *simClock) {
	if c == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.SimulatedSeconds = (c.s.SimulatedElapsed() - c.elapsed).Seconds()
	r.BilledSeconds = (c.s.SimulatedBilled() - c.billed).Seconds()
	if c.st != nil {
		name, gets, puts, thr, cost := c.st.SimulatedStorage()
		r.SimulatedStorage = &StorageReport{Model: name, Gets: gets - c.storage.Gets, Puts: puts - c.storage.Puts,
			Throttled: thr - c.storage.Throttled, Cost: cost - c.storage.Cost}
	}
}

// invoked records one invocation's client-side duration.
func (r *Report) invoked(seconds float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Invocations++
	r.BilledSeconds += seconds
}

// priced sets Cost from the backend's traits.
func (r *Report) priced(t backends.Traits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Cost = r.BilledSeconds*float64(t.MemoryMiB)/1024*t.PricePerGBSecond + float64(r.Invocations)*t.PricePerRequest
}

// StageReport describes one stage.
type StageReport struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Tasks   int    `json:"tasks"`
	Done    int    `json:"done"`
	Running int    `json:"running"`
	Failed  int    `json:"failed_attempts"`
	Retries int    `json:"retries"`
	// Backups, BackupsWon and TimedOut are the stage's share of the
	// job's counts (Report.Backups).
	Backups    int           `json:"backups,omitempty"`
	BackupsWon int           `json:"backups_won,omitempty"`
	TimedOut   int           `json:"timed_out,omitempty"`
	Start      time.Time     `json:"start"`
	End        time.Time     `json:"end"`
	Metrics    Metrics       `json:"metrics"`
	TaskRows   []TaskReport  `json:"tasks_detail"`
	Wall       time.Duration `json:"wall_ns"`
}

// ShuffleReport describes one shuffle.
type ShuffleReport struct {
	ID         int    `json:"id"`
	Strategy   string `json:"strategy"`
	Partitions int    `json:"partitions"`
	// ReadRun is how many contiguous partitions of each map output one
	// reduce task read with one request (planner.Shuffle.ReadRun); 0 or 1
	// when reads were not coalesced.
	ReadRun int `json:"read_run,omitempty"`
	// BytesStored is what the shuffle kept in storage between its stages:
	// the map outputs' partitions (data shipping), or the state of its
	// Glider actions when the reduce stage started (glider).
	BytesStored int64 `json:"bytes_stored"`
	// BytesWrittenByActions is what a glider sort's actions wrote straight
	// to storage as the output's part files (Shuffle.GliderOutput): moved
	// inside the store, never through a worker. BytesCopiedAtCommit is
	// the part of it the driver copied to an output outside the job's
	// Glider namespace when committing (zero when the output is in it).
	BytesWrittenByActions int64 `json:"bytes_written_by_actions,omitempty"`
	BytesCopiedAtCommit   int64 `json:"bytes_copied_at_commit,omitempty"`
}

// TaskReport describes the winning attempt of one task.
type TaskReport struct {
	Task     int           `json:"task"`
	Attempts int           `json:"attempts"`
	Instance string        `json:"instance"`
	Cold     bool          `json:"cold"`
	Wall     time.Duration `json:"wall_ns"`
	Metrics  Metrics       `json:"metrics"`
}

// NewReport returns the empty report of a job that runs the stages of g
// (stage i is g.Stages[i], named by its label), starting now, for a
// driver loop to fill (LoopConfig.Report).
func NewReport(jobID, backend string, g TaskGraph) *Report {
	r := &Report{JobID: jobID, Backend: backend, Start: time.Now(), Collected: map[int][]string{}}
	for i, st := range g.Stages {
		r.Stages = append(r.Stages, StageReport{ID: i, Name: st.Label, Tasks: st.Tasks, TaskRows: make([]TaskReport, st.Tasks)})
	}
	return r
}

// Warn adds a warning (a problem that did not fail the job) to the
// report. It is safe for concurrent use.
func (r *Report) Warn(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Warnings = append(r.Warnings, msg)
}

func newReport(job *Job, backend string) *Report {
	r := NewReport(job.ID, backend, PlanGraph(job.Plan))
	for _, sh := range job.Plan.Shuffles {
		r.Shuffles = append(r.Shuffles, ShuffleReport{ID: sh.ID, Strategy: sh.Strategy(), Partitions: sh.Partitions, ReadRun: sh.ReadRun})
	}
	for _, st := range job.Plan.Stages {
		if n := job.Plan.Logical.Nodes[st.Source]; st.Input == planner.FromSource && n.SplitsWhy != "" && st.Role != planner.Sampling {
			r.Sizing = append(r.Sizing, fmt.Sprintf("stage %d: %d task(s): %s", st.ID, st.Tasks, n.SplitsWhy))
		}
	}
	for _, sh := range job.Plan.Shuffles {
		if sh.PartitionsWhy != "" {
			r.Sizing = append(r.Sizing, fmt.Sprintf("shuffle %d: %d partition(s): %s", sh.ID, sh.Partitions, sh.PartitionsWhy))
		}
	}
	return r
}

func (r *Report) taskStarted(t TaskRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.Stages[t.Stage]
	if s.Start.IsZero() {
		s.Start = time.Now()
	}
	s.Running++
	s.TaskRows[t.Task].Attempts++
}

func (r *Report) taskSucceeded(e TaskSucceeded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.Stages[e.Stage]
	s.Running--
	row := &s.TaskRows[e.Task]
	if row.Instance != "" {
		return // a duplicate: the first result won
	}
	s.Done++
	row.Task, row.Instance, row.Cold = e.Task, e.Result.Instance, e.Result.Cold
	row.Wall = e.Result.End.Sub(e.Result.Start)
	row.Metrics = e.Result.Metrics
	s.Metrics.Add(e.Result.Metrics)
}

func (r *Report) taskFailed(e TaskFailed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.Stages[e.Stage]
	s.Running--
	s.Failed++
}

func (r *Report) stageDone(stage int, sched *Scheduler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.Stages[stage]
	s.End = time.Now()
	s.Wall = s.End.Sub(s.Start)
	s.Retries = sched.Retries(stage)
	s.BackupsWon = sched.StageStats(stage).BackupsWon
}

// backupLaunched counts a backup attempt.
func (r *Report) backupLaunched(stage int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Stages[stage].Backups++
	r.Backups++
}

// attemptAbandoned records an abandoned attempt's answer: it no longer
// runs, and its time was spent in vain. A timed-out attempt counts as a
// failed one.
func (r *Report) attemptAbandoned(stage int, seconds float64, timedOut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.Stages[stage]
	s.Running--
	r.WastedSeconds += seconds
	if timedOut {
		s.Failed++
		s.TimedOut++
		r.TimedOut++
	}
}

// interrupted records the job's interruption and its cause.
func (r *Report) interrupted(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Interrupted = errString(cause)
	if r.Interrupted == "" {
		r.Interrupted = context.Canceled.Error()
	}
}

// attemptInterrupted records the end of an attempt cut short by the job's
// interruption.
func (r *Report) attemptInterrupted(stage int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Stages[stage].Running--
	r.InterruptedAttempts++
}

// speculated records the job's backup counts at its end.
func (r *Report) speculated(st SpeculationStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.BackupsWon = st.BackupsWon
}

// Snapshot returns a copy of the stage reports, safe to read while the job
// runs.
func (r *Report) Snapshot() []StageReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]StageReport, len(r.Stages))
	copy(out, r.Stages)
	return out
}

// Totals sums the metrics of every stage.
func (r *Report) Totals() Metrics {
	var m Metrics
	for _, s := range r.Snapshot() {
		m.Add(s.Metrics)
	}
	return m
}

// Print writes a human-readable summary.
func (r *Report) Print(w io.Writer) {
	stages := r.Snapshot()
	fmt.Fprintf(w, "job %s on %s: %s\n", r.JobID, r.Backend, r.End.Sub(r.Start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\ttasks\tretries\twall\trecords in\trecords out\tinput read\toutput written\tshuffle written\tshuffle read\trequests\t")
	for _, s := range stages {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t\n", s.ID, s.Tasks, s.Retries,
			s.Wall.Round(time.Millisecond), s.Metrics.RecordsIn, s.Metrics.RecordsOut,
			planner.FormatBytes(s.Metrics.ObjectBytesRead), planner.FormatBytes(s.Metrics.ObjectBytesWritten),
			planner.FormatBytes(s.Metrics.ShuffleBytesWritten), planner.FormatBytes(s.Metrics.ShuffleBytesRead),
			s.Metrics.Requests)
	}
	tw.Flush()
	for _, s := range stages {
		fmt.Fprintf(w, "  stage %d: %s", s.ID, s.Name)
		if m := s.Metrics; m.Requests > 0 {
			fmt.Fprintf(w, "; requests: object storage %d GET %d PUT, shuffle %d GET %d PUT", m.ObjectGets, m.ObjectPuts,
				m.ShuffleGets, m.ShufflePuts)
		}
		if s.Metrics.SpillRuns > 0 {
			fmt.Fprintf(w, " (spilled %d sorted run(s), %s)", s.Metrics.SpillRuns, planner.FormatBytes(s.Metrics.SpillBytes))
		}
		fmt.Fprintln(w)
	}
	if slow := slowest(stages); slow != "" {
		fmt.Fprintf(w, "  slowest tasks: %s\n", slow)
	}
	for _, z := range r.Sizing {
		fmt.Fprintf(w, "  sizing: %s\n", z)
	}
	for _, sh := range r.Shuffles {
		fmt.Fprintf(w, "  shuffle %d: %s, %d partition(s), %s stored between stages\n", sh.ID, sh.Strategy, sh.Partitions,
			planner.FormatBytes(sh.BytesStored))
		if sh.ReadRun > 1 {
			fmt.Fprintf(w, "    reduce tasks read %d contiguous partitions of each map output per request\n", sh.ReadRun)
		}
		if sh.BytesWrittenByActions > 0 {
			fmt.Fprintf(w, "    its sort actions wrote %s of output straight to storage (%s copied out of Glider at commit)\n",
				planner.FormatBytes(sh.BytesWrittenByActions), planner.FormatBytes(sh.BytesCopiedAtCommit))
		}
	}
	if r.SimulatedSeconds > 0 {
		fmt.Fprintf(w, "  simulated makespan on %s: %s (predicted on the modelled platform; wall time here %s)\n", r.Backend,
			time.Duration(r.SimulatedSeconds*float64(time.Second)).Round(time.Millisecond), r.End.Sub(r.Start).Round(time.Millisecond))
	}
	if s := r.SimulatedStorage; s != nil {
		fmt.Fprintf(w, "  simulated storage (%s): %d GET, %d PUT, %d throttled by per-prefix request rates, $%.6f in request prices\n",
			s.Model, s.Gets, s.Puts, s.Throttled, s.Cost)
	}
	if r.Backups > 0 || r.TimedOut > 0 {
		fmt.Fprintf(w, "  stragglers: %d backup attempt(s), %d finished first; %d attempt(s) timed out; %.1f billed seconds on abandoned attempts\n",
			r.Backups, r.BackupsWon, r.TimedOut, r.WastedSeconds)
	}
	if r.Interrupted != "" {
		fmt.Fprintf(w, "  interrupted (%s): %d attempt(s) in flight were cancelled and nothing was retried or committed\n",
			r.Interrupted, r.InterruptedAttempts)
	}
	if r.Throttled > 0 {
		fmt.Fprintf(w, "  throttled by %s: %d invocation(s), retried with backoff\n", r.Backend, r.Throttled)
	}
	if r.Cost > 0 {
		fmt.Fprintf(w, "  estimated cost on %s: $%.6f (%d invocations, %.1f billed seconds)", r.Backend, r.Cost, r.Invocations, r.BilledSeconds)
		if s := r.SimulatedStorage; s != nil {
			fmt.Fprintf(w, " + $%.6f storage requests", s.Cost)
		}
		fmt.Fprintln(w)
	}
	for _, o := range r.Outputs {
		fmt.Fprintf(w, "output: %s\n", o)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// slowest names the slowest task of each stage with more than one task.
func slowest(stages []StageReport) string {
	var parts []string
	for _, s := range stages {
		if len(s.TaskRows) < 2 {
			continue
		}
		rows := append([]TaskReport(nil), s.TaskRows...)
		sort.Slice(rows, func(i, j int) bool { return rows[i].Wall > rows[j].Wall })
		parts = append(parts, fmt.Sprintf("stage %d task %d %s", s.ID, rows[0].Task, rows[0].Wall.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// stored records a shuffle's stored bytes.
func (r *Report) stored(shuffle int, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Shuffles[shuffle].BytesStored = n
}
