package worker

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/galeproject/gale/shuffle"
)

// TestGrouperGroupsByKeyAndWindow files records with random keys, windows
// and values over several segments and checks every group against a
// reference grouping built by a plain scan: the groups in the order they
// first appear, each with its values in arrival order.
func TestGrouperGroupsByKeyAndWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type rec struct{ key, win, val string }
	var segs [][]byte
	var all []rec
	for s := 0; s < 4; s++ {
		var seg []byte
		for i := 0; i < 500; i++ {
			// Keys of several lengths, so a key that is a prefix of another
			// (and the window field after it) must not be confused.
			r := rec{key: fmt.Sprintf("k%d", rng.IntN(40)), win: string([]byte{byte(rng.IntN(3))}), val: fmt.Sprintf("v%d-%d", s, i)}
			if rng.IntN(10) == 0 {
				r.key = r.key + "\x01"
			}
			all = append(all, r)
			seg = shuffle.AppendField(seg, []byte(r.key))
			seg = shuffle.AppendField(seg, []byte(r.win))
			seg = shuffle.AppendField(seg, []byte(r.val))
		}
		segs = append(segs, seg)
	}
	type grp struct {
		key, win string
		vals     []string
	}
	var want []grp
	for _, r := range all {
		i := slices.IndexFunc(want, func(g grp) bool { return g.key == r.key && g.win == r.win })
		if i < 0 {
			want = append(want, grp{key: r.key, win: r.win})
			i = len(want) - 1
		}
		want[i].vals = append(want[i].vals, r.val)
	}

	g := newGrouper()
	for _, seg := range segs {
		if err := g.addSegment(seg); err != nil {
			t.Fatal(err)
		}
	}
	if g.records() != int64(len(all)) {
		t.Fatalf("records() = %d, want %d", g.records(), len(all))
	}
	var got []grp
	err := g.each(func(key, win []byte, vals func(func([]byte) bool), n int) error {
		gr := grp{key: string(key), win: string(win)}
		for v := range vals {
			gr.vals = append(gr.vals, string(v))
		}
		if n != len(gr.vals) {
			return fmt.Errorf("group %q: n = %d but %d values", key, n, len(gr.vals))
		}
		got = append(got, gr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].key != want[i].key || got[i].win != want[i].win || !slices.Equal(got[i].vals, want[i].vals) {
			t.Fatalf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGrouperRejectsTruncatedRecords(t *testing.T) {
	seg := shuffle.AppendField(nil, []byte("key"))
	seg = shuffle.AppendField(seg, []byte("w"))
	seg = shuffle.AppendField(seg, []byte("value"))
	for cut := 1; cut < len(seg); cut++ {
		if err := newGrouper().addSegment(seg[:cut]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes was accepted", cut, len(seg))
		}
	}
}

// groupCase is a group partition with a reference grouping computed by a
// plain map: every (key, window) with its values in arrival order.
type groupCase struct {
	segs [][]byte
	want map[[2]string][]int64 // (key, window start) -> values
	n    int
}

var (
	testKeyCoder = coder.NewString()
	testValCoder = coder.NewVarInt()
	testInCoder  = coder.NewW(coder.NewKV([]*coder.Coder{testKeyCoder, testValCoder}), coder.NewIntervalWindow())
)

// newGroupCase builds segs segments of records over keys keys and three
// windows, a quarter of all records on one hot key, so the hot group is
// larger than any budget the tests use.
func newGroupCase(t *testing.T, seed uint64, segs, perSeg, keys int) *groupCase {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	keyEnc := exec.MakeElementEncoder(testKeyCoder)
	valEnc := exec.MakeElementEncoder(testValCoder)
	winEnc := exec.MakeWindowEncoder(testInCoder.Window)
	enc := func(e exec.ElementEncoder, v any) []byte {
		var b bytes.Buffer
		if err := e.Encode(&exec.FullValue{Elm: v}, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	gc := &groupCase{want: map[[2]string][]int64{}}
	val := int64(0)
	for s := 0; s < segs; s++ {
		var seg []byte
		for i := 0; i < perSeg; i++ {
			key := "hot"
			if rng.IntN(4) != 0 {
				key = fmt.Sprintf("key-%d", rng.IntN(keys))
			}
			start := mtime.Time(rng.IntN(3) * 1000)
			wb, err := exec.EncodeWindow(winEnc, window.IntervalWindow{Start: start, End: start + 1000})
			if err != nil {
				t.Fatal(err)
			}
			val++
			seg = shuffle.AppendField(seg, enc(keyEnc, key))
			seg = shuffle.AppendField(seg, wb)
			seg = shuffle.AppendField(seg, enc(valEnc, val))
			id := [2]string{key, fmt.Sprint(start)}
			gc.want[id] = append(gc.want[id], val)
			gc.n++
		}
		gc.segs = append(gc.segs, seg)
	}
	return gc
}

func (gc *groupCase) reader() func() ([]byte, error) {
	i := 0
	return func() ([]byte, error) {
		if i == len(gc.segs) {
			return nil, nil
		}
		i++
		return gc.segs[i-1], nil
	}
}

// runGrouped runs feedGrouped over gc and decodes what it sends with the
// SDK's own decoders for the DataSource's coder, KV<K, Iterable<V>>:
// the groups in the order sent, and the bytes sent.
func runGrouped(ctx context.Context, t *testing.T, gc *groupCase, read func() ([]byte, error), lim groupLimits) ([][2]string, map[[2]string][]int64, []byte, groupStats, error) {
	t.Helper()
	ch := make(chan exec.Elements, 4)
	var sent []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			sent = append(sent, e.Data...)
		}
	}()
	st, err := feedGrouped(ctx, read, testInCoder, &chunker{ch: ch, transform: "src"}, lim, valueLayout{})
	close(ch)
	<-done
	if err != nil {
		return nil, nil, nil, st, err
	}
	outCoder := coder.NewW(coder.NewKV([]*coder.Coder{testKeyCoder, coder.NewI(testValCoder)}), coder.NewIntervalWindow())
	winDec := exec.MakeWindowDecoder(outCoder.Window)
	keyDec := exec.MakeElementDecoder(testKeyCoder)
	itDec := exec.MakeElementDecoder(coder.NewI(testValCoder))
	r := bytes.NewReader(sent)
	var order [][2]string
	got := map[[2]string][]int64{}
	for r.Len() > 0 {
		ws, ts, _, err := exec.DecodeWindowedValueHeader(winDec, r)
		if err != nil {
			t.Fatalf("decoding a group's header: %v", err)
		}
		k, err := keyDec.Decode(r)
		if err != nil {
			t.Fatalf("decoding a group's key: %v", err)
		}
		var vals []int64
		if lim.files == nil {
			it, err := itDec.Decode(r)
			if err != nil {
				t.Fatalf("decoding a group's values: %v", err)
			}
			vals = it.Elm.([]int64)
		} else {
			vals = decodeStateBacked(t, r, lim.files)
		}
		w := ws[0].(window.IntervalWindow)
		if ts != w.MaxTimestamp() {
			t.Fatalf("group stamped %v, want the end of its window %v", ts, w.MaxTimestamp())
		}
		id := [2]string{k.Elm.(string), fmt.Sprint(w.Start)}
		if _, dup := got[id]; dup {
			t.Fatalf("group %v sent twice", id)
		}
		order = append(order, id)
		got[id] = append([]int64{}, vals...)
	}
	return order, got, sent, st, nil
}

// decodeStateBacked decodes an iterable of varints that may end in a
// state-backed chunk, reading that chunk's values from files as the SDK's
// DataSource would through OpenIterable.
func decodeStateBacked(t *testing.T, r *bytes.Reader, files *iterableFiles) []int64 {
	t.Helper()
	must := func(v int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatalf("decoding a group's values: %v", err)
		}
		return v
	}
	var vals []int64
	u, err := coder.DecodeUint32(r)
	if err != nil {
		t.Fatalf("decoding a group's size: %v", err)
	}
	size := int64(int32(u)) // -1: chunked
	if size >= 0 {
		for range size {
			vals = append(vals, must(coder.DecodeVarInt(r)))
		}
		return vals
	}
	for {
		chunk := must(coder.DecodeVarInt(r))
		switch {
		case chunk == 0:
			return vals
		case chunk == -1:
			token := make([]byte, must(coder.DecodeVarInt(r)))
			if _, err := io.ReadFull(r, token); err != nil {
				t.Fatal(err)
			}
			sr := &stateReader{iterables: files}
			rc, err := sr.OpenIterable(context.Background(), exec.StreamID{PtransformID: "src"}, token)
			if err != nil {
				t.Fatal(err)
			}
			for {
				v, err := coder.DecodeVarInt(rc)
				if err == io.EOF {
					break
				}
				vals = append(vals, must(v, err))
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			return vals
		}
		for range chunk {
			vals = append(vals, must(coder.DecodeVarInt(r)))
		}
	}
}

func checkGroups(t *testing.T, gc *groupCase, got map[[2]string][]int64) {
	t.Helper()
	if len(got) != len(gc.want) {
		t.Fatalf("%d groups, want %d", len(got), len(gc.want))
	}
	for id, vals := range gc.want {
		if !slices.Equal(got[id], vals) {
			t.Fatalf("group %v has %d values %v..., want %d %v...", id, len(got[id]), head(got[id]), len(vals), head(vals))
		}
	}
}

func head(v []int64) []int64 { return v[:min(len(v), 5)] }

func dirEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		t.Fatalf("%s still holds %d entries, e.g. %s", dir, len(ents), ents[0].Name())
	}
}

// TestGroupingSpillsPastTheBudget groups one partition (many keys, three
// windows, one hot key with a quarter of all values) under a budget large
// enough for the hash table and under one a small fraction of the
// partition: both send exactly the reference groups, values in arrival
// order; the small budget spills sorted runs, sends the groups in identity
// order, and leaves no spill file behind.
func TestGroupingSpillsPastTheBudget(t *testing.T) {
	gc := newGroupCase(t, 1, 8, 5000, 3000)
	size := 0
	for _, s := range gc.segs {
		size += len(s)
	}
	ctx := context.Background()

	_, inMem, _, st, err := runGrouped(ctx, t, gc, gc.reader(), groupLimits{memory: 1 << 30, dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, gc, inMem)
	if st.spilled || st.spillRuns != 0 || st.records != int64(gc.n) {
		t.Fatalf("in-memory grouping: stats %+v, want no spill and %d records", st, gc.n)
	}

	dir := t.TempDir()
	// Small iterable chunks, so the large groups span several.
	lim := groupLimits{memory: int64(size / 16), dir: dir, chunk: 512}
	order, spilled, sent, st, err := runGrouped(ctx, t, gc, gc.reader(), lim)
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, gc, spilled)
	if !st.spilled || st.spillRuns < 4 || st.spillBytes < int64(size)/2 || st.records != int64(gc.n) {
		t.Fatalf("grouping %d bytes in %d: stats %+v, want several spilled runs and %d records", size, lim.memory, st, gc.n)
	}
	t.Logf("%d records, %d bytes, %d groups: %d runs, %d bytes spilled", gc.n, size, len(gc.want), st.spillRuns, st.spillBytes)
	dirEmpty(t, dir)
	// Groups come in identity order: by encoded key (length first), then
	// window.
	if !slices.IsSortedFunc(order, func(a, b [2]string) int {
		if c := cmp.Compare(len(a[0]), len(b[0])); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(len(a[1]), len(b[1])), cmp.Compare(a[1], b[1]))
	}) {
		t.Fatalf("spilled groups not in identity order: %v...", order[:min(len(order), 8)])
	}
	// With large groups' tails in files: the same groups, some of them
	// state-backed, and no file left once the task removes them.
	fdir := t.TempDir()
	files := &iterableFiles{parent: fdir}
	flim := lim
	flim.files, flim.large = files, 2048
	_, backed, _, fst, err := runGrouped(ctx, t, gc, gc.reader(), flim)
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, gc, backed)
	if fst.largeGroups < 3 { // the hot key in each of three windows
		t.Fatalf("%d groups were state-backed, want at least 3", fst.largeGroups)
	}
	if _, err := (&stateReader{iterables: files}).OpenIterable(ctx, exec.StreamID{}, []byte("../x")); !errors.Is(err, errBadIterableToken) {
		t.Fatalf("OpenIterable of a foreign token: %v, want errBadIterableToken", err)
	}
	if err := files.remove(); err != nil {
		t.Fatal(err)
	}
	dirEmpty(t, fdir)
	dirEmpty(t, dir)

	// And the bytes sent are the same on a second run.
	_, _, again, _, err := runGrouped(ctx, t, gc, gc.reader(), lim)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sent, again) {
		t.Fatal("two spilled groupings of the same partition sent different bytes")
	}
}

