package extsort_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/quick"

	"github.com/galeproject/gale/shuffle/extsort"
)

// Test records: a 2-byte big-endian key length, the key, then a value that
// carries the record's arrival number, so stability is visible in the output.
func keyOfTest(rec []byte) []byte {
	n := int(binary.BigEndian.Uint16(rec))
	return rec[2 : 2+n]
}

func makeRec(key []byte, seq int, pad int) []byte {
	rec := binary.BigEndian.AppendUint16(nil, uint16(len(key)))
	rec = append(rec, key...)
	rec = binary.BigEndian.AppendUint64(rec, uint64(seq))
	return append(rec, bytes.Repeat([]byte{'v'}, pad)...)
}

// reference sorts a copy of recs with the standard library's stable sort.
func reference(recs [][]byte, keyOf func([]byte) []byte) [][]byte {
	want := slices.Clone(recs)
	slices.SortStableFunc(want, func(a, b []byte) int { return bytes.Compare(keyOf(a), keyOf(b)) })
	return want
}

// sortAll feeds recs to a new Sorter and returns its output and stats.
func sortAll(t testing.TB, cfg extsort.Config, keyOf func([]byte) []byte, recs [][]byte) ([][]byte, extsort.Stats) {
	t.Helper()
	s, err := extsort.New(cfg, keyOf)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	for i, r := range recs {
		if err := s.Add(r); err != nil {
			t.Fatalf("Add #%d: %v", i, err)
		}
	}
	var got [][]byte
	if err := s.Sort(context.Background(), func(rec []byte) error {
		got = append(got, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatalf("Sort: %v", err)
	}
	return got, s.Stats()
}

func assertSame(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range ents {
		t.Errorf("leftover spill entry %s", filepath.Join(dir, e.Name()))
	}
}

func randomKey(rng *rand.Rand, maxLen int, alphabet int) []byte {
	k := make([]byte, rng.IntN(maxLen+1))
	for i := range k {
		k[i] = byte('a' + rng.IntN(alphabet))
	}
	return k
}

func TestSortShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func(n int) [][]byte{
		"random": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				// Short alphabet and lengths 0..20: many shared prefixes,
				// keys shorter and longer than the 8-byte sort prefix.
				out = append(out, makeRec(randomKey(rng, 20, 3), i, rng.IntN(40)))
			}
			return out
		},
		"sorted": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				out = append(out, makeRec(fmt.Appendf(nil, "key-%09d", i), i, 20))
			}
			return out
		},
		"reverse": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				out = append(out, makeRec(fmt.Appendf(nil, "key-%09d", n-i), i, 20))
			}
			return out
		},
		"all-equal": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				out = append(out, makeRec([]byte("same-key-longer-than-8"), i, 10))
			}
			return out
		},
		"equal-short": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				out = append(out, makeRec([]byte("k"), i, 10))
			}
			return out
		},
		"empty-keys": func(n int) [][]byte {
			var out [][]byte
			for i := range n {
				out = append(out, makeRec(nil, i, i%7))
			}
			return out
		},
		"zero-padding": func(n int) [][]byte {
			// Keys that differ only by trailing zero bytes within and
			// beyond the 8-byte prefix.
			var out [][]byte
			for i := range n {
				out = append(out, makeRec(make([]byte, i%12), i, 5))
			}
			return out
		},
	}
	configs := map[string]extsort.Config{
		"memory":       {},
		"spill":        {MemoryBytes: 4 << 10},
		"spill-fanin2": {MemoryBytes: 2 << 10, MergeFanIn: 2},
	}
	for shape, gen := range shapes {
		for _, n := range []int{0, 1, 2, 3000} {
			recs := gen(n)
			want := reference(recs, keyOfTest)
			for cname, cfg := range configs {
				t.Run(fmt.Sprintf("%s/n=%d/%s", shape, n, cname), func(t *testing.T) {
					cfg.TempDir = t.TempDir()
					got, st := sortAll(t, cfg, keyOfTest, recs)
					assertSame(t, got, want)
					assertEmptyDir(t, cfg.TempDir)
					if st.Records != int64(n) {
						t.Errorf("Stats.Records = %d, want %d", st.Records, n)
					}
					if cfg.MemoryBytes != 0 && st.PeakBufferedBytes > cfg.MemoryBytes {
						t.Errorf("peak buffered %d exceeds budget %d", st.PeakBufferedBytes, cfg.MemoryBytes)
					}
					if cname == "memory" && st.RunsSpilled != 0 {
						t.Errorf("in-memory sort spilled %d runs", st.RunsSpilled)
					}
					if cname != "memory" && n == 3000 && st.RunsSpilled < 2 {
						t.Errorf("small budget spilled only %d runs", st.RunsSpilled)
					}
				})
			}
		}
	}
}

