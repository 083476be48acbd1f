package gale_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/galeproject/gale"
)

// fixtureLines is the text testdata/compressed/fixture.txt.bz2 holds
// (made with `bzip2 -9`; Go's library has no bzip2 writer).
func fixtureLines() []string {
	var out []string
	for i := range 3000 {
		out = append(out, fmt.Sprintf("line %d of the bzip2 fixture %s", i, strings.Repeat("x", i%17)))
	}
	return out
}

func gzipped(t *testing.T, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, m := range members { // concatenated members, as pigz or cat write
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func zstded(t *testing.T, s string) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll([]byte(s), nil)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func init() {
	workerPipelines["text.collect"] = func(p *gale.Pipeline) { gale.Collect(gale.ReadText(p, "in")) }
}

func collectLines(t *testing.T, opts []gale.RunOption, paths ...string) []string {
	t.Helper()
	p := gale.NewPipeline()
	out := gale.Collect(gale.ReadText(p, paths...))
	run(t, p, opts...)
	got := slices.Clone(out.Values())
	slices.Sort(got)
	return got
}

// TestCompressedInputIsDecompressed: .gz, .bz2 and .zst inputs were read as
// raw bytes, giving binary "lines" without a word. They are now read
// through their decompressor, each file as one split (small chunks would
// otherwise cut them), on every backend.
func TestCompressedInputIsDecompressed(t *testing.T) {
	dir := t.TempDir()
	var plain []string
	for i := range 5000 {
		plain = append(plain, fmt.Sprintf("word%d %d", i%97, i))
	}
	text := strings.Join(plain, "\n") + "\n"
	half := len(text) / 2
	half += strings.IndexByte(text[half:], '\n') + 1
	writeFile(t, filepath.Join(dir, "a.txt.gz"), gzipped(t, text[:half], text[half:]))
	writeFile(t, filepath.Join(dir, "b.txt.zst"), zstded(t, text))
	writeFile(t, filepath.Join(dir, "c.txt"), []byte(text))
	fixture, err := os.ReadFile(filepath.Join("testdata", "compressed", "fixture.txt.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "d.TXT.BZ2"), fixture)
	var want []string
	for range 3 {
		want = append(want, plain...)
	}
	want = append(want, fixtureLines()...)
	slices.Sort(want)
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		got := collectLines(t, append(opts, gale.ChunkSize(4<<10)), dir)
		if !slices.Equal(got, want) {
			t.Errorf("got %d lines, want %d", len(got), len(want))
		}
	})
}

// TestRecordsFromCompressedInput reads fixed-size records through gzip and
// reports a decompressed size that is not a whole number of records.
func TestRecordsFromCompressedInput(t *testing.T) {
	dir := t.TempDir()
	var recs []string
	for i := range 1000 {
		recs = append(recs, fmt.Sprintf("%09d\n", i*7))
	}
	writeFile(t, filepath.Join(dir, "r.gz"), gzipped(t, strings.Join(recs, "")))
	p := gale.NewPipeline()
	out := gale.Collect(gale.ReadRecords(p, 10, dir))
	run(t, p)
	var got []string
	for _, r := range out.Values() {
		got = append(got, string(r))
	}
	slices.Sort(got)
	slices.Sort(recs)
	if !slices.Equal(got, recs) {
		t.Errorf("got %d records, want %d", len(got), len(recs))
	}
	writeFile(t, filepath.Join(dir, "r.gz"), gzipped(t, strings.Join(recs, "")+"12345"))
	p = gale.NewPipeline()
	gale.Collect(gale.ReadRecords(p, 10, dir))
	_, err := gale.Run(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), "r.gz") || !strings.Contains(err.Error(), "offset 10000 is incomplete") {
		t.Errorf("a compressed input with a partial record: %v", err)
	}
}

// TestUnreadableCompressionIsRefused: a compression Gale does not read is
// refused before the job runs, naming the file, instead of being read as
// text.
func TestUnreadableCompressionIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "logs.txt.xz"), []byte("\xfd7zXZ\x00 not really"))
	p := gale.NewPipeline()
	gale.Collect(gale.ReadText(p, dir))
	_, err := gale.Run(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), "logs.txt.xz") || !strings.Contains(err.Error(), "xz") {
		t.Errorf("an .xz input: %v", err)
	}
}

// TestLastLineCarriageReturn: "a\r\nb\r" is the lines a and b (the last
// line, without a newline, kept its "\r").
func TestLastLineCarriageReturn(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "crlf.txt"), []byte("a\r\nb\r"))
	if got := collectLines(t, nil, dir); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("lines %q, want [a b]", got)
	}
}
