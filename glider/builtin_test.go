package glider

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func readRecords(t *testing.T, b []byte) (keys []string, vals [][]byte) {
	t.Helper()
	rr := NewRecordReader(bytes.NewReader(b))
	for {
		k, v, err := rr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(k))
		vals = append(vals, slices.Clone(v))
	}
}

func TestMergeSumsByKey(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "merge")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/m", ActionMerge, ActionOptions{Options: map[string]string{"combine": CombineInt64Sum}}); err != nil {
		t.Fatal(err)
	}
	// Five writers stream random pairs over 1,024 keys, with values over
	// the whole int64 range (sums wrap around, as they do in Go).
	want := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for w := range 5 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			aw, err := c.ActionWriter(ctx, "/m")
			if err != nil {
				errs <- err
				return
			}
			local := map[string]int64{}
			var rec []byte
			for range 50_000 {
				k := strconv.Itoa(rng.IntN(1024))
				v := int64(rng.Uint64())
				local[k] += v
				rec = AppendRecord(rec[:0], []byte(k), binary.AppendVarint(nil, v))
				if _, err := aw.Write(rec); err != nil {
					errs <- err
					return
				}
			}
			if err := aw.Close(); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			for k, v := range local {
				want[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out, err := c.ReadAction(ctx, "/m")
	if err != nil {
		t.Fatal(err)
	}
	keys, vals := readRecords(t, out)
	if len(keys) != len(want) || !slices.IsSorted(keys) {
		t.Fatalf("%d keys (sorted %v), want %d", len(keys), slices.IsSorted(keys), len(want))
	}
	for i, k := range keys {
		v, n := binary.Varint(vals[i])
		if n != len(vals[i]) || v != want[k] {
			t.Fatalf("key %s: %d, want %d", k, v, want[k])
		}
	}
	st, err := c.ClusterStats(ctx)
	if err != nil || st.ActionBytes <= 0 || st.ActionBytes > 1024*(4+10) {
		t.Fatalf("merge state %+v %v: want at most 1024 keys of ≤4 bytes and values of ≤10", st, err)
	}

	// A value that is not an int64 fails the stream and changes nothing.
	bad := AppendRecord(AppendRecord(nil, []byte("0"), binary.AppendVarint(nil, 5)), []byte("1"), []byte{0xff})
	if err := c.WriteAction(ctx, "/m", bad); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "zig-zag") {
		t.Fatalf("bad value: %v", err)
	}
	// So does a truncated record.
	if err := c.WriteAction(ctx, "/m", bad[:len(bad)-1]); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated record: %v", err)
	}
	out2, err := c.ReadAction(ctx, "/m")
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("failed streams changed the merged state (%v)", err)
	}
}