func TestHugeRecordLargerThanBudget(t *testing.T) {
	dir := t.TempDir()
	cfg := extsort.Config{MemoryBytes: 1 << 10, TempDir: dir, MergeFanIn: 3}
	var recs [][]byte
	for i := range 50 {
		pad := 10
		if i == 7 || i == 30 {
			pad = 10 << 10 // ten times the budget
		}
		recs = append(recs, makeRec(fmt.Appendf(nil, "k%03d", (i*37)%50), i, pad))
	}
	got, st := sortAll(t, cfg, keyOfTest, recs)
	assertSame(t, got, reference(recs, keyOfTest))
	assertEmptyDir(t, dir)
	if st.PeakBufferedBytes > cfg.MemoryBytes {
		t.Errorf("peak buffered %d exceeds budget %d", st.PeakBufferedBytes, cfg.MemoryBytes)
	}
	if st.MergePasses == 0 {
		t.Errorf("expected multi-pass merge with fan-in 3, stats %+v", st)
	}
}

func TestManyRunsMultiPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var recs [][]byte
	for i := range 5000 {
		recs = append(recs, makeRec(randomKey(rng, 12, 4), i, 30))
	}
	dir := t.TempDir()
	got, st := sortAll(t, extsort.Config{MemoryBytes: 2 << 10, MergeFanIn: 2, TempDir: dir}, keyOfTest, recs)
	assertSame(t, got, reference(recs, keyOfTest))
	assertEmptyDir(t, dir)
	t.Logf("stats: %+v", st)
	if st.RunsSpilled < 64 {
		t.Errorf("RunsSpilled = %d, want many runs", st.RunsSpilled)
	}
	// With fan-in 2, r runs need ceil(log2(r)) - 1 intermediate passes
	// (the in-memory tail joins the last merge).
	if st.MergePasses < 5 {
		t.Errorf("MergePasses = %d, want at least 5 for %d runs at fan-in 2", st.MergePasses, st.RunsSpilled)
	}
}

func TestStability(t *testing.T) {
	// Ten keys, many records each; equal keys must keep arrival order,
	// across spills and merge passes.
	var recs [][]byte
	for i := range 4000 {
		recs = append(recs, makeRec(fmt.Appendf(nil, "key%d", (i*7919)%10), i, 0))
	}
	for _, cfg := range []extsort.Config{{}, {MemoryBytes: 1 << 10, MergeFanIn: 2}, {MemoryBytes: 8 << 10}} {
		cfg.TempDir = t.TempDir()
		got, _ := sortAll(t, cfg, keyOfTest, recs)
		for i := 1; i < len(got); i++ {
			ka, kb := keyOfTest(got[i-1]), keyOfTest(got[i])
			c := bytes.Compare(ka, kb)
			seqA := binary.BigEndian.Uint64(got[i-1][2+len(ka):])
			seqB := binary.BigEndian.Uint64(got[i][2+len(kb):])
			if c > 0 || (c == 0 && seqA >= seqB) {
				t.Fatalf("cfg %+v: records %d,%d out of order: (%s,%d) then (%s,%d)", cfg, i-1, i, ka, seqA, kb, seqB)
			}
		}
		if len(got) != len(recs) {
			t.Fatalf("got %d records, want %d", len(got), len(recs))
		}
	}
}

