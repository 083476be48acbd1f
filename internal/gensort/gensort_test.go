package gensort_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale/internal/gensort"
)

func gen(t testing.TB, cfg gensort.Config) ([]byte, gensort.Checksum) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := gensort.Generate(context.Background(), &buf, cfg)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	if int64(buf.Len()) != cfg.Count*gensort.RecordSize {
		t.Fatalf("Generate wrote %d bytes, want %d", buf.Len(), cfg.Count*gensort.RecordSize)
	}
	return buf.Bytes(), sum
}

func records(data []byte) [][]byte {
	var out [][]byte
	for i := 0; i+gensort.RecordSize <= len(data); i += gensort.RecordSize {
		out = append(out, data[i:i+gensort.RecordSize:i+gensort.RecordSize])
	}
	return out
}

func sortedCopy(data []byte) []byte {
	recs := records(data)
	slices.SortStableFunc(recs, func(a, b []byte) int { return bytes.Compare(a[:10], b[:10]) })
	return bytes.Join(recs, nil)
}

// The first ASCII records, derived by hand from the documented layout:
// R(0) = X(1) = c = 0x4a696d4772617952_4950202020202001, so the key's first
// eight characters are ' ' + (0x4a696d4772617952 / 95^i) % 95, the filler
// repeats the nibbles of 0x4950202020202001 from bit 48 down, and the record
// number is 32 hex digits. The same lines appear as gensort -a output in
// public sort-benchmark projects.
var asciiFirst = []string{
	"AsfAGHM5om  00000000000000000000000000000000  0000222200002222000022220000222200002222000000001111\r\n",
	"~sHd0jDv6X  00000000000000000000000000000001  77779999444488885555CCCC777755555555BBBB666644446666\r\n",
	"uI^EYm8s=|  00000000000000000000000000000002  CCCCFFFF777799995555FFFF11112222999988884444DDDDFFFF\r\n",
}

// The first binary records, computed with arbitrary-precision integers from
// the generator and the XOR constants (independently of this package).
var binaryFirst = []string{
	"4a696d4772617952495065080060836b392cd58b8f5e55961855e79b87f02283a466b6aab1f9e0cacf1e26b3292afd1064bb18b56ac07d6f656b1d2f430d57bde7e47d81f36a6dd267948bbc2397bfe28c334e4ad82b8e70166293cfaa0116bfda3bb1ab",
	"95e0e48262b3edfe0447b57f77b13a3587fbe79042e3c406d68e9fd2c7f3f6390d9d0dce13fb8342e152812e994b4b403a167a2a7c93c3841de1930a0db207f4eb9e04b59ed877d9a1a067a101fa8d8d4c045beea3006fb42050a4e65bb3cc4083ebb2ad",
}

func TestASCIILayout(t *testing.T) {
	data, _ := gen(t, gensort.Config{Count: 3000, ASCII: true})
	for i, want := range asciiFirst {
		if got := string(data[i*100 : (i+1)*100]); got != want {
			t.Errorf("record %d:\n got %q\nwant %q", i, got, want)
		}
	}
	// Keys of records 5 and 2999 as published for gensort -a output.
	if got := string(data[500:510]); got != "*}-Wz1;TD-" {
		t.Errorf("record 5 key %q", got)
	}
	if got := string(data[2999*100 : 2999*100+10]); got != "Ga]QGzP2q)" {
		t.Errorf("record 2999 key %q", got)
	}
	for i, rec := range records(data) {
		for j, b := range rec[:98] {
			if b < ' ' || b > '~' {
				t.Fatalf("record %d byte %d = %#x is not printable", i, j, b)
			}
		}
		if string(rec[98:]) != "\r\n" {
			t.Fatalf("record %d does not end with CR LF", i)
		}
	}
	// Start (gensort -b) shifts the window and the printed record number.
	part, _ := gen(t, gensort.Config{Count: 2, Start: 1, ASCII: true})
	if string(part) != asciiFirst[1]+asciiFirst[2] {
		t.Errorf("Start 1:\n%q", part)
	}
}

