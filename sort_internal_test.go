package gale

import (
	"runtime"
	"testing"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
)

// TestRangeWriterSizeHint: told the task's input size, the range writer
// grows each partition's buffer to its share once data arrives, instead of
// doubling its way there (which allocates about twice the data or more);
// without a hint, or for data a stage filtered down, it doubles as before.
func TestRangeWriterSizeHint(t *testing.T) {
	raw := rawBytes[[]byte]()
	k := &rangeKernel[[]byte]{c: coder.For[[]byte](), raw: raw.to, fromRaw: raw.from}
	const records, size = 200_000, 100
	rec := make([]byte, size)
	allocated := func(hint int64) (uint64, int) {
		sw, err := k.Writer(func(key []byte) int { return int(key[0] & 1) }, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		if hint > 0 {
			sw.(kernel.SizeHinter).SizeHint(hint)
		}
		emit := sw.Emit().(func([]byte))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range records {
			rec[0] = byte(i)
			emit(rec)
		}
		runtime.ReadMemStats(&after)
		parts, _ := sw.Finish()
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		return after.TotalAlloc - before.TotalAlloc, n
	}
	data := records * size
	doubling, n1 := allocated(0)
	hinted, n2 := allocated(int64(data))
	t.Logf("%d bytes of records: %d allocated doubling, %d with the hint", n1, doubling, hinted)
	if n1 != n2 || n1 < data {
		t.Fatalf("partitions hold %d and %d bytes, want the same, at least %d", n1, n2, data)
	}
	if hinted > uint64(n2)*3/2 {
		t.Errorf("with the size hint the writer allocated %d bytes for %d bytes of records, want under 1.5x", hinted, n2)
	}
}
