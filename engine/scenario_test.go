package engine

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/scheduler/*.txt scenarios")

// TestSchedulerScenarios runs the scripted scenarios in
// testdata/scheduler/*.txt against testPlan. A scenario is a list of
// blocks separated by blank lines; each block is one command, a "----"
// line and the actions the command produced. Run with -rewrite to
// regenerate the expected output after a deliberate change.
//
// Commands:
//
//	start concurrency=N max-attempts=M [timeout=D] [speculation=on]
//	      [quantile=Q] [multiplier=X] [early-quantile=Q] [early-multiplier=X]
//	      [min-runtime=D] [timeout-multiplier=X] [min-timeout=D]
//	                                     a new scheduler at time 0; prints Start's actions
//	tick D                               time advances by D (a Go duration); prints the Tick's actions
//	succeed S T A                        attempt A of task T of stage S succeeded
//	fail S T A [not-started]             it failed
//	succeed-all                          every attempt in flight succeeds, in launch order, until none is left
//	winner S T                           the winning attempt of a task
//	stats                                backups launched and won, attempts timed out
//	retries S                            the retries of a stage
//	# ...                                a comment line, kept as is
func TestSchedulerScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scheduler", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/scheduler")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			blocks := parseScenario(t, string(data))
			r := &scenarioRunner{t: t}
			var out strings.Builder
			for i, b := range blocks {
				got := r.do(b.cmd)
				if i > 0 {
					out.WriteString("\n")
				}
				for _, c := range b.comments {
					out.WriteString(c + "\n")
				}
				fmt.Fprintf(&out, "%s\n----\n%s", b.cmd, got)
				if !*rewrite && got != b.want {
					t.Errorf("%s: %s\ngot:\n%swant:\n%s", file, b.cmd, got, b.want)
				}
			}
			if *rewrite {
				if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type scenarioBlock struct {
	comments []string
	cmd      string
	want     string
}

func parseScenario(t *testing.T, text string) []scenarioBlock {
	t.Helper()
	var blocks []scenarioBlock
	for _, chunk := range strings.Split(strings.TrimSpace(text), "\n\n") {
		lines := strings.Split(chunk, "\n")
		var b scenarioBlock
		for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
			b.comments = append(b.comments, lines[0])
			lines = lines[1:]
		}
		if len(lines) == 0 {
			t.Fatalf("a block holds only comments: %q", chunk)
		}
		b.cmd = lines[0]
		if len(lines) > 1 {
			if lines[1] != "----" {
				t.Fatalf("command %q is not followed by ----", b.cmd)
			}
			for _, l := range lines[2:] {
				b.want += l + "\n"
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// scenarioRunner executes scenario commands against a Scheduler.
type scenarioRunner struct {
	t        *testing.T
	s        *Scheduler
	now      time.Time
	inflight []Invoke
}

func (r *scenarioRunner) ints(args []string, n int) []int {
	r.t.Helper()
	if len(args) < n {
		r.t.Fatalf("want %d numbers, got %q", n, args)
	}
	out := make([]int, n)
	for i := range n {
		v, err := strconv.Atoi(args[i])
		if err != nil {
			r.t.Fatalf("bad number %q", args[i])
		}
		out[i] = v
	}
	return out
}

func (r *scenarioRunner) do(cmd string) string {
	r.t.Helper()
	f := strings.Fields(cmd)
	if len(f) == 0 {
		r.t.Fatal("empty command")
	}
	if f[0] != "start" && r.s == nil {
		r.t.Fatalf("%q before start", cmd)
	}
	switch f[0] {
	case "start":
		cfg := SchedulerConfig{Concurrency: 1, MaxAttempts: 1, Speculation: Speculation{Off: true, TimeoutMultiplier: -1}}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			num := func() float64 {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					r.t.Fatalf("bad %q", kv)
				}
				return n
			}
			dur := func() time.Duration {
				d, err := time.ParseDuration(v)
				if err != nil {
					r.t.Fatalf("bad %q", kv)
				}
				return d
			}
			switch k {
			case "concurrency":
				cfg.Concurrency = int(num())
			case "max-attempts":
				cfg.MaxAttempts = int(num())
			case "timeout":
				cfg.TaskTimeout = dur()
			case "speculation":
				cfg.Speculation.Off = v != "on"
			case "quantile":
				cfg.Speculation.Quantile = num()
			case "multiplier":
				cfg.Speculation.Multiplier = num()
			case "early-quantile":
				cfg.Speculation.EarlyQuantile = num()
			case "early-multiplier":
				cfg.Speculation.EarlyMultiplier = num()
			case "min-runtime":
				cfg.Speculation.MinRuntime = dur()
			case "timeout-multiplier":
				cfg.Speculation.TimeoutMultiplier = num()
			case "min-timeout":
				cfg.Speculation.MinTimeout = dur()
			default:
				r.t.Fatalf("unknown start option %q", k)
			}
		}
		if err := cfg.Speculation.Validate(); err != nil {
			r.t.Fatal(err)
		}
		r.s = NewSchedulerConfig(testPlan(r.t), cfg)
		r.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		r.inflight = nil
		r.s.Step(Tick{Now: r.now})
		return r.show(r.s.Start())
	case "tick":
		if len(f) != 2 {
			r.t.Fatalf("tick takes one duration: %q", cmd)
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			r.t.Fatalf("bad duration in %q", cmd)
		}
		r.now = r.now.Add(d)
		return r.show(r.s.Step(Tick{Now: r.now}))
	case "stats":
		st := r.s.Stats()
		return fmt.Sprintf("backups=%d won=%d timed-out=%d\n", st.Backups, st.BackupsWon, st.TimedOut)
	case "succeed", "fail":
		n := r.ints(f[1:], 3)
		ref := TaskRef{n[0], n[1]}
		r.drop(ref, n[2])
		r.s.Step(Tick{Now: r.now})
		if f[0] == "succeed" {
			return r.show(r.s.Step(TaskSucceeded{TaskRef: ref, Attempt: n[2],
				Result: &TaskResult{Instance: fmt.Sprintf("s%d-t%d-a%d", n[0], n[1], n[2])}}))
		}
		ns := len(f) > 4 && f[4] == "not-started"
		err := fmt.Errorf("attempt s%d t%d a%d: %w", n[0], n[1], n[2], errors.New("boom"))
		return r.show(r.s.Step(TaskFailed{TaskRef: ref, Attempt: n[2], Err: err, NotStarted: ns}))
	case "succeed-all":
		var out strings.Builder
		for len(r.inflight) > 0 {
			inv := r.inflight[0]
			r.inflight = r.inflight[1:]
			fmt.Fprintf(&out, "> s%d t%d a%d\n", inv.Stage, inv.Task, inv.Attempt)
			out.WriteString(r.show(r.s.Step(TaskSucceeded{TaskRef: inv.TaskRef, Attempt: inv.Attempt,
				Result: &TaskResult{Instance: fmt.Sprintf("s%d-t%d-a%d", inv.Stage, inv.Task, inv.Attempt)}})))
		}
		return out.String()
	case "winner":
		n := r.ints(f[1:], 2)
		if w := r.s.Winner(TaskRef{n[0], n[1]}); w != nil {
			return w.Instance + "\n"
		}
		return "none\n"
	case "retries":
		n := r.ints(f[1:], 1)
		return fmt.Sprintf("%d\n", r.s.Retries(n[0]))
	}
	r.t.Fatalf("unknown command %q", cmd)
	return ""
}

// drop removes an attempt from the in-flight list, if it is there.
func (r *scenarioRunner) drop(ref TaskRef, attempt int) {
	for i, inv := range r.inflight {
		if inv.TaskRef == ref && inv.Attempt == attempt {
			r.inflight = append(r.inflight[:i], r.inflight[i+1:]...)
			return
		}
	}
}

func (r *scenarioRunner) show(actions []Action) string {
	if len(actions) == 0 {
		return "(no actions)\n"
	}
	var b strings.Builder
	for _, a := range actions {
		switch a := a.(type) {
		case Invoke:
			r.inflight = append(r.inflight, a)
			if a.Backup {
				fmt.Fprintf(&b, "invoke s%d t%d a%d backup: %s\n", a.Stage, a.Task, a.Attempt, a.Reason)
			} else {
				fmt.Fprintf(&b, "invoke s%d t%d a%d\n", a.Stage, a.Task, a.Attempt)
			}
		case Cancel:
			kind := "lost"
			if a.TimedOut {
				kind = "timed out"
			}
			fmt.Fprintf(&b, "cancel s%d t%d a%d (%s): %s\n", a.Stage, a.Task, a.Attempt, kind, a.Reason)
		case StageDone:
			fmt.Fprintf(&b, "stage-done %d\n", a.Stage)
		case JobDone:
			b.WriteString("job-done\n")
		case JobFailed:
			fmt.Fprintf(&b, "job-failed: %v\n", a.Err)
		default:
			fmt.Fprintf(&b, "unknown action %#v\n", a)
		}
	}
	return b.String()
}
