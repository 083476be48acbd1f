package gale_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/examples/wordcount"
)

// onFirstAttempt gives every task's first attempt fault f.
func onFirstAttempt(f faulty.Fault) func(backends.Task, int) faulty.Fault {
	return func(tk backends.Task, _ int) faulty.Fault {
		if strings.HasSuffix(tk.ID, "/attempt-1") {
			return f
		}
		return faulty.None
	}
}

func totalTasks(r *gale.Report) (tasks, retries int) {
	for _, s := range r.Stages {
		tasks += s.Tasks
		retries += s.Retries
	}
	return tasks, retries
}

// runWordCount runs word count over in on fb and checks the committed
// output against want and that nothing was left behind.
func runWordCount(t *testing.T, fb *faulty.Backend, in string, want map[string]int64, opts ...gale.RunOption) *gale.Report {
	t.Helper()
	tmp := isolateTemp(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	p := gale.NewPipeline()
	wordcount.Build(p, []string{in}, out)
	opts = append([]gale.RunOption{gale.WithBackend("faulty", fb), gale.Workers(4), gale.ChunkSize(24 << 10),
		gale.Partitions(3)}, opts...)
	report, err := gale.Run(context.Background(), p, opts...)
	// Close waits for duplicate copies still running, so what they leave
	// behind is on disk before the checks.
	if cerr := fb.Close(); cerr != nil {
		t.Errorf("closing the backend: %v", cerr)
	}
	if err != nil {
		t.Fatalf("run failed (faults %+v): %v", fb.Stats(), err)
	}
	sameCounts(t, readCounts(t, out), want)
	noLeftovers(t, parent, tmp)
	return report
}

func TestWordCountUnderEachFault(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 11, nil)
	want := refCount(t, in)
	for _, f := range []faulty.Fault{faulty.Reject, faulty.Fail, faulty.Lose, faulty.Delay, faulty.Duplicate} {
		t.Run(f.String(), func(t *testing.T) {
			fb := newFaulty(t, faulty.Config{Rule: onFirstAttempt(f), MaxDelay: 2e6})
			// Without backups: a backup launched while a first attempt
			// is still running (on a loaded machine, once it has run
			// 100 ms) may finish before the fault, which then retries
			// nothing, and the count below would depend on timing.
			report := runWordCount(t, fb, in, want, gale.JobID("faults-"+f.String()), gale.NoSpeculation())
			tasks, retries := totalTasks(report)
			s := fb.Stats()
			var injected int64
			switch f {
			case faulty.Reject:
				injected = s.Rejected
			case faulty.Fail:
				injected = s.Failed
			case faulty.Lose:
				injected = s.Lost
			case faulty.Delay:
				injected = s.Delayed
			case faulty.Duplicate:
				injected = s.Duplicated
			}
			if injected != int64(tasks) {
				t.Errorf("%s injected into %d invocations, want one per task (%d)", f, injected, tasks)
			}
			wantRetries := 0
			if f == faulty.Reject || f == faulty.Fail || f == faulty.Lose {
				wantRetries = tasks // every first attempt failed
			}
			if retries != wantRetries {
				t.Errorf("the report shows %d retries, want %d", retries, wantRetries)
			}
		})
	}
}

func TestWordCountUnderRandomFaults(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 160<<10, 12, nil)
	want := refCount(t, in)
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			// A task fails an attempt with probability 0.3, so ten
			// attempts all fail with probability 6e-6: the job must
			// succeed.
			fb := newFaulty(t, faulty.Config{Seed: seed, RejectRate: 0.1, FailRate: 0.1, LoseRate: 0.1,
				DelayRate: 0.15, DuplicateRate: 0.15, MaxDelay: 2e6})
			defer func() {
				if t.Failed() {
					t.Logf("seed %d, faults %+v", seed, fb.Stats())
				}
			}()
			runWordCount(t, fb, in, want, gale.MaxAttempts(10), gale.JobID(fmt.Sprint("mix-", seed)))
			if s := fb.Stats(); s.Passed == s.Invocations {
				t.Errorf("no fault was injected: %+v", s)
			}
		})
	}
}

