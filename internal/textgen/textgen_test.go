package textgen

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/galeproject/gale/internal/wordref"
)

func generate(t testing.TB, cfg Config) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Generate(context.Background(), &b, cfg); err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return b.Bytes()
}

func TestSizeIsExact(t *testing.T) {
	small := DefaultConfig()
	small.BlockSize = MinBlockSize
	mid := DefaultConfig()
	mid.BlockSize = 64 << 10
	def := DefaultConfig()
	cases := []struct {
		cfg  Config
		size int64
	}{
		{small, 0}, {small, 1}, {small, 2}, {small, 3}, {small, 17},
		{small, MinBlockSize - 1}, {small, MinBlockSize}, {small, MinBlockSize + 1},
		{small, 2*MinBlockSize - 1}, {small, 7*MinBlockSize + 3},
		{mid, 64<<10 - 1}, {mid, 64 << 10}, {mid, 64<<10 + 1},
		{def, 1}, {def, 10<<20 + 7},
	}
	for _, c := range cases {
		cfg := c.cfg
		cfg.Size = c.size
		out := generate(t, cfg)
		if int64(len(out)) != c.size {
			t.Errorf("BlockSize %d, Size %d: got %d bytes", cfg.BlockSize, c.size, len(out))
			continue
		}
		if c.size > 0 && out[len(out)-1] != '\n' {
			t.Errorf("BlockSize %d, Size %d: last byte is %q, want '\\n'", cfg.BlockSize, c.size, out[len(out)-1])
		}
		if !utf8.Valid(out) {
			t.Errorf("BlockSize %d, Size %d: output is not valid UTF-8", cfg.BlockSize, c.size)
		}
	}
}

func TestBlocksEndWithNewline(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockSize = MinBlockSize
	cfg.Size = 50 * MinBlockSize
	out := generate(t, cfg)
	for i := MinBlockSize - 1; i < len(out); i += MinBlockSize {
		if out[i] != '\n' {
			t.Fatalf("byte %d, the last of block %d, is %q; want '\\n'", i, i/MinBlockSize, out[i])
		}
	}
}

func digest(b []byte) [32]byte { return sha256.Sum256(b) }

func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockSize = 64 << 10
	cfg.Size = 1<<20 + 12345
	want := digest(generate(t, cfg))

	if got := digest(generate(t, cfg)); got != want {
		t.Errorf("second call with the same Config gave different output")
	}
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		got := digest(generate(t, cfg))
		runtime.GOMAXPROCS(old)
		if got != want {
			t.Errorf("GOMAXPROCS %d gave different output", procs)
		}
	}
	for _, workers := range []int{1, 3, 16} {
		c := cfg
		c.Workers = workers
		if got := digest(generate(t, c)); got != want {
			t.Errorf("Workers %d gave different output", workers)
		}
	}
	// A prefix of whole blocks does not depend on Size.
	c := cfg
	c.Size = 2 * int64(cfg.BlockSize)
	full := generate(t, cfg)
	if !bytes.Equal(generate(t, c), full[:c.Size]) {
		t.Errorf("the first two blocks changed with Size")
	}
	c = cfg
	c.Seed++
	if got := digest(generate(t, c)); got == want {
		t.Errorf("Seed %d and %d gave the same output", cfg.Seed, c.Seed)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	err := Config{Size: -1, ZipfS: math.NaN(), NonASCII: 2, Workers: -1}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate of a bad Config = %v; want ErrInvalidConfig", err)
	}
	for _, field := range []string{"Size", "Vocabulary", "ZipfS", "MinLineWords", "NonASCII", "BlockSize", "Workers"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate error does not mention %s: %v", field, err)
		}
	}
	c := DefaultConfig()
	c.MaxLineWords = 2
	c.LongLineWords = 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "MaxLineWords") || !strings.Contains(err.Error(), "LongLineWords") {
		t.Errorf("Validate with MaxLineWords < MinLineWords and a short LongLineWords = %v", err)
	}
	if err := Generate(context.Background(), io.Discard, Config{Size: 10}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Generate with a zero Config = %v; want ErrInvalidConfig", err)
	}
}

// TestVocabularyWords checks that every vocabulary word is one word under
// Gale's definition in each of its forms, so that counts of the corpus can
// be attributed to ranks.
func TestVocabularyWords(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NonASCII = 0.3
	v := buildVocab(&cfg)
	if len(v.words) != cfg.Vocabulary {
		t.Fatalf("vocabulary has %d words, want %d", len(v.words), cfg.Vocabulary)
	}
	seen := make(map[string]int)
	for i, e := range v.words {
		forms := []string{
			string(v.arena[e.off : e.off+uint32(e.lo)]),
			string(v.arena[e.off+uint32(e.lo) : e.off+uint32(e.lo)+uint32(e.ti)]),
			string(v.arena[e.off+uint32(e.lo)+uint32(e.ti) : e.off+uint32(e.lo)+uint32(e.ti)+uint32(e.up)]),
		}
		key := strings.ToLower(forms[0])
		if j, dup := seen[key]; dup {
			t.Fatalf("ranks %d and %d are both %q", j, i, key)
		}
		seen[key] = i
		for k, f := range forms {
			fields := strings.FieldsFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
			if len(fields) != 1 || fields[0] != f {
				t.Fatalf("rank %d form %d %q is not a single word", i, k, f)
			}
			// Capitals may lowercase to another word (ΚΌΣΜΟΣ is
			// κόσμοσ, not κόσμος), as in real text.
			if k < 2 && strings.ToLower(f) != key {
				t.Fatalf("rank %d form %d %q lowercases to %q, not %q", i, k, f, strings.ToLower(f), key)
			}
		}
	}
}

