package sort_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/local"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/internal/gensort"
)

func genFile(t *testing.T, cfg gensort.Config) (string, gensort.Checksum) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := gensort.Generate(context.Background(), &buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, buf.Bytes()), sum
}

// TestSortStaysWithinMemoryBudget sorts 32 MiB of records with one worker
// and an 8 MiB budget, sampling the heap while it runs: the peak growth
// over the heap before the job stays within twice the budget plus the
// fixed I/O buffers, far below the data size, while the report shows the
// external merge at work.
func TestSortStaysWithinMemoryBudget(t *testing.T) {
	in, sum := genFile(t, gensort.Config{Count: 320_000, ASCII: true})
	const budget = 8 << 20
	out := filepath.Join(t.TempDir(), "out")
	p := gale.NewPipeline()
	if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
		t.Fatal(err)
	}
	// A low GC target keeps the heap close to live memory, so the peak
	// measures what the tasks hold rather than garbage awaiting collection.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var s runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&s)
			if s.HeapInuse > peak.Load() {
				peak.Store(s.HeapInuse)
			}
		}
	}()
	report, err := gale.Run(context.Background(), p, gale.Workers(1), gale.WorkerMemory(budget))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(peak.Load()) - int64(base)
	// The budget bounds buffered records; on top of it come fixed I/O
	// buffers (input blocks, buffered readers and writers, the merge's read
	// buffers) of about 2 MiB.
	limit := int64(budget + 3<<20)
	t.Logf("data 32 MiB, budget %d MiB, peak heap growth %.1f MiB", budget>>20, float64(growth)/(1<<20))
	if growth > limit {
		t.Errorf("peak heap growth %d bytes exceeds %d", growth, limit)
	}
	var spills int64
	for _, s := range report.Stages {
		spills += s.Metrics.SpillRuns
	}
	if spills == 0 {
		t.Error("no sorted run was spilled: the external merge did not run")
	}
	got, err := gensort.Validate(context.Background(), bytes.NewReader(readParts(t, out)))
	if err != nil || got.Checksum != sum || got.Records != 320_000 {
		t.Fatalf("validate: %v (%d records, checksum %v, want %v)", err, got.Records, got.Checksum, sum)
	}
}

// TestFullSpillDirFailsCleanly gives the sort a 1 MiB tmpfs to spill into:
// the tasks fail with the disk-full reason, are retried, and the job fails
// with nothing visible at the output path.
func TestFullSpillDirFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	spill := filepath.Join(dir, "spill")
	if err := os.Mkdir(spill, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", spill).Run(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", spill).Run() })
	in, _ := genFile(t, gensort.Config{Count: 100_000})
	out := filepath.Join(dir, "out")
	p := gale.NewPipeline()
	if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
		t.Fatal(err)
	}
	report, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WorkerMemory(1<<20),
		gale.Partitions(2), gale.SpillDir(spill), gale.MaxAttempts(2))
	if err == nil {
		t.Fatal("sort with a full spill directory succeeded")
	}
	if !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "after 2 attempt") {
		t.Errorf("error should give the reason and the attempts: %v", err)
	}
	if report == nil || report.Stages[len(report.Stages)-1].Failed < 2 {
		t.Errorf("the failing task was not retried")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output %s is visible after a failed job", out)
	}
	ents, _ := os.ReadDir(spill)
	if len(ents) != 0 {
		t.Errorf("spill directory holds leftovers: %v", ents)
	}
}

// TestSortUnderFaultsGivesIdenticalOutput: rejected, failed, lost and
// duplicated attempts change nothing in the output bytes.
func TestSortUnderFaultsGivesIdenticalOutput(t *testing.T) {
	in, _ := genFile(t, gensort.Config{Count: 50_000, ASCII: true, Skew: true})
	run := func(cfg *faulty.Config) []byte {
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
			t.Fatal(err)
		}
		opts := []gale.RunOption{gale.Workers(3), gale.WorkerMemory(512 << 10), gale.ChunkSize(1 << 20), gale.MaxAttempts(10)}
		if cfg != nil {
			w, err := gale.NewWorker()
			if err != nil {
				t.Fatal(err)
			}
			lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 3})
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			fb := faulty.New(lb, *cfg)
			defer lb.Close()
			defer fb.Close()
			opts = append(opts, gale.WithBackend("faulty", fb))
		}
		if _, err := gale.Run(context.Background(), p, opts...); err != nil {
			t.Fatal(err)
		}
		return readParts(t, out)
	}
	want := run(nil)
	for seed := uint64(1); seed <= 3; seed++ {
		got := run(&faulty.Config{Seed: seed, RejectRate: 0.1, FailRate: 0.1, LoseRate: 0.05, DuplicateRate: 0.1, DelayRate: 0.1})
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: output under faults differs from the fault-free output", seed)
		}
	}
}