// TestGroupingSpillCleansUpOnErrorAndCancel fails a spilling grouping by a
// segment that cannot be read, by a truncated record and by cancelling it
// while it sends groups: each returns its error and leaves the spill
// directory empty.
func TestGroupingSpillCleansUpOnErrorAndCancel(t *testing.T) {
	gc := newGroupCase(t, 2, 6, 3000, 500)
	errRead := errors.New("segment unreadable")
	t.Run("read error", func(t *testing.T) {
		dir := t.TempDir()
		next := gc.reader()
		n := 0
		read := func() ([]byte, error) {
			if n++; n == 5 {
				return nil, errRead
			}
			return next()
		}
		_, _, _, st, err := runGrouped(context.Background(), t, gc, read, groupLimits{memory: 16 << 10, dir: dir})
		if !errors.Is(err, errRead) || !st.spilled {
			t.Fatalf("err = %v, spilled %v; want %v after spilling", err, st.spilled, errRead)
		}
		dirEmpty(t, dir)
	})
	t.Run("truncated record", func(t *testing.T) {
		dir := t.TempDir()
		next := gc.reader()
		n := 0
		read := func() ([]byte, error) {
			seg, err := next()
			if n++; n == 4 {
				seg = seg[:len(seg)-1]
			}
			return seg, err
		}
		_, _, _, _, err := runGrouped(context.Background(), t, gc, read, groupLimits{memory: 16 << 10, dir: dir})
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("err = %v, want a truncated record", err)
		}
		dirEmpty(t, dir)
	})
	t.Run("cancel", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan exec.Elements) // nobody reads: sending blocks until cancelled
		errc := make(chan error, 1)
		go func() {
			_, err := feedGrouped(ctx, gc.reader(), testInCoder, &chunker{ch: ch, transform: "src"}, groupLimits{memory: 16 << 10, dir: dir}, valueLayout{})
			errc <- err
		}()
		// The feeder spills everything before it sends its first chunk;
		// once the spill directory exists, cancel.
		for {
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) > 0 {
				break
			}
			select {
			case err := <-errc:
				t.Fatalf("grouping ended before it was cancelled: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		dirEmpty(t, dir)
	})
}