func TestMergeOtherCombiners(t *testing.T) {
	reg := DefaultRegistry()
	reg.RegisterCombiner("concat", func(acc, v []byte) ([]byte, error) { return append(acc, v...), nil })
	cl := startCluster(t, ClusterConfig{StorageServers: 1, ActiveServers: 1, Registry: reg})
	c := dial(t, cl, "merge")
	ctx := testCtx(t)
	for name, want := range map[string]string{CombineInt64Min: "-7", CombineInt64Max: "9", CombineLast: "last"} {
		path := "/" + name
		if _, err := c.CreateAction(ctx, path, ActionMerge, ActionOptions{Options: map[string]string{"combine": name}}); err != nil {
			t.Fatal(err)
		}
		var in []byte
		if name == CombineLast {
			in = AppendRecord(AppendRecord(nil, []byte("k"), []byte("first")), []byte("k"), []byte("last"))
		} else {
			for _, v := range []int64{3, -7, 9, 0} {
				in = AppendRecord(in, []byte("k"), binary.AppendVarint(nil, v))
			}
		}
		if err := c.WriteAction(ctx, path, in); err != nil {
			t.Fatal(err)
		}
		out, err := c.ReadAction(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		_, vals := readRecords(t, out)
		got := string(vals[0])
		if name != CombineLast {
			v, _ := binary.Varint(vals[0])
			got = fmt.Sprint(v)
		}
		if got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	// A combiner registered by the program is found by name.
	if _, err := c.CreateAction(ctx, "/cat", ActionMerge, ActionOptions{Options: map[string]string{"combine": "concat"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		if err := c.WriteAction(ctx, "/cat", AppendRecord(nil, []byte("k"), []byte(s))); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := c.ReadAction(ctx, "/cat")
	if _, vals := readRecords(t, out); string(vals[0]) != "ab" {
		t.Fatalf("concat: %q", vals[0])
	}
}

func TestSortAction(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "sort")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/s", ActionSort, ActionOptions{Options: map[string]string{"writers": "4", "output": "/sorted"}}); err != nil {
		t.Fatal(err)
	}
	type kv struct{ k, v string }
	var all []kv
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			var buf []byte
			var mine []kv
			for i := range 20_000 {
				k := fmt.Sprintf("%010d", rng.IntN(1_000_000))
				v := fmt.Sprintf("w%d-%d", w, i)
				mine = append(mine, kv{k, v})
				buf = AppendRecord(buf, []byte(k), []byte(v))
			}
			if err := c.WriteAction(ctx, "/s", buf); err != nil {
				t.Error(err)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortStableFunc(all, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	check := func(b []byte) {
		keys, vals := readRecords(t, b)
		if len(keys) != len(all) {
			t.Fatalf("%d records, want %d", len(keys), len(all))
		}
		for i := range keys {
			if keys[i] != all[i].k {
				t.Fatalf("record %d: key %s, want %s", i, keys[i], all[i].k)
			}
		}
		// Values travel with their keys.
		got := map[string]string{}
		for i := range keys {
			got[string(vals[i])] = keys[i]
		}
		for _, e := range all {
			if got[e.v] != e.k {
				t.Fatalf("value %s has key %s, want %s", e.v, got[e.v], e.k)
			}
		}
	}
	out, err := c.ReadAction(ctx, "/s")
	if err != nil {
		t.Fatal(err)
	}
	check(out)
	// With writers=4 and an output path, the sorted stream was also
	// written to a file when the fourth writer finished.
	file, err := c.ReadFile(ctx, "/sorted")
	if err != nil {
		t.Fatal(err)
	}
	check(file)

	// Lines mode sorts text.
	if _, err := c.CreateAction(ctx, "/lines", ActionSort, ActionOptions{Options: map[string]string{"format": "lines"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAction(ctx, "/lines", []byte("pear\napple\nfig\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAction(ctx, "/lines", []byte("banana\n")); err != nil {
		t.Fatal(err)
	}
	if out, _ := c.ReadAction(ctx, "/lines"); string(out) != "apple\nbanana\nfig\npear\n" {
		t.Fatalf("lines: %q", out)
	}
	if _, err := c.CreateAction(ctx, "/bad", ActionSort, ActionOptions{Options: map[string]string{"format": "csv"}}); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "csv") {
		t.Fatalf("bad format: %v", err)
	}
}

func TestFilterAction(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "filter")
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(1, 1))
	words := []string{"alpha", "beta", "gamma", "delta", "glider", "gale"}
	var files [][]string
	if err := c.Mkdir(ctx, "/in"); err != nil {
		t.Fatal(err)
	}
	for f := range 3 {
		var lines []string
		var buf bytes.Buffer
		for range 30_000 {
			l := words[rng.IntN(len(words))] + " " + strconv.Itoa(rng.IntN(100000)) + " " + words[rng.IntN(len(words))]
			lines = append(lines, l)
			buf.WriteString(l + "\n")
		}
		files = append(files, lines)
		if err := c.WriteFile(ctx, fmt.Sprintf("/in/part-%d", f), "", buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(match func(string) bool, only int) string {
		var b strings.Builder
		for i, lines := range files {
			if only >= 0 && i != only {
				continue
			}
			for _, l := range lines {
				if match(l) {
					b.WriteString(l + "\n")
				}
			}
		}
		return b.String()
	}
	re := regexp.MustCompile(`^g\w+ 1\d* `)
	for _, tc := range []struct {
		path, input, pred, arg string
		match                  func(string) bool
		only                   int
	}{
		{"/f1", "/in", PredSubstring, "glider", func(l string) bool { return strings.Contains(l, "glider") }, -1},
		{"/f2", "/in/part-1", PredRegexp, re.String(), re.MatchString, 1},
		{"/f3", "/in", PredPrefix, "delta 9", func(l string) bool { return strings.HasPrefix(l, "delta 9") }, -1},
	} {
		if _, err := c.CreateAction(ctx, tc.path, ActionFilter, ActionOptions{Options: map[string]string{"input": tc.input, "predicate": tc.pred, "arg": tc.arg}}); err != nil {
			t.Fatal(err)
		}
		before := c.Stats()
		out, err := c.ReadAction(ctx, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		want := expect(tc.match, tc.only)
		if string(out) != want {
			t.Fatalf("%s: %d bytes, want %d", tc.path, len(out), len(want))
		}
		// The client received the matching lines, not the input.
		if got := c.Stats().Sub(before).BytesReceived; got > int64(len(want))+64<<10 {
			t.Fatalf("%s: client received %d bytes for %d bytes of output", tc.path, got, len(want))
		}
	}
	if _, err := c.CreateAction(ctx, "/bad", ActionFilter, ActionOptions{Options: map[string]string{"input": "/in", "predicate": PredRegexp, "arg": "("}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad regexp: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/bad", ActionFilter, ActionOptions{}); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "input") {
		t.Fatalf("missing input option: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/missing", ActionFilter, ActionOptions{Options: map[string]string{"input": "/nope"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAction(ctx, "/missing"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("filter of a missing file: %v", err)
	}
}

func TestCountAction(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "count")
	ctx := testCtx(t)
	for mode, in := range map[string][]byte{
		"lines":   []byte("a\nbb\n\nccc\n"),
		"bytes":   bytes.Repeat([]byte("x"), 3*DefaultBlockSize+5),
		"records": AppendRecord(AppendRecord(nil, []byte("k"), nil), nil, []byte("v")),
	} {
		path := "/" + mode
		if _, err := c.CreateAction(ctx, path, ActionCount, ActionOptions{Options: map[string]string{"mode": mode}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := c.WriteAction(ctx, path, in); err != nil {
				t.Fatal(err)
			}
		}
		var want int64
		switch mode {
		case "lines":
			want = 2 * int64(bytes.Count(in, []byte("\n")))
		case "bytes":
			want = 2 * int64(len(in))
		case "records":
			want = 4
		}
		out, err := c.ReadAction(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := ParseCount(out); err != nil || n != want {
			t.Fatalf("%s: %q, want %d", mode, out, want)
		}
	}
}

func TestMergeText(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "merge")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/m", ActionMerge, ActionOptions{Options: map[string]string{"format": "text"}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	want := map[int]int64{}
	for range 3 {
		var b []byte
		for range 20_000 {
			k, v := rng.IntN(1024), int64(rng.Uint64())
			want[k] += v
			b = strconv.AppendInt(append(strconv.AppendInt(b, int64(k), 10), ' '), v, 10)
			b = append(b, '\n')
		}
		if err := c.WriteAction(ctx, "/m", b); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ReadAction(ctx, "/m")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for _, l := range lines {
		var k int
		var v int64
		if _, err := fmt.Sscanf(l, "%d %d", &k, &v); err != nil || want[k] != v {
			t.Fatalf("line %q: want %d (%v)", l, want[k], err)
		}
	}
	if err := c.WriteAction(ctx, "/m", []byte("5 five\n")); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "five") {
		t.Fatalf("bad text value: %v", err)
	}
}

func TestParseInt64(t *testing.T) {
	for _, s := range []string{"0", "-0", "+5", "9223372036854775807", "-9223372036854775808", "-12", "007"} {
		want, _ := strconv.ParseInt(s, 10, 64)
		if got, ok := parseInt64([]byte(s)); !ok || got != want {
			t.Errorf("%q: %d %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "-", "9223372036854775808", "-9223372036854775809", "1e3", "12a", "99999999999999999999", " 1"} {
		if _, ok := parseInt64([]byte(s)); ok {
			t.Errorf("%q parsed", s)
		}
	}
}