func TestBinaryLayout(t *testing.T) {
	data, _ := gen(t, gensort.Config{Count: 2})
	for i, want := range binaryFirst {
		if got := hex.EncodeToString(data[i*100 : (i+1)*100]); got != want {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestDeterministicAcrossParallelism(t *testing.T) {
	for _, base := range []gensort.Config{
		{Count: 25003},
		{Count: 25003, ASCII: true},
		{Count: 25003, Skew: true, Seed: 9},
		{Count: 25003, ASCII: true, Skew: true, Start: 77},
	} {
		var first [32]byte
		var firstSum gensort.Checksum
		for i, p := range []int{1, 2, 3, 8} {
			cfg := base
			cfg.Parallelism = p
			data, sum := gen(t, cfg)
			h := sha256.Sum256(data)
			if i == 0 {
				first, firstSum = h, sum
				continue
			}
			if h != first || sum != firstSum {
				t.Errorf("%+v: output differs from Parallelism 1", cfg)
			}
		}
	}
	// A part generated from Start equals the same slice of the whole.
	whole, _ := gen(t, gensort.Config{Count: 30000, Seed: 3})
	part, _ := gen(t, gensort.Config{Count: 7000, Seed: 3, Start: 12345})
	if !bytes.Equal(part, whole[12345*100:19345*100]) {
		t.Error("Start window differs from the same records of a whole run")
	}
	other, _ := gen(t, gensort.Config{Count: 30000, Seed: 4})
	if bytes.Equal(other[:1000], whole[:1000]) {
		t.Error("seeds 3 and 4 give the same records")
	}
}

func TestChecksumMatchesCRCSum(t *testing.T) {
	data, sum := gen(t, gensort.Config{Count: 12345, ASCII: true})
	var lo, hi uint64
	for _, rec := range records(data) {
		c := uint64(crc32.ChecksumIEEE(rec))
		if lo+c < lo {
			hi++
		}
		lo += c
	}
	if sum != (gensort.Checksum{Hi: hi, Lo: lo}) {
		t.Errorf("Generate checksum %v, want %x%016x", sum, hi, lo)
	}
}

func TestValidateSortedAndUnsorted(t *testing.T) {
	for _, cfg := range []gensort.Config{{Count: 20000}, {Count: 20000, ASCII: true, Skew: true}} {
		data, sum := gen(t, cfg)
		// Unsorted input: complete summary, ErrUnordered naming the first.
		s, err := gensort.Validate(context.Background(), bytes.NewReader(data))
		if !errors.Is(err, gensort.ErrUnordered) {
			t.Fatalf("Validate(unsorted) = %v, want ErrUnordered", err)
		}
		if s.Records != cfg.Count || s.Checksum != sum {
			t.Errorf("unsorted summary %d records %v, want %d %v", s.Records, s.Checksum, cfg.Count, sum)
		}
		want := firstDescent(data)
		if s.FirstUnordered != want || !strings.Contains(err.Error(), "byte offset") {
			t.Errorf("FirstUnordered %d (err %v), want %d", s.FirstUnordered, err, want)
		}

		sorted := sortedCopy(data)
		s, err = gensort.Validate(context.Background(), bytes.NewReader(sorted))
		if err != nil {
			t.Fatalf("Validate(sorted): %v", err)
		}
		distinct := map[string]bool{}
		for _, r := range records(data) {
			distinct[string(r[:10])] = true
		}
		if s.Records != cfg.Count || s.Checksum != sum || s.Duplicates != cfg.Count-int64(len(distinct)) {
			t.Errorf("sorted summary %+v; want %d records, checksum %v, %d duplicates", s, cfg.Count, sum, cfg.Count-int64(len(distinct)))
		}
		if !bytes.Equal(s.FirstKey, sorted[:10]) || !bytes.Equal(s.LastKey, sorted[len(sorted)-100:len(sorted)-90]) {
			t.Errorf("first/last keys %x %x", s.FirstKey, s.LastKey)
		}
	}
}

func firstDescent(data []byte) int64 {
	recs := records(data)
	for i := 1; i < len(recs); i++ {
		if bytes.Compare(recs[i-1][:10], recs[i][:10]) > 0 {
			return int64(i)
		}
	}
	return -1
}

func TestValidateCatchesDamage(t *testing.T) {
	data, sum := gen(t, gensort.Config{Count: 5000})
	sorted := sortedCopy(data)
	good, err := gensort.Validate(context.Background(), bytes.NewReader(sorted))
	if err != nil {
		t.Fatal(err)
	}
	const i = 1234
	mutate := func(f func(recs [][]byte) [][]byte) []byte {
		recs := records(bytes.Clone(sorted))
		return bytes.Join(f(recs), nil)
	}
	t.Run("reorder", func(t *testing.T) {
		bad := mutate(func(r [][]byte) [][]byte { r[i], r[i+1] = r[i+1], r[i]; return r })
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if !errors.Is(err, gensort.ErrUnordered) || s.FirstUnordered != i+1 {
			t.Fatalf("err %v, first unordered %d", err, s.FirstUnordered)
		}
		if !strings.Contains(err.Error(), "record 1235 (byte offset 123500)") {
			t.Errorf("error %q does not name record 1235 at byte offset 123500", err)
		}
		if s.Checksum != sum {
			t.Error("a swap changed the order-independent checksum")
		}
	})
	t.Run("drop", func(t *testing.T) {
		bad := mutate(func(r [][]byte) [][]byte { return slices.Delete(r, i, i+1) })
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if s.Records != good.Records-1 || s.Checksum == sum {
			t.Errorf("dropping a record went unnoticed: %+v", s)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		bad := mutate(func(r [][]byte) [][]byte { return slices.Insert(r, i, r[i]) })
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if s.Records != good.Records+1 || s.Duplicates != good.Duplicates+1 || s.Checksum == sum {
			t.Errorf("duplicating a record went unnoticed: %+v", s)
		}
	})
	t.Run("corrupt-value", func(t *testing.T) {
		bad := bytes.Clone(sorted)
		bad[i*100+50] ^= 0x01
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if s.Checksum == sum {
			t.Error("a flipped value bit kept the checksum")
		}
	})
	t.Run("corrupt-key", func(t *testing.T) {
		bad := bytes.Clone(sorted)
		bad[i*100] ^= 0x80
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if s.Checksum == sum || (err == nil && s.Checksum == sum) {
			t.Errorf("a flipped key bit went unnoticed: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		bad := sorted[:250]
		s, err := gensort.Validate(context.Background(), bytes.NewReader(bad))
		if !errors.Is(err, gensort.ErrTruncated) || !strings.Contains(err.Error(), "byte offset 200") {
			t.Fatalf("err = %v, want ErrTruncated at byte offset 200", err)
		}
		if s.Records != 2 {
			t.Errorf("Records = %d, want 2 whole records", s.Records)
		}
	})
}

func TestValidatorSplitWrites(t *testing.T) {
	data, _ := gen(t, gensort.Config{Count: 300, ASCII: true})
	data = sortedCopy(data)
	want, err := gensort.Validate(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []int{1, 7, 99, 100, 101, 4096} {
		v := gensort.NewValidator()
		for off := 0; off < len(data); off += step {
			v.Write(data[off:min(off+step, len(data))])
		}
		got, err := v.Summary()
		if err != nil || got.Records != want.Records || got.Checksum != want.Checksum || got.Duplicates != want.Duplicates {
			t.Errorf("step %d: %+v, %v", step, got, err)
		}
	}
	s, err := gensort.Validate(context.Background(), bytes.NewReader(nil))
	if err != nil || s.Records != 0 || s.FirstKey != nil {
		t.Errorf("empty input: %+v, %v", s, err)
	}
}

func TestCombineParts(t *testing.T) {
	data, sum := gen(t, gensort.Config{Count: 9000, Skew: true})
	sorted := sortedCopy(data)
	whole, err := gensort.Validate(context.Background(), bytes.NewReader(sorted))
	if err != nil {
		t.Fatal(err)
	}
	cuts := []int{0, 2000, 2000, 5555, 9000} // includes an empty part
	var parts []gensort.Summary
	for k := 0; k+1 < len(cuts); k++ {
		s, err := gensort.Validate(context.Background(), bytes.NewReader(sorted[cuts[k]*100:cuts[k+1]*100]))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s)
	}
	got, err := gensort.Combine(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != whole.Records || got.Checksum != sum || got.Duplicates != whole.Duplicates ||
		!bytes.Equal(got.FirstKey, whole.FirstKey) || !bytes.Equal(got.LastKey, whole.LastKey) {
		t.Errorf("combined %+v, whole %+v", got, whole)
	}
	// Parts in the wrong order.
	_, err = gensort.Combine(parts[0], parts[3], parts[2])
	if !errors.Is(err, gensort.ErrUnordered) || !strings.Contains(err.Error(), "part 2") {
		t.Errorf("swapped parts: %v", err)
	}
}

func TestSkewShape(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		data, _ := gen(t, gensort.Config{Count: 100000, Skew: true, ASCII: ascii})
		counts := map[string]int{}
		for _, r := range records(data) {
			counts[string(r[:10])]++
		}
		var top int
		for _, c := range counts {
			top = max(top, c)
		}
		prefixes := map[string]int{}
		for _, r := range records(data) {
			prefixes[string(r[:5])]++
		}
		var hot int
		for _, c := range prefixes {
			hot = max(hot, c)
		}
		t.Logf("ascii=%v: %d distinct keys, top key %d records, top 5-byte prefix %d records", ascii, len(counts), top, hot)
		// Expected: key 0 of the pool ~3/16 of records; the hot prefix
		// ~3/8. The data are fixed by the seed, so these are exact
		// properties of one output, with wide margins for the design.
		if top < 15000 || top > 22000 {
			t.Errorf("top key has %d of 100000 records, want about 18750", top)
		}
		if hot < 33000 || hot > 42000 {
			t.Errorf("hot prefix has %d of 100000 records, want about 37500", hot)
		}
		if ascii {
			for i, r := range records(data) {
				for _, b := range r[:10] {
					if b < ' ' || b > '~' {
						t.Fatalf("skewed ascii record %d has key byte %#x", i, b)
					}
				}
			}
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestGenerateErrors(t *testing.T) {
	_, err := gensort.Generate(context.Background(), &failWriter{after: 2}, gensort.Config{Count: 100000, Parallelism: 3})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "records 20000..29999") {
		t.Errorf("write failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := gensort.Generate(ctx, &bytes.Buffer{}, gensort.Config{Count: 100000}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	err = gensort.Config{Count: -1, Start: -2, Parallelism: -3}.Validate()
	if !errors.Is(err, gensort.ErrInvalidConfig) {
		t.Fatalf("Validate = %v", err)
	}
	for _, f := range []string{"Count", "Start", "Parallelism"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("Validate error %q lacks %s", err, f)
		}
	}
}
