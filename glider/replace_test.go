package glider

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestReplaceAndRename checks that Replace swaps a file's contents in one
// step (readers see the old or the new file, never a mix) and frees the
// old blocks, and that Rename moves files only.
func TestReplaceAndRename(t *testing.T) {
	cl := startCluster(t, ClusterConfig{Storage: StorageConfig{BlockSize: 4096, Capacity: 1 << 20}})
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	old := bytes.Repeat([]byte("o"), 10000)
	if err := c.WriteFile(ctx, "/f", "", old); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, "/f", ""); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over a file = %v, want ErrExists", err)
	}
	w, err := c.Replace(ctx, "/f", "")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new"))
	if got, _ := c.ReadFile(ctx, "/f"); !bytes.Equal(got, old) {
		t.Fatal("the old file changed before the replacing writer closed")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ReadFile(ctx, "/f"); string(got) != "new" {
		t.Fatalf("after Replace: %q", got)
	}
	waitFor(t, func() bool {
		st, err := c.ClusterStats(ctx)
		return err == nil && st.Blocks == 1
	})
	// An aborted replacement leaves the file as it was.
	w, _ = c.Replace(ctx, "/f", "")
	w.Write([]byte("never"))
	w.Abort()
	if got, _ := c.ReadFile(ctx, "/f"); string(got) != "new" {
		t.Fatalf("after an aborted Replace: %q", got)
	}
	if err := c.Mkdir(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Replace(ctx, "/d", ""); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("Replace of a directory = %v, want ErrWrongKind", err)
	}

	if err := c.WriteFile(ctx, "/g", "", []byte("g")); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "/g", "/d/h"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "/g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("source after Rename: %v", err)
	}
	if err := c.Rename(ctx, "/f", "/d/h"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ReadFile(ctx, "/d/h"); string(got) != "new" {
		t.Fatalf("renamed onto an existing file: %q", got)
	}
	if err := c.Rename(ctx, "/d", "/e"); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("Rename of a directory = %v, want ErrWrongKind", err)
	}
	if err := c.Rename(ctx, "/d/h", "/nodir/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rename into a missing directory = %v, want ErrNotFound", err)
	}
	waitFor(t, func() bool {
		st, err := c.ClusterStats(ctx)
		return err == nil && st.Blocks == 1 && st.BytesStored == 3
	})
}

// TestFileSeek reads a many-block file from offsets around block
// boundaries and compares with the written bytes.
func TestFileSeek(t *testing.T) {
	cl := startCluster(t, ClusterConfig{Storage: StorageConfig{BlockSize: 1000, Capacity: 1 << 20}})
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	data := make([]byte, 10500)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := c.WriteFile(ctx, "/f", "", data); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, 1, 999, 1000, 1001, 5555, 10499, 10500, 20000, 3} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(r, 1500))
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		lo := min(off, int64(len(data)))
		want := data[lo:min(lo+1500, int64(len(data)))]
		if !bytes.Equal(got, want) {
			t.Fatalf("at offset %d: got %d bytes, want %d (equal prefix? %v)", off, len(got), len(want), bytes.HasPrefix(want, got))
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("negative seek = %v", err)
	}
}

