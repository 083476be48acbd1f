package gale_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/probe"
)

// peakBackend counts the invocations in flight on a local backend and
// keeps the peak.
type peakBackend struct {
	backends.Backend
	mu        sync.Mutex
	cur, peak int
}

func (b *peakBackend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	b.mu.Lock()
	b.cur++
	b.peak = max(b.peak, b.cur)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.cur--
		b.mu.Unlock()
	}()
	return b.Backend.Invoke(ctx, t)
}

func newPeak(t *testing.T) *peakBackend {
	t.Helper()
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close(); w.Close() })
	return &peakBackend{Backend: lb}
}

func TestHintCapsConcurrencyAndWarnsOfWideStages(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 1<<20, 3, nil)
	b := newPeak(t)
	h := probe.Hint{Backend: "sim:azure", Concurrency: 2}
	p := gale.NewPipeline()
	out := filepath.Join(dir, "out")
	wordcount.Build(p, []string{in}, out)
	report, err := gale.Run(context.Background(), p, gale.WithBackend("counting", b), gale.Workers(6),
		gale.ChunkSize(64<<10), gale.Partitions(3), gale.WithHint(h))
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, readCounts(t, out), refCount(t, in))
	if b.peak > 2 {
		t.Errorf("%d tasks ran at once, the hint allows 2", b.peak)
	}
	want := []string{"concurrency capped at 2 (from 6): sim:azure ran at most 2 invocations at once when probed"}
	for _, st := range report.Stages {
		want = append(want, fmt.Sprintf("stage %d has %d tasks but sim:azure ran at most 2 at once when probed: expect about %d waves",
			st.ID, st.Tasks, (st.Tasks+1)/2))
	}
	if strings.Join(report.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(report.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestSaturatedHintDoesNotCap(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 256<<10, 4, nil)
	b := newPeak(t)
	// The probe ran all 2 of its invocations at once: the backend may
	// give more, so the job keeps its 4 workers; stages wider than 2 get
	// the advice to probe wider.
	h := probe.Hint{Backend: "sim:aws", Concurrency: 2, Saturated: true}
	p := gale.NewPipeline()
	out := filepath.Join(dir, "out")
	wordcount.Build(p, []string{in}, out)
	report, err := gale.Run(context.Background(), p, gale.WithBackend("counting", b), gale.Workers(4),
		gale.ChunkSize(64<<10), gale.Partitions(3), gale.WithHint(h))
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, readCounts(t, out), refCount(t, in))
	if len(report.Warnings) != 2 || !strings.Contains(report.Warnings[0], "--invocations 4") ||
		!strings.Contains(report.Warnings[1], "stage 1 has 3 tasks") {
		t.Errorf("warnings %q; want one per stage advising a wider probe", report.Warnings)
	}
}
