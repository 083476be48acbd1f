package wordref

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode"

	"github.com/galeproject/gale/internal/textgen"
)

// naiveCount is the obviously correct counter the optimised one is checked
// against: split the whole input into maximal runs of letters and digits
// with strings.FieldsFunc, lowercase each with strings.ToLower. Invalid
// UTF-8 bytes range as utf8.RuneError, which is neither, so they separate.
func naiveCount(s string) map[string]int64 {
	m := make(map[string]int64)
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		m[strings.ToLower(f)]++
	}
	return m
}

// readers returns ways of reading s that split it at awkward places.
func readers(s string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":   func() io.Reader { return strings.NewReader(s) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
}

func checkAgree(t *testing.T, name, s string) {
	t.Helper()
	want := naiveCount(s)
	for rname, mk := range readers(s) {
		if len(s) > 1<<20 && rname != "whole" && rname != "half" {
			continue // keeps the test fast; the small inputs cover them
		}
		got, err := Count(mk())
		if err != nil {
			t.Fatalf("%s, %s reader: %v", name, rname, err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s, %s reader: counts differ from the naive counter: %s", name, rname, diff(got, want))
		}
	}
}

func diff(got, want map[string]int64) string {
	var b strings.Builder
	n := 0
	for w, c := range want {
		if got[w] != c && n < 5 {
			fmt.Fprintf(&b, "%q: got %d want %d; ", w, got[w], c)
			n++
		}
	}
	for w, c := range got {
		if _, ok := want[w]; !ok && n < 10 {
			fmt.Fprintf(&b, "%q: got %d want 0; ", w, c)
			n++
		}
	}
	return fmt.Sprintf("%d vs %d distinct words; %s", len(got), len(want), b.String())
}

func TestTricky(t *testing.T) {
	cases := map[string]string{
		"empty":            "",
		"only separators":  " \n\r\n\t.,;!?—“”",
		"no final newline": "the quick brown fox",
		"crlf":             "Hello, World!\r\nhello\r\nWORLD\r\n",
		"invalid utf8":     "caf\xe9 na\xefve \xff\xfeabc\x80def \xc3 \xe2\x82 end\xf0\x9f",
		"replacement":      "a\uFFFDb \uFFFD",
		"digits":           "1984 2001: 3.14159 1,000,000 route66 66route x86_64 ٣٤٥ ４２",
		"mixed scripts":    "Straße STRASSE straße Москва москва 東京タワー Ωmega ΩMEGA ωmega κόσμος ΚΌΣΜΟΣ",
		"uppercase":        "ÉCOLE école École İstanbul ISTANBUL istanbul DİYARBAKIR ǅungla Kelvin\u212a",
		"combining marks":  "नमस्ते cafe\u0301 ๑๒๓",
		"apostrophes":      "don't it's rock'n'roll l'été",
		"long word":        strings.Repeat("Ab", 800<<10),
		"symbols":          "a+b=c <tag> x@y.z $5 €5 ½ ² Ⅻ ⓐ",
		"nul bytes":        "ab\x00ab\x00\x00abc ab",
	}
	// Every word length around the 8- and 16-byte packing boundaries,
	// in lower and upper case, ASCII and not.
	var lens strings.Builder
	for n := 1; n <= 40; n++ {
		w := "abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"[:n]
		fmt.Fprintf(&lens, "%s %s é%s %s, ", w, strings.ToUpper(w), w[1:], w)
	}
	cases["word lengths"] = lens.String()
	for name, s := range cases {
		checkAgree(t, name, s)
	}
}

func TestLowercasing(t *testing.T) {
	got, err := Count(strings.NewReader("ÉCOLE İstanbul STRAßE ΚΌΣΜΟΣ Ǆ \u212a"))
	if err != nil {
		t.Fatal(err)
	}
	// İ (U+0130) lowercases to a plain i under unicode.ToLower's simple
	// mapping; the full mapping would give "i̇stanbul" with U+0307.
	want := map[string]int64{"école": 1, "istanbul": 1, "straße": 1, "κόσμοσ": 1, "ǆ": 1, "k": 1}
	if !maps.Equal(got, want) {
		t.Errorf("Count = %v; want %v", got, want)
	}
}

func TestLongLine(t *testing.T) {
	var b strings.Builder
	words := []string{"alpha", "Beta", "γάμμα", "δέλτα", "東京", "x1"}
	for i := 0; b.Len() < 10<<20; i++ {
		b.WriteString(words[i%len(words)])
		b.WriteString(" ,")
	}
	b.WriteString("\r\n")
	b.WriteString(strings.Repeat("z", 3<<20)) // a 3 MiB word, no newline
	checkAgree(t, "10 MiB line", b.String())
}

func TestGeneratedCorpora(t *testing.T) {
	for i, tweak := range []func(*textgen.Config){
		func(c *textgen.Config) {},
		func(c *textgen.Config) { c.NonASCII = 0.6; c.CRLFEvery = 3; c.Seed = 7 },
		func(c *textgen.Config) { c.LongLineEvery = 5; c.LongLineWords = 50_000; c.Vocabulary = 300; c.Seed = 9 },
	} {
		cfg := textgen.DefaultConfig()
		cfg.Size = 2<<20 + 1
		cfg.BlockSize = 1 << 20
		tweak(&cfg)
		var b bytes.Buffer
		if err := textgen.Generate(context.Background(), &b, cfg); err != nil {
			t.Fatal(err)
		}
		checkAgree(t, fmt.Sprintf("corpus %d", i), b.String())
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("some words "), iotest.ErrReader(boom))
	if _, err := Count(r); !errors.Is(err, boom) {
		t.Errorf("Count of a failing reader = %v; want boom", err)
	}
}

func TestWriteParseRoundTrip(t *testing.T) {
	counts := map[string]int64{"zebra": 3, "apple": 1, "école": 2, "Zed": 5, "東京": 4, "10": 7, strings.Repeat("w", 1<<20): 9}
	var b bytes.Buffer
	if err := WriteSorted(&b, counts); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(counts) {
		t.Fatalf("%d lines, want %d", len(lines), len(counts))
	}
	if !strings.HasPrefix(lines[0], "10\t7") || !strings.HasPrefix(lines[1], "Zed\t5") || lines[6] != "東京\t4" {
		t.Errorf("lines not in byte order: %q", lines)
	}
	got, err := ParseCounts(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, counts) {
		t.Errorf("round trip changed the counts")
	}
	got, err = ParseCounts(strings.NewReader("a\t1\nb\t22"))
	if err != nil || !maps.Equal(got, map[string]int64{"a": 1, "b": 22}) {
		t.Errorf("last line without newline: %v, %v", got, err)
	}
	if got, err := ParseCounts(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("empty input: %v, %v", got, err)
	}
}

func TestParseMalformed(t *testing.T) {
	cases := []struct {
		in   string
		line int
	}{
		{"a\t1\nb\n", 2},
		{"a\t1\nb\t2\nc\tx\n", 3},
		{"a\t0\n", 1},
		{"a\t-4\n", 1},
		{"\t3\n", 1},
		{"a\t1\na\t2\n", 2},
		{"a\t1\r\n", 1},
		{"a\t1\n\n", 2},
		{"a 1\n", 1},
		{"a\t99999999999999999999\n", 1},
	}
	for _, c := range cases {
		_, err := ParseCounts(strings.NewReader(c.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", c.line)) {
			t.Errorf("ParseCounts(%q) = %v; want ErrMalformed at line %d", c.in, err, c.line)
		}
	}
}

func TestWriteSortedRejects(t *testing.T) {
	for _, w := range []string{"", "a\tb", "a\nb"} {
		var b bytes.Buffer
		err := WriteSorted(&b, map[string]int64{"ok": 1, w: 1})
		if !errors.Is(err, ErrInvalidWord) || b.Len() != 0 {
			t.Errorf("WriteSorted with word %q = %v, wrote %d bytes; want ErrInvalidWord and nothing written", w, err, b.Len())
		}
	}
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "Hello, World", "caf\xe9 ÉCOLE\r\n", "İstanbul 東京 1984", "a\xffb\xe2\x82c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Count(iotest.HalfReader(strings.NewReader(s)))
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveCount(s); !maps.Equal(got, want) {
			t.Errorf("Count(%q) disagrees with the naive counter: %s", s, diff(got, want))
		}
	})
}