// TestSortCommitOnRead streams records into a sort action that writes its
// output file itself when read, with values only and a terminator: the
// file holds the values in key order and the reader gets only a summary.
func TestSortCommitOnRead(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	if err := c.MkdirAll(ctx, "/out"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAction(ctx, "/s", ActionSort, ActionOptions{Options: map[string]string{
		"output": "/out/part", "commit": "read", "values": "true", "terminator": "\n"}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var want []string
	for w := range 3 {
		var buf []byte
		for i := range 500 {
			v := fmt.Sprintf("value-%d-%d-%d", w, i, rng.IntN(1e6))
			k := fmt.Sprintf("%08d", rng.IntN(1e6))
			want = append(want, k+"|"+v)
			buf = AppendRecord(buf, []byte(k), []byte(v))
		}
		if err := c.WriteAction(ctx, "/s", buf); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortStableFunc(want, func(a, b string) int { return strings.Compare(a[:8], b[:8]) })
	var wantOut strings.Builder
	for _, kv := range want {
		wantOut.WriteString(kv[9:] + "\n")
	}
	for range 2 { // a second read (a retried task) replaces the file
		sum, err := c.ReadAction(ctx, "/s")
		if err != nil {
			t.Fatal(err)
		}
		recs, size, err := ParseSortSummary(sum)
		if err != nil || recs != 1500 || size != int64(wantOut.Len()) {
			t.Fatalf("summary %q: %d records, %d bytes, %v; want 1500, %d", sum, recs, size, err, wantOut.Len())
		}
		got, err := c.ReadFile(ctx, "/out/part")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != wantOut.String() {
			t.Fatal("sorted output file differs from the independently sorted values")
		}
	}
	if _, err := c.CreateAction(ctx, "/bad", ActionSort, ActionOptions{Options: map[string]string{"commit": "read"}}); !errors.Is(err, ErrActionFailed) && err == nil {
		t.Fatal("commit=read without output was accepted")
	}
}

// TestFilterRange splits a file with long lines, CRLF endings and no final
// newline into byte ranges: the ranged filter actions together emit
// exactly the matching lines of the file, each once, in order.
func TestFilterRange(t *testing.T) {
	cl := startCluster(t, ClusterConfig{Storage: StorageConfig{BlockSize: 512, Capacity: 4 << 20}})
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var text strings.Builder
	var lines []string
	for i := range 400 {
		l := strings.Repeat("x", rng.IntN(40))
		if rng.IntN(3) == 0 {
			l += "needle"
		}
		if i%50 == 0 {
			l += strings.Repeat("y", 3000) // longer than a block
		}
		lines = append(lines, l)
		text.WriteString(l)
		if i%7 == 0 {
			text.WriteString("\r")
		}
		if i < 399 {
			text.WriteString("\n")
		}
	}
	if err := c.WriteFile(ctx, "/in", "", []byte(text.String())); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, l := range lines {
		// The last line ends in "\r" without a newline: the CR goes, as in
		// Gale's text input.
		if strings.Contains(l, "needle") {
			want.WriteString(l + "\n")
		}
	}
	size := int64(text.Len())
	for _, chunk := range []int64{1, 97, 1000, size} {
		var got bytes.Buffer
		for off, i := int64(0), 0; off < size; off, i = off+chunk, i+1 {
			p := fmt.Sprintf("/f-%d-%d", chunk, i)
			if _, err := c.CreateAction(ctx, p, ActionFilter, ActionOptions{Options: map[string]string{
				"input": "/in", "arg": "needle", "offset": fmt.Sprint(off), "length": fmt.Sprint(min(chunk, size-off))}}); err != nil {
				t.Fatal(err)
			}
			out, err := c.ReadAction(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(out)
			if err := c.Delete(ctx, p); err != nil {
				t.Fatal(err)
			}
			if chunk == 1 && off > 200 {
				break // one-byte ranges are slow to test over the whole file
			}
		}
		if chunk == 1 {
			if !strings.HasPrefix(want.String(), got.String()) {
				t.Fatalf("one-byte ranges: output is not a prefix of the expected lines")
			}
			continue
		}
		if got.String() != want.String() {
			t.Fatalf("ranges of %d bytes: got %d bytes, want %d", chunk, got.Len(), want.Len())
		}
	}
}

// TestSortWriterIDs streams equal keys from writers out of order and
// repeats one writer's stream (a retried task): ties come out in writer
// order, and the retried writer's records count once.
func TestSortWriterIDs(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/s", ActionSort, ActionOptions{Options: map[string]string{"writer-ids": "true"}}); err != nil {
		t.Fatal(err)
	}
	stream := func(id uint64, vals ...string) []byte {
		b := AppendRecord(nil, []byte(WriterKey), binary.AppendUvarint(nil, id))
		for _, v := range vals {
			b = AppendRecord(b, []byte("k"), []byte(v))
		}
		return b
	}
	for _, s := range [][]byte{stream(2, "c1", "c2"), stream(0, "a1"), stream(1, "b-old"), stream(1, "b1", "b2")} {
		if err := c.WriteAction(ctx, "/s", s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteAction(ctx, "/s", AppendRecord(nil, []byte("no header"), nil)); !errors.Is(err, ErrActionFailed) {
		t.Fatalf("stream without a header = %v, want ErrActionFailed", err)
	}
	out, err := c.ReadAction(ctx, "/s")
	if err != nil {
		t.Fatal(err)
	}
	rr := NewRecordReader(bytes.NewReader(out))
	var got []string
	for {
		_, v, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(v))
	}
	if want := []string{"a1", "b1", "b2", "c1", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestSortActionLarge sorts enough records to take the bucketed path, with
// keys of varied lengths sharing prefixes and many ties: the result equals
// a stable sort of the records in writer order.
func TestSortActionLarge(t *testing.T) {
	cl := startCluster(t, DefaultClusterConfig())
	c := dial(t, cl, "t")
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/s", ActionSort, ActionOptions{Options: map[string]string{"writer-ids": "true"}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	type kv struct{ k, v string }
	var want []kv
	for w := range 4 {
		b := AppendRecord(nil, []byte(WriterKey), binary.AppendUvarint(nil, uint64(w)))
		for i := range 6000 {
			k := strings.Repeat("ab", rng.IntN(6)) + string(rune('a'+rng.IntN(3)))
			if rng.IntN(4) == 0 {
				k = string([]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), 0, byte(rng.IntN(3))})
			}
			v := fmt.Sprintf("%d-%d", w, i)
			want = append(want, kv{k, v})
			b = AppendRecord(b, []byte(k), []byte(v))
		}
		if err := c.WriteAction(ctx, "/s", b); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortStableFunc(want, func(x, y kv) int { return strings.Compare(x.k, y.k) })
	out, err := c.ReadAction(ctx, "/s")
	if err != nil {
		t.Fatal(err)
	}
	rr := NewRecordReader(bytes.NewReader(out))
	for i, w := range want {
		k, v, err := rr.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if string(k) != w.k || string(v) != w.v {
			t.Fatalf("record %d: got (%q, %q), want (%q, %q)", i, k, v, w.k, w.v)
		}
	}
}

// TestMergeWriterIDs streams partial sums from writers whose streams are
// repeated (a retried task whose first attempt delivered, a duplicate) or
// cut (an attempt that failed while sending): every writer's data counts
// exactly once, with the native int64 fold and with a generic combiner.
func TestMergeWriterIDs(t *testing.T) {
	for _, combine := range []string{CombineInt64Sum, "generic-sum"} {
		t.Run(combine, func(t *testing.T) {
			reg := DefaultRegistry()
			sum := func(acc, v []byte) ([]byte, error) {
				x, _ := binary.Varint(v)
				a, _ := binary.Varint(acc)
				return binary.AppendVarint(acc[:0], a+x), nil
			}
			reg.RegisterCombiner("generic-sum", sum)
			cfg := DefaultClusterConfig()
			cfg.Registry = reg
			cl := startCluster(t, cfg)
			c := dial(t, cl, "t")
			ctx := testCtx(t)
			if _, err := c.CreateAction(ctx, "/m", ActionMerge, ActionOptions{Interleave: true,
				Options: map[string]string{"combine": combine, "writer-ids": "true"}}); err != nil {
				t.Fatal(err)
			}
			stream := func(id uint64, base int64) []byte {
				b := AppendRecord(nil, []byte(WriterKey), binary.AppendUvarint(nil, id))
				for k := range 3 {
					b = AppendRecord(b, []byte{'a' + byte(k)}, binary.AppendVarint(nil, base+int64(k)))
					b = AppendRecord(b, []byte{'a' + byte(k)}, binary.AppendVarint(nil, base))
				}
				return b
			}
			want := map[string]int64{}
			for id := range uint64(4) {
				for k := range 3 {
					want[string(rune('a'+k))] += 2*int64(id*100) + int64(k)
				}
			}
			// Writer 1's first stream is cut: it must not count, and its
			// retry must.
			w, err := c.ActionWriter(ctx, "/m")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(stream(1, 100)); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			w.Abort()
			// Writers 0 and 2 deliver twice (a retry after a lost result,
			// a duplicate); writer 3 delivers once.
			for _, id := range []uint64{0, 2, 1, 0, 3, 2} {
				if err := c.WriteAction(ctx, "/m", stream(id, int64(id*100))); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WriteAction(ctx, "/m", AppendRecord(nil, []byte("k"), binary.AppendVarint(nil, 1))); !errors.Is(err, ErrActionFailed) {
				t.Fatalf("stream without a header = %v, want ErrActionFailed", err)
			}
			out, err := c.ReadAction(ctx, "/m")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			rr := NewRecordReader(bytes.NewReader(out))
			for {
				k, v, err := rr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got[string(k)], _ = binary.Varint(v)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestSortActionPatterns sorts records that all fall into one bucket (the
// same first two key bytes), in ascending, descending, equal, sawtooth and
// random order, each split over two writers, some records cut over the
// action's blocks: the output equals a stable sort in writer order.
func TestSortActionPatterns(t *testing.T) {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 30000
	patterns := map[string]func(i int) string{
		"ascending":  func(i int) string { return fmt.Sprintf("zz%08d", i) },
		"descending": func(i int) string { return fmt.Sprintf("zz%08d", n-i) },
		"equal":      func(int) string { return "zzsame" },
		"sawtooth":   func(i int) string { return fmt.Sprintf("zz%03d", i%500) },
		"random":     func(int) string { return fmt.Sprintf("zz%x", rng.Uint32()) },
		"long-keys":  func(i int) string { return "zzzzzzzzzzzz" + fmt.Sprint(i%97) },
	}
	for name, key := range patterns {
		t.Run(name, func(t *testing.T) {
			a := &sortAction{}
			env := NewEnv(DefaultRegistry(), "/s", ActionSort, map[string]string{"writer-ids": "true"}, nil)
			if err := a.OnCreate(ctx, env); err != nil {
				t.Fatal(err)
			}
			type kv struct{ k, v string }
			var want []kv
			streams := make([][]byte, 2)
			for w := range streams {
				streams[w] = AppendRecord(nil, []byte(WriterKey), binary.AppendUvarint(nil, uint64(w)))
			}
			for i := range n {
				w := i % 2
				k, v := key(i), fmt.Sprintf("%d-%d-%s", w, i, strings.Repeat("v", i%600))
				streams[w] = AppendRecord(streams[w], []byte(k), []byte(v))
			}
			for w := range streams {
				rr := NewRecordReader(bytes.NewReader(streams[w]))
				rr.Next() // the header
				for {
					k, v, err := rr.Next()
					if err == io.EOF {
						break
					}
					want = append(want, kv{string(k), string(v)})
				}
			}
			// Writer 1 first: ties still come out in writer order.
			for _, w := range []int{1, 0} {
				if err := a.OnWrite(ctx, bytes.NewReader(streams[w])); err != nil {
					t.Fatal(err)
				}
			}
			slices.SortStableFunc(want, func(x, y kv) int { return strings.Compare(x.k, y.k) })
			var out bytes.Buffer
			if err := a.OnRead(ctx, &out); err != nil {
				t.Fatal(err)
			}
			rr := NewRecordReader(&out)
			for i, w := range want {
				k, v, err := rr.Next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if string(k) != w.k || string(v) != w.v {
					t.Fatalf("record %d: got (%q, %q), want (%q, %q)", i, k, v, w.k, w.v)
				}
			}
			if _, _, err := rr.Next(); err != io.EOF {
				t.Fatalf("more records than written: %v", err)
			}
		})
	}
}