// explode panics on the line "poison", and otherwise returns the line.
func explode(line string) string {
	if line == "poison" {
		panic("poisoned line reached explode")
	}
	return line
}

func TestAlwaysFailingTaskFailsJobAndKeepsOldOutput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(good, []byte("alpha\nbeta\nalpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("alpha\npoison\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(in, out string) *gale.Pipeline {
		p := gale.NewPipeline()
		gale.WriteText(gale.CountPerElement(gale.Map(gale.ReadText(p, in), explode)), out)
		return p
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")

	t.Run("fresh output", func(t *testing.T) {
		tmp := isolateTemp(t)
		fb := newFaulty(t, faulty.Config{})
		_, err := gale.Run(context.Background(), build(bad, out), gale.WithBackend("faulty", fb), gale.MaxAttempts(3))
		if err == nil {
			t.Fatal("a job whose task always panics succeeded")
		}
		msg := err.Error()
		for _, want := range []string{"stage 0", "Map(gale_test.explode)", "after 3 attempt(s)", "poisoned line reached explode"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error does not mention %q:\n%s", want, msg)
			}
		}
		var fe *backends.FunctionError
		if !errors.As(err, &fe) {
			t.Errorf("error %v does not wrap the *FunctionError", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed job created its output directory: %v", err)
		}
		_ = fb.Close()
		noLeftovers(t, parent, tmp)
	})

	t.Run("overwrite keeps previous output", func(t *testing.T) {
		tmp := isolateTemp(t)
		if _, err := gale.Run(context.Background(), build(good, out)); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, out)
		if lines := readCommitted(t, out); len(lines) != 2 {
			t.Fatalf("first run wrote %q, want two counts", lines)
		}
		fb := newFaulty(t, faulty.Config{})
		_, err := gale.Run(context.Background(), build(bad, out), gale.WithBackend("faulty", fb), gale.Overwrite(true),
			gale.MaxAttempts(2))
		if err == nil || !strings.Contains(err.Error(), "poisoned line") {
			t.Fatalf("failing overwrite run: %v", err)
		}
		_ = fb.Close()
		after := snapshot(t, out)
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("a failed overwrite changed the previous output:\nbefore %q\nafter  %q", before, after)
		}
		noLeftovers(t, parent, tmp)
	})
}

// recorder passes invocations to its backend and keeps every task, so a
// test can deliver them again later.
type recorder struct {
	backends.Backend
	mu    sync.Mutex
	tasks []backends.Task
}

func (r *recorder) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	r.mu.Lock()
	r.tasks = append(r.tasks, t)
	r.mu.Unlock()
	return r.Backend.Invoke(ctx, t)
}

// TestLateDuplicatesLeaveNothing delivers every task of a finished word
// count once more, after the job committed, as a platform's late duplicate
// delivery would: the duplicates must neither re-create the job's staging
// directory beside the output nor its temporary directory, and must not
// touch the committed output.
func TestLateDuplicatesLeaveNothing(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 64<<10, 31, nil)
	want := refCount(t, in)
	tmp := isolateTemp(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	rec := &recorder{Backend: newFaulty(t, faulty.Config{})}
	p := gale.NewPipeline()
	wordcount.Build(p, []string{in}, out)
	if _, err := gale.Run(context.Background(), p, gale.WithBackend("recorder", rec), gale.Workers(2),
		gale.ChunkSize(16<<10), gale.Partitions(3)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	refused := 0
	for _, task := range rec.tasks {
		if _, err := rec.Backend.Invoke(context.Background(), task); err != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("all %d late duplicates succeeded; those writing to the removed staging or temporary directory must fail", len(rec.tasks))
	}
	noLeftovers(t, parent, tmp)
	if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("late duplicates changed the committed output")
	}
	sameCounts(t, readCounts(t, out), want)
}
