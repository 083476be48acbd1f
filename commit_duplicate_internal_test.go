//go:build !gale_slim || gale_aws

package gale

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
)

// taskRecorder passes invocations to its backend and keeps every task, so
// a test can deliver them again.
type taskRecorder struct {
	backends.Backend
	mu    sync.Mutex
	tasks []backends.Task
}

func (r *taskRecorder) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	r.mu.Lock()
	r.tasks = append(r.tasks, t)
	r.mu.Unlock()
	return r.Backend.Invoke(ctx, t)
}

// TestDuplicateDuringCommitStaysOut delivers every task of a job once
// more in the middle of its commit, after the losing attempts were removed
// and before the staging directory becomes the output, as a platform's
// duplicate delivery may: what those copies write must not reach the
// output, which holds exactly its parts and manifest.
func TestDuplicateDuringCommitStaysOut(t *testing.T) {
	dir := t.TempDir()
	in, want := crashTestLines(t, dir, "delta", 40)
	w, err := NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	rec := &taskRecorder{Backend: lb}
	t.Cleanup(func() { _ = lb.Close() })
	for _, overwrite := range []bool{false, true} {
		out := filepath.Join(dir, "out")
		replayed, refused := 0, 0
		hook := func(step string) error {
			if step != "rename staging directory to output" && step != "exchange staging and output directories" {
				return nil
			}
			rec.mu.Lock()
			tasks := append([]backends.Task(nil), rec.tasks...)
			rec.mu.Unlock()
			for _, task := range tasks {
				replayed++
				if _, err := lb.Invoke(context.Background(), task); err != nil {
					refused++
				}
			}
			return nil
		}
		p := NewPipeline()
		WriteText(Map(ReadText(p, in), crashTestUpper), out)
		_, err := Run(context.Background(), p, WithBackend("recorder", rec), Overwrite(overwrite),
			ChunkSize(minChunkSize), Workers(2), NoSpeculation(), func(rc *runConfig) { rc.commitHook = hook })
		if err != nil {
			t.Fatal(err)
		}
		if replayed == 0 || refused == 0 {
			t.Fatalf("replayed %d tasks during the commit, %d refused; want the sink tasks refused", replayed, refused)
		}
		ents, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "_SUCCESS" && !strings.HasPrefix(e.Name(), "part-") {
				t.Errorf("overwrite=%v: the output holds %s, written by a duplicate during the commit", overwrite, e.Name())
			}
		}
		st, err := OpenStore(context.Background(), out, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := committedLines(t, st)
		if !ok || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("overwrite=%v: the output is not the job's (%d lines, want %d)", overwrite, len(got), len(want))
		}
	}
}
