package gale_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
)

// payloadMeter is a backend that records the largest task descriptor it
// carried to the local backend it wraps.
type payloadMeter struct {
	backends.Backend
	max atomic.Int64
}

func (m *payloadMeter) Invoke(ctx context.Context, task backends.Task) (backends.Result, error) {
	for {
		cur := m.max.Load()
		if int64(len(task.Payload)) <= cur || m.max.CompareAndSwap(cur, int64(len(task.Payload))) {
			break
		}
	}
	return m.Backend.Invoke(ctx, task)
}

func newPayloadMeter(t *testing.T, workers int) *payloadMeter {
	t.Helper()
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close(); _ = w.Close() })
	return &payloadMeter{Backend: lb}
}

// sortLines sorts the lines of a file with gale and returns the output
// (every part file in order) and the largest task descriptor sent.
func sortLines(t *testing.T, lines []string, opts ...gale.RunOption) ([]byte, int64) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p := gale.NewPipeline()
	gale.WriteText(gale.Sort(gale.ReadText(p, in)), out)
	meter := newPayloadMeter(t, 2)
	if _, err := gale.Run(context.Background(), p, append([]gale.RunOption{gale.WithBackend("meter", meter), gale.Workers(2)}, opts...)...); err != nil {
		t.Fatal(err)
	}
	return bytes.Join(readCommittedBytes(t, out), nil), meter.max.Load()
}

func readCommittedBytes(t *testing.T, dir string) [][]byte {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(parts)
	var out [][]byte
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func sortedText(lines []string) []byte {
	s := slices.Clone(lines)
	slices.Sort(s)
	return []byte(strings.Join(s, "\n") + "\n")
}

// TestSortDescriptorsStaySmallWithLongKeys sorts long lines that share long
// prefixes, and a hot long line repeated hundreds of times, into many
// partitions: the task descriptors carry split points of a few bytes each,
// kept once (inline), or a reference to them (when many partitions need
// long ones), never a full key per partition.
func TestSortDescriptorsStaySmallWithLongKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	prefix := strings.Repeat("p", 1000)
	hot := strings.Repeat("p", 3000) + strings.Repeat("h", 4<<10)
	var lines []string
	for range 400 {
		lines = append(lines, hot)
	}
	for range 300 {
		lines = append(lines, word(2)+strings.Repeat("z", 4<<10))
	}
	// Shared 1000-byte prefixes: separators of 1001 bytes or more, too
	// many for 120 partitions to carry inline.
	for range 300 {
		lines = append(lines, prefix+word(40))
	}
	r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	for _, parts := range []int{16, 120} {
		got, maxPayload := sortLines(t, lines, gale.WorkerMemory(4<<20), gale.Partitions(parts), gale.ChunkSize(2<<20))
		if !bytes.Equal(got, sortedText(lines)) {
			t.Fatalf("%d partitions: output differs from the sorted input", parts)
		}
		t.Logf("%d partitions: largest task descriptor %d bytes", parts, maxPayload)
		if maxPayload > 48<<10 {
			t.Errorf("%d partitions: a task descriptor of %d bytes; split points are not carried compactly", parts, maxPayload)
		}
	}
}

// TestLineLongerThanBudgetFailsAtOnce: a 6 MiB line with a 1 MiB budget
// fails every attempt after reading about the budget, with an error that
// names the budget and the fix, and the job allocates a small multiple of
// the budget, not of the line.
func TestLineLongerThanBudgetFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	line := bytes.Repeat([]byte("x"), 6<<20)
	if err := os.WriteFile(in, append(append([]byte("short\n"), line...), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p := gale.NewPipeline()
	gale.WriteText(gale.Sort(gale.ReadText(p, in)), out)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WorkerMemory(1<<20))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a line longer than the worker memory budget was sorted")
	}
	for _, want := range []string{"in.txt", "the line at byte 6 is longer than the worker memory budget of 1048576 bytes", "--worker-memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MiB", float64(alloc)/(1<<20))
	if alloc > 16<<20 {
		t.Errorf("the failing job allocated %d bytes for a 6 MiB line and a 1 MiB budget", alloc)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output %s exists after the failed job", out)
	}
}

// TestTinyBudgetsAndChunksAreRefused: budgets and chunks too small to be
// meant (a unit forgotten) are refused before anything runs, and a chunk
// size that makes more than 100,000 tasks of one input is refused naming
// the chunk size that works.
func TestTinyBudgetsAndChunksAreRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("b\na\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opt  gale.RunOption
		want string
	}{
		{gale.WorkerMemory(1), "WorkerMemory 1 bytes is below the minimum of 8192 bytes"},
		{gale.WorkerMemory(100), "--worker-memory takes units"},
		{gale.ChunkSize(1), "ChunkSize 1 bytes is below the minimum of 512 bytes"},
	} {
		p := gale.NewPipeline()
		gale.WriteText(gale.Sort(gale.ReadText(p, in)), filepath.Join(dir, "out"))
		_, err := gale.Run(context.Background(), p, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error saying %q", err, tc.want)
		}
	}
	// A sparse 100 MiB file in 512-byte chunks would be 204,800 tasks.
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 100<<20); err != nil {
		t.Fatal(err)
	}
	p := gale.NewPipeline()
	gale.WriteText(gale.Sort(gale.ReadText(p, big)), filepath.Join(dir, "out"))
	_, err := gale.Explain(context.Background(), p, gale.ChunkSize(512))
	if err == nil || !strings.Contains(err.Error(), "make 204800 tasks, more than 100000; raise the chunk size (--chunk-size, gale.ChunkSize) to at least 1049") {
		t.Errorf("got %v, want the task count refused with the chunk size that works", err)
	}
	// By default the chunk size grows instead.
	if _, err := gale.Explain(context.Background(), p, gale.WorkerMemory(8<<10)); err != nil {
		t.Errorf("default chunk size: %v", err)
	}
}

// TestSmallBudgetDoesNotMultiplySortTasks: with an 8 KiB budget a 16 MiB
// sort gets partitions of the sorter's 1 MiB floor (16), not of 4 KiB
// (4096 tasks).
func TestSmallBudgetDoesNotMultiplySortTasks(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(in, 16<<20); err != nil {
		t.Fatal(err)
	}
	p := gale.NewPipeline()
	gale.WriteText(gale.Sort(gale.ReadText(p, in)), filepath.Join(dir, "out"))
	plan, err := gale.Explain(context.Background(), p, gale.WorkerMemory(8<<10), gale.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(plan)
	if !strings.Contains(plan, "16 partitions") && !strings.Contains(plan, "16 partition") {
		t.Errorf("plan does not sort in 16 partitions:\n%s", plan)
	}
}
