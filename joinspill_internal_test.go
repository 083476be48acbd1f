package gale

import (
	"context"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
)

// hotSegment generates, without holding them, the shuffle records of a
// join partition: n left values of key 0 after one right value of it.
type hotSegment struct {
	n, i int64
	buf  []byte
}

func (h *hotSegment) Read(p []byte) (int, error) {
	for len(h.buf) < len(p) && h.i <= h.n {
		kc, sc := coder.For[int64](), coder.For[sided[int64, int64]]()
		k := kc.Append(nil, 0)
		v := sided[int64, int64]{A: h.i}
		if h.i == 0 {
			v = sided[int64, int64]{Right: true, B: 7}
		}
		h.buf = coder.AppendBytes(coder.AppendBytes(h.buf, k), sc.Append(nil, v))
		h.i++
	}
	if len(h.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	return n, nil
}

// TestJoinHotKeyPeakMemory: a join reduce over one key with 2 million left
// values (48 MiB as a decoded group, 16 MiB as records) under a 2 MiB
// budget keeps its live heap within a few budgets: it spills sorted runs
// and streams the key instead of building its group.
func TestJoinHotKeyPeakMemory(t *testing.T) {
	const n = 2_000_000
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
		}
	}()
	var pairs, sum int64
	emit := func(kv KV[int64, Joined[int64, int64]]) { pairs++; sum += kv.Value.Left * kv.Value.Right }
	var runs int
	cfg := kernel.SortConfig{MemoryBytes: 2 << 20, TempDir: t.TempDir(), Stats: func(r int, _ int64) { runs = r }}
	in, err := joinKernel[int64, int64, int64]{}.ReduceStream(context.Background(), []io.Reader{&hotSegment{n: n}}, cfg, emit)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if in != n+1 || pairs != n || sum != 7*n*(n+1)/2 {
		t.Fatalf("read %d records, %d pairs, sum %d; want %d, %d, %d", in, pairs, sum, n+1, n, 7*n*(n+1)/2)
	}
	grew := int64(peak) - int64(base)
	t.Logf("live heap grew by at most %.1f MiB over %d spilled runs", float64(grew)/(1<<20), runs)
	if runs == 0 {
		t.Error("no sorted run spilled under a 2 MiB budget")
	}
	if grew > 12<<20 {
		t.Errorf("live heap grew by %d bytes for a 2 MiB budget: the hot key's values were held", grew)
	}
}