func TestSpillDirFailure(t *testing.T) {
	parent := t.TempDir()
	notDir := filepath.Join(parent, "a-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"not-a-directory": notDir,
		"missing":         filepath.Join(parent, "does", "not", "exist"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := extsort.New(extsort.Config{MemoryBytes: 1 << 10, TempDir: dir}, keyOfTest)
			if err != nil {
				t.Fatal(err)
			}
			var addErr error
			for i := 0; i < 100 && addErr == nil; i++ {
				addErr = s.Add(makeRec([]byte("key"), i, 100))
			}
			var se *extsort.SpillError
			if !errors.As(addErr, &se) {
				t.Fatalf("Add error = %v, want *SpillError", addErr)
			}
			msg := addErr.Error()
			if !strings.Contains(msg, dir) || !strings.Contains(msg, "Config.TempDir") {
				t.Errorf("error %q does not name the directory and the fix", msg)
			}
			// The failure is sticky.
			if err := s.Add(makeRec([]byte("k"), 0, 0)); !errors.Is(err, addErr) {
				t.Errorf("Add after failure = %v, want the first failure", err)
			}
			if err := s.Sort(context.Background(), func([]byte) error { return nil }); err == nil {
				t.Error("Sort after a spill failure succeeded")
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Errorf("parent dir has %d entries, want only the blocking file", len(ents))
			}
		})
	}
}

func TestEmitErrorAndCancel(t *testing.T) {
	var recs [][]byte
	for i := range 2000 {
		recs = append(recs, makeRec(fmt.Appendf(nil, "%05d", (i*31)%2000), i, 20))
	}
	boom := errors.New("downstream full")
	for _, budget := range []int64{0, 4 << 10} {
		dir := t.TempDir()
		s, err := extsort.New(extsort.Config{MemoryBytes: budget, TempDir: dir}, keyOfTest)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := s.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		err = s.Sort(context.Background(), func([]byte) error {
			n++
			if n == 100 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Errorf("budget %d: Sort error = %v, want %v", budget, err, boom)
		}
		assertEmptyDir(t, dir) // Sort removed its runs on the error path
		if err := s.Sort(context.Background(), func([]byte) error { return nil }); err == nil {
			t.Error("second Sort succeeded")
		}
		s.Close()

		s, _ = extsort.New(extsort.Config{MemoryBytes: budget, TempDir: dir}, keyOfTest)
		for _, r := range recs {
			_ = s.Add(r)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Sort(ctx, func([]byte) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("budget %d: Sort with canceled ctx = %v", budget, err)
		}
		s.Close()
		assertEmptyDir(t, dir)
		if err := s.Add(recs[0]); !errors.Is(err, extsort.ErrClosed) {
			t.Errorf("Add after Close = %v, want ErrClosed", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := extsort.Config{MemoryBytes: -1, MergeFanIn: 1}.Validate()
	if !errors.Is(err, extsort.ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"MemoryBytes", "MergeFanIn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := extsort.New(extsort.Config{}, nil); !errors.Is(err, extsort.ErrInvalidConfig) {
		t.Errorf("New with nil keyOf = %v", err)
	}
	if err := extsort.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
}

// TestQuickProperty: for random records and a random budget and fan-in, the
// output equals slices.SortStableFunc of the input.
func TestQuickProperty(t *testing.T) {
	dir := t.TempDir()
	prop := func(seed uint64, budgetRaw uint16, fanRaw uint8, nRaw uint16) bool {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		n := int(nRaw % 1500)
		var recs [][]byte
		for i := range n {
			recs = append(recs, makeRec(randomKey(rng, 1+rng.IntN(16), 1+rng.IntN(5)), i, rng.IntN(64)))
		}
		cfg := extsort.Config{
			MemoryBytes: 64 + int64(budgetRaw)%(32<<10),
			MergeFanIn:  2 + int(fanRaw)%10,
			TempDir:     dir,
		}
		got, st := sortAll(t, cfg, keyOfTest, recs)
		want := reference(recs, keyOfTest)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Logf("seed %d cfg %+v: output differs", seed, cfg)
			return false
		}
		if st.PeakBufferedBytes > cfg.MemoryBytes {
			t.Logf("seed %d: peak %d over budget %d", seed, st.PeakBufferedBytes, cfg.MemoryBytes)
			return false
		}
		ents, _ := os.ReadDir(dir)
		return len(ents) == 0
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 60, Rand: nil}); err != nil {
		t.Fatal(err)
	}
}