// genSegments returns a reader of n segments of per records each, made on
// demand (so the caller holds only what the grouping keeps): keys from
// keys distinct ones, a quarter on one hot key, one window, 16-byte values.
func genSegments(n, per, keys int) func() ([]byte, error) {
	rng := rand.New(rand.NewPCG(3, 4))
	win, _ := exec.EncodeWindow(exec.MakeWindowEncoder(testInCoder.Window), window.IntervalWindow{Start: 0, End: 1000})
	i := 0
	return func() ([]byte, error) {
		if i == n {
			return nil, nil
		}
		i++
		var seg []byte
		val := make([]byte, 17)
		val[0] = 16
		for range per {
			key := []byte("\x03hot")
			if rng.IntN(4) != 0 {
				key = fmt.Appendf(nil, "\x0ak%09d", rng.IntN(keys))
			}
			for j := 1; j < len(val); j++ {
				val[j] = byte(rng.Uint32())
			}
			seg = shuffle.AppendField(seg, key)
			seg = shuffle.AppendField(seg, win)
			seg = shuffle.AppendField(seg, val)
		}
		return seg, nil
	}
}

// BenchmarkGrouping groups 64 segments of 16,384 records (about 48 MiB of
// records, 100,000 keys and a hot key) in memory and past grouping budgets
// of 64 MiB and 4 MiB, and reports the peak heap in use, sampled every
// millisecond.
func BenchmarkGrouping(b *testing.B) {
	for _, bc := range []struct {
		name   string
		memory int64
	}{{"hash", 1 << 30}, {"spill-64MiB", 64 << 20}, {"spill-4MiB", 4 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			var peak uint64
			for range b.N {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				sampled := make(chan uint64)
				go func() {
					var top uint64
					var ms runtime.MemStats
					tick := time.NewTicker(time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							sampled <- top
							return
						case <-tick.C:
							runtime.ReadMemStats(&ms)
							top = max(top, ms.HeapInuse-min(ms.HeapInuse, base.HeapInuse))
						}
					}
				}()
				ch := make(chan exec.Elements, 4)
				drained := make(chan struct{})
				go func() {
					for range ch {
					}
					close(drained)
				}()
				files := &iterableFiles{parent: b.TempDir()}
				st, err := feedGrouped(context.Background(), genSegments(64, 16384, 100000), testInCoder,
					&chunker{ch: ch, transform: "src"}, groupLimits{memory: bc.memory, dir: b.TempDir(), files: files}, valueLayout{})
				close(ch)
				<-drained
				close(stop)
				peak = max(peak, <-sampled)
				if err != nil {
					b.Fatal(err)
				}
				if err := files.remove(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.spillRuns), "runs")
				b.ReportMetric(float64(st.largeGroups), "large-groups")
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