// TestInlineForms checks the copies of words kept in the alias slots
// against the arena.
func TestInlineForms(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NonASCII = 0.3
	v := buildVocab(&cfg)
	inlined := 0
	for i := range v.slots {
		for which, f := range v.slots[i].forms {
			r := uint32(i<<1 | which)
			e := v.words[v.rank(r)]
			lower := string(v.arena[e.off : e.off+uint32(e.lo)])
			title := string(v.arena[e.off+uint32(e.lo) : e.off+uint32(e.lo)+uint32(e.ti)])
			meta := f[inlineMax]
			n := int(meta & inlineLen)
			if n == 0 {
				continue
			}
			inlined++
			usual, capital := string(f[:n]), ""
			switch {
			case meta&inlineCapSame != 0:
				capital = usual
			case meta&inlineCapASCII != 0:
				capital = string(usual[0]-('a'-'A')) + usual[1:]
			default:
				capital = title
			}
			if e.proper && usual != title || !e.proper && usual != lower || capital != title {
				t.Fatalf("slot %d form %d (proper %v): usual %q, capitalised %q; want %q, %q", i, which, e.proper, usual, capital, lower, title)
			}
			if string(f[n:inlineMax]) != strings.Repeat("\x00", inlineMax-n) {
				t.Fatalf("slot %d form %d: padding %q not zero", i, which, f[n:inlineMax])
			}
		}
	}
	// Most draws, weighted by frequency, must find their word inline.
	rng := newWyrand(1, 2, 3)
	hits, draws := 0, 200_000
	for range draws {
		c := v.sample(rng.next(), rng.next())
		if v.slots[c>>1].forms[c&1][inlineMax]&inlineLen != 0 {
			hits++
		}
	}
	t.Logf("%d of %d slot forms inline; %.3f of draws", inlined, 2*len(v.slots), float64(hits)/float64(draws))
	if hits < draws*8/10 {
		t.Errorf("only %d of %d draws find their word inline", hits, draws)
	}
}