func TestLowerMask(t *testing.T) {
	fillers := []uint64{0, 0xffffffffffffffff, 0x6161616161616161, 0x7a7a7a7a7a7a7a7a, 0x2041205a207b2060, 0x8090a0b0c0d0e0f0}
	for _, fill := range fillers {
		for pos := 0; pos < 8; pos++ {
			for b := 0; b < 256; b++ {
				x := fill&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
				m := lowerMask(x)
				for k := 0; k < 8; k++ {
					byt := byte(x >> (8 * k))
					want := byt >= 'a' && byt <= 'z'
					if got := m>>(8*k)&0xff == 0x80; got != want || m>>(8*k)&0x7f != 0 {
						t.Fatalf("lowerMask(%#x) = %#x: byte %d (%#x) marked %v, want %v", x, m, k, byt, got, want)
					}
				}
			}
		}
	}
}

// TestLowerKeepsWordRunes checks, over every rune, the facts the package
// documentation states: lowercasing a word rune gives a word rune, so
// lowering never splits or joins words, and the two-byte table agrees with
// unicode.ToLower.
func TestLowerKeepsWordRunes(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !IsWordRune(r) {
			continue
		}
		if l := unicode.ToLower(r); !IsWordRune(l) || l == 0 {
			t.Errorf("unicode.ToLower(%U) = %U, not a word rune", r, l)
		}
	}
	for r := rune(0x80); r < 0x800; r++ {
		want := rune(0)
		if IsWordRune(r) {
			want = unicode.ToLower(r)
		}
		if twoByteLower[r] != want {
			t.Errorf("twoByteLower[%U] = %U; want %U", r, twoByteLower[r], want)
		}
	}
}

func TestReadCountDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCountDir(dir); !errors.Is(err, ErrNoParts) {
		t.Fatalf("empty directory: %v, want ErrNoParts", err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("part-00000", "a\t2\nb\t1\n")
	write("part-00001", "c\t5\n")
	write("_SUCCESS", "")
	got, err := ReadCountDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"a": 2, "b": 1, "c": 5}; !maps.Equal(got, want) {
		t.Error(diff(got, want))
	}
	write("part-00002", "b\t7\n")
	if _, err := ReadCountDir(dir); err == nil || !strings.Contains(err.Error(), `word "b" also appears`) {
		t.Errorf("a word in two parts: %v", err)
	}
	write("part-00002", "d\tx\n")
	if _, err := ReadCountDir(dir); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "part-00002") {
		t.Errorf("a malformed part: %v", err)
	}
}
