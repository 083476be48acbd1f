package wordcount_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

func readOutput(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Fatalf("no _SUCCESS marker: %v", err)
	}
	got, err := wordref.ReadCountDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func refCount(t *testing.T, files ...string) map[string]int64 {
	t.Helper()
	want := map[string]int64{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := wordref.Count(fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		for w, c := range m {
			want[w] += c
		}
	}
	return want
}

func sameCounts(t *testing.T, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d distinct words, want %d", len(got), len(want))
	}
	bad := 0
	for w, c := range want {
		if got[w] != c {
			if bad < 10 {
				t.Errorf("word %q: got %d, want %d", w, got[w], c)
			}
			bad++
		}
	}
}

func TestWordCountMatchesReference(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = 3<<20 + 12345
	cfg.Seed = 7
	if err := textgen.GenerateFile(context.Background(), in, cfg); err != nil {
		t.Fatal(err)
	}
	want := refCount(t, in)
	for _, tc := range []struct {
		name string
		opts []gale.RunOption
	}{
		{"one worker", []gale.RunOption{gale.Workers(1)}},
		{"small chunks", []gale.RunOption{gale.Workers(4), gale.ChunkSize(64 << 10), gale.Partitions(3)}},
		{"no lifting", []gale.RunOption{gale.Workers(2), gale.ChunkSize(512 << 10), gale.NoCombinerLifting()}},
	} {
		for _, b := range []struct {
			name  string
			build func(*gale.Pipeline, []string, string) gale.Collection[gale.KV[string, int64]]
		}{{"fused", wordcount.Build}, {"general", wordcount.BuildGeneral}} {
			t.Run(tc.name+"/"+b.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				p := gale.NewPipeline()
				b.build(p, []string{in}, out)
				if _, err := gale.Run(context.Background(), p, tc.opts...); err != nil {
					t.Fatal(err)
				}
				sameCounts(t, readOutput(t, out), want)
			})
		}
	}
}

// TestCountWordsTrickyText: the fused count agrees with the reference on
// upper case, non-ASCII letters and digits, invalid UTF-8, CRLF, a line
// longer than the read buffer and a last line without a newline.
func TestCountWordsTrickyText(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		b.WriteString("Hello, World! hello ÉCOLE école naïve café 東京 число 42x a\xffb İstanbul\r\n")
		b.WriteString("tab\tseparated don't stop-believing Ωmega ΣΊΣΥΦΟΣ ǅemal ＡＢＣ ０１\n")
		if i == 1000 {
			b.WriteString(strings.Repeat("Long LINE ", 300_000) + "\n")
		}
	}
	b.WriteString("LAST line")
	in := filepath.Join(t.TempDir(), "tricky.txt")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	want := refCount(t, in)
	for _, opts := range [][]gale.RunOption{
		{gale.Workers(2), gale.ChunkSize(256 << 10)},
		{gale.Workers(2), gale.ChunkSize(256 << 10), gale.NoCombinerLifting()},
	} {
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		wordcount.Build(p, []string{in}, out)
		if _, err := gale.Run(context.Background(), p, opts...); err != nil {
			t.Fatal(err)
		}
		sameCounts(t, readOutput(t, out), want)
	}
}

func TestTokenizeAgreesWithReference(t *testing.T) {
	for _, line := range []string{
		"", "Hello, World! hello", "ÉCOLE école", "naïve café 東京 число 42x", "a\xffb", "İstanbul",
		"tab\tseparated\r", "don't stop-believing", "Ωmega ΣΊΣΥΦΟΣ",
	} {
		var got []string
		wordcount.Tokenize(line, func(w string) { got = append(got, w) })
		m, err := wordref.Count(strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int64{}
		for _, w := range got {
			counts[w]++
		}
		if len(counts) != len(m) {
			t.Errorf("%q: got %v, reference %v", line, counts, m)
			continue
		}
		for w, c := range m {
			if counts[w] != c {
				t.Errorf("%q: word %q got %d, reference %d", line, w, counts[w], c)
			}
		}
	}
}