func countCorpus(t *testing.T, out []byte) map[string]int64 {
	t.Helper()
	counts, err := wordref.Count(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestZipfShape checks that word frequencies follow the configured Zipf
// law: the count of the word of rank k is about count(1)/k^s, and the
// least-squares slope of log count against log rank over the top ranks
// is about -s.
func TestZipfShape(t *testing.T) {
	for _, s := range []float64{1.1, 1.5} {
		cfg := DefaultConfig()
		cfg.ZipfS = s
		cfg.Size = 4 << 20
		cfg.BlockSize = 1 << 20
		counts := countCorpus(t, generate(t, cfg))
		v := buildVocab(&cfg)
		rankCount := func(k int) float64 { // k is 1-based
			return float64(counts[strings.ToLower(string(v.lower(k-1)))])
		}
		top := rankCount(1)
		for _, k := range []int{2, 3, 5, 10, 30} {
			want := top / math.Pow(float64(k), s)
			if got := rankCount(k); math.Abs(got-want) > 0.15*want {
				t.Errorf("s=%v: count of rank %d is %.0f; want about count(1)/%d^s = %.0f", s, k, got, k, want)
			}
		}
		var sx, sy, sxx, sxy, n float64
		for k := 1; k <= 200; k++ {
			x, y := math.Log(float64(k)), math.Log(rankCount(k))
			sx, sy, sxx, sxy, n = sx+x, sy+y, sxx+x*x, sxy+x*y, n+1
		}
		slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
		if math.Abs(-slope-s) > 0.1 {
			t.Errorf("s=%v: log-log slope over ranks 1..200 is %.3f; want about %.3f", s, slope, -s)
		}
		// The most frequent word's share of all word tokens is about
		// 1/H(V, s), minus what numbers take.
		var total float64
		for _, c := range counts {
			total += float64(c)
		}
		var h float64
		for k := 1; k <= cfg.Vocabulary; k++ {
			h += math.Pow(float64(k), -s)
		}
		if share, want := top/total, 1/h; share < 0.8*want || share > 1.1*want {
			t.Errorf("s=%v: rank 1 has %.4f of all words; want about %.4f", s, share, want)
		}
		// The ranks beyond the head table's carry their share.
		var tail, vocabTotal, wantTail float64
		for k := 1; k <= cfg.Vocabulary; k++ {
			c := rankCount(k)
			vocabTotal += c
			if k > headSize {
				tail += c
				wantTail += math.Pow(float64(k), -s) / h
			}
		}
		if got := tail / vocabTotal; math.Abs(got-wantTail) > 0.05*wantTail {
			t.Errorf("s=%v: ranks above %d have %.4f of the vocabulary's words; want about %.4f", s, headSize, got, wantTail)
		}
		t.Logf("s=%v: %d distinct words, %.0f in all, top %q %.0f, slope %.3f, tail %.4f", s, len(counts), total, v.lower(0), top, slope, tail/vocabTotal)
	}
}

func TestTextFeatures(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Size = 2 << 20
	cfg.BlockSize = 1 << 20
	cfg.CRLFEvery = 10
	cfg.LongLineEvery = 50
	cfg.LongLineWords = 5000
	out := generate(t, cfg)
	counts := countCorpus(t, out)
	for _, w := range []string{"café", "naïve", "straße", "ωmega", "東京", "число", "1999"} {
		if counts[w] == 0 {
			t.Errorf("word %q does not appear", w)
		}
	}
	var nonASCII, all int64
	for w, c := range counts {
		all += c
		for i := 0; i < len(w); i++ {
			if w[i] >= utf8.RuneSelf {
				nonASCII += c
				break
			}
		}
	}
	if frac := float64(nonASCII) / float64(all); frac < 0.005 {
		t.Errorf("only %.4f of words are non-ASCII", frac)
	}
	lines := bytes.Split(out, []byte("\n"))
	var longest, empty, crlf, capital int
	for _, l := range lines {
		longest = max(longest, len(l))
		if len(l) == 0 {
			empty++
		}
		if bytes.HasSuffix(l, []byte("\r")) {
			crlf++
		}
		if r, _ := utf8.DecodeRune(l); unicode.IsUpper(r) {
			capital++
		}
	}
	if longest < 20_000 || empty == 0 || crlf == 0 || capital == 0 {
		t.Errorf("longest line %d bytes, %d empty lines, %d CRLF lines, %d starting with a capital; want a long line and some of each", longest, empty, crlf, capital)
	}
	for _, p := range []string{", ", ". ", "(", "“", "-"} {
		if !bytes.Contains(out, []byte(p)) {
			t.Errorf("no %q in the corpus", p)
		}
	}
}

func TestGenerateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corpus.txt")
	cfg := DefaultConfig()
	cfg.Size = 1<<20 + 3
	cfg.BlockSize = 256 << 10
	if err := GenerateFile(context.Background(), path, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, generate(t, cfg)) {
		t.Errorf("file differs from Generate's output")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode: %v, %v; want 0644", fi.Mode(), err)
	}

	// A failed generation leaves the old file and no temporary file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.Seed++
	if err := GenerateFile(ctx, path, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("GenerateFile with a canceled context = %v; want context.Canceled", err)
	}
	if err := GenerateFile(context.Background(), path, Config{Size: 1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("GenerateFile with a zero Config = %v; want ErrInvalidConfig", err)
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, got) {
		t.Errorf("a failed GenerateFile changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after failures; want only corpus.txt", len(entries))
	}
	if err := GenerateFile(context.Background(), filepath.Join(dir, "missing", "c.txt"), cfg); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("GenerateFile into a missing directory = %v; want an error naming the path", err)
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after == 0 {
		return 0, errWrite
	}
	w.after--
	return len(p), nil
}

func TestWriterError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockSize = MinBlockSize
	cfg.Size = 100 * MinBlockSize
	err := Generate(context.Background(), &failWriter{after: 3}, cfg)
	if !errors.Is(err, errWrite) || !strings.Contains(err.Error(), "block 3") {
		t.Errorf("Generate into a failing writer = %v; want the write error naming block 3", err)
	}
}

// cancelWriter cancels a context on its second write.
type cancelWriter struct {
	writes int
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes == 2 {
		w.cancel()
	}
	return len(p), nil
}

func TestCancelMidway(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockSize = MinBlockSize
	cfg.Size = 1000 * MinBlockSize
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelWriter{cancel: cancel}
	if err := Generate(ctx, w, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate canceled midway = %v; want context.Canceled", err)
	}
	if w.writes > 2+2*runtime.GOMAXPROCS(0) {
		t.Errorf("%d blocks written after cancellation; want at most the blocks in flight", w.writes-2)
	}
}

// The most frequent words of a corpus are real English words, as in a
// real text, not pseudo-words.
func TestFrequentWordsAreEnglish(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Size = 1 << 20
	counts := countCorpus(t, generate(t, cfg))
	type wc struct {
		w string
		c int64
	}
	var all []wc
	for w, c := range counts {
		all = append(all, wc{w, c})
	}
	slices.SortFunc(all, func(a, b wc) int { return cmp.Compare(b.c, a.c) })
	english := map[string]bool{}
	for _, w := range englishHead {
		english[w] = true
	}
	for _, x := range all[:20] {
		if !english[x.w] {
			t.Errorf("%q (%d times) is among the 20 most frequent words; want only words of englishHead", x.w, x.c)
		}
	}
	if all[0].w != "the" {
		t.Errorf("the most frequent word is %q, want \"the\"", all[0].w)
	}
}
