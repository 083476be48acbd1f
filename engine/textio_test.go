package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// refLines splits data into lines the way readLines promises: at "\n",
// dropping a "\r" just before it; a last line without "\n" counts, also
// without a trailing "\r".
func refLines(data []byte) []string {
	var out []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, string(bytes.TrimSuffix(data, []byte("\r"))))
			break
		}
		line := data[:i]
		line = bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, string(line))
		data = data[i+1:]
	}
	return out
}

// randomText returns a text with short and empty lines, "\n", "\r\n" and
// stray "\r", invalid UTF-8 and, when long is set, lines longer than
// readLines' 1 MiB buffer; it may or may not end with a newline.
func randomText(rng *rand.Rand, size int, long bool) []byte {
	var b bytes.Buffer
	for b.Len() < size {
		switch rng.IntN(12) {
		case 0:
			b.WriteString("\n")
		case 1:
			b.WriteString("\r\n")
		case 2:
			b.WriteString("\r")
		case 3:
			b.Write([]byte{0xff, 0xc3, '\n', 0xe6, 0x9d})
		case 4:
			b.WriteString("\n\n\r\n")
		case 5:
			if long && rng.IntN(8) == 0 {
				n := 1<<20 + rng.IntN(300<<10) - 100<<10 // around the buffer size
				b.Write(bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, n))
			}
		default:
			fmt.Fprintf(&b, "w%d ", rng.IntN(1000))
		}
	}
	data := b.Bytes()
	if rng.IntN(2) == 0 {
		data = append(data, '\n')
	}
	return data
}

// cuts returns the boundaries of consecutive ranges covering [0, n):
// random cuts, pairs of adjacent cuts (1-byte ranges), and cuts just at and
// after line ends; or every byte when n is small. (Each range costs
// readLines a 1 MiB buffer, so large texts get a sample of cuts.)
func cuts(rng *rand.Rand, data []byte) []int64 {
	n := len(data)
	set := map[int64]bool{0: true, int64(n): true}
	if n <= 120 {
		for i := range n {
			set[int64(i)] = true
		}
	} else {
		for range 15 {
			p := int64(rng.IntN(n))
			set[p] = true
			set[min(p+1, int64(n))] = true
		}
		for range 15 {
			set[int64(rng.IntN(n))] = true
		}
		for i := 0; i < n; i++ {
			if data[i] == '\n' && rng.IntN(400) == 0 {
				set[int64(i)] = true
				set[int64(i+1)] = true
			}
		}
	}
	out := make([]int64, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// readRange reads the lines of [off, off+n) as a worker does: either from
// a reader positioned at off-1 through the end of the object, or from the
// range itself followed by a tail opened on demand.
func readRange(t *testing.T, data []byte, off, n int64, tail bool) []string {
	t.Helper()
	start := off
	if start > 0 {
		start--
	}
	var r io.Reader = bytes.NewReader(data[start:])
	if tail {
		end := off + n
		r = &tailReader{head: io.NopCloser(bytes.NewReader(data[start:end])), open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data[end:])), nil
		}}
	}
	var lines []string
	count, err := readLines(context.Background(), r, off, n, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatalf("range [%d, %d): %v", off, off+n, err)
	}
	if count != int64(len(lines)) {
		t.Fatalf("range [%d, %d): returned %d, emitted %d lines", off, off+n, count, len(lines))
	}
	return lines
}

func TestReadLinesRangesCoverEveryLineOnce(t *testing.T) {
	texts := map[string][]byte{
		"empty":           nil,
		"one newline":     []byte("\n"),
		"crlf only":       []byte("\r\n"),
		"no final eol":    []byte("abc"),
		"cr at end":       []byte("abc\r"),
		"blank lines":     []byte("\n\n\r\n\n"),
		"invalid utf8":    []byte("\xff\xfe\n\xc3\r\n\xe6\x9d"),
		"buffer-size":     append(bytes.Repeat([]byte("x"), 1<<20), '\n'),
		"over buffer":     append(bytes.Repeat([]byte("y"), 1<<20+1), "\r\nz"...),
		"exactly two buf": append(bytes.Repeat([]byte("q"), 2<<20-1), "\n\n"...),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		texts[fmt.Sprint("tiny-", i)] = randomText(rng, rng.IntN(120), false)
	}
	for i := range 10 {
		texts[fmt.Sprint("small-", i)] = randomText(rng, 200+rng.IntN(3000), false)
	}
	for i := range 12 {
		texts[fmt.Sprint("medium-", i)] = randomText(rng, 20_000+rng.IntN(50_000), false)
	}
	for i := range 3 {
		texts[fmt.Sprint("long-", i)] = randomText(rng, 5<<19, true)
	}
	names := make([]string, 0, len(texts))
	for name := range texts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data := texts[name]
		want := refLines(data)
		for _, tail := range []bool{false, true} {
			bounds := cuts(rng, data)
			var got []string
			for i := 0; i+1 < len(bounds); i++ {
				got = append(got, readRange(t, data, bounds[i], bounds[i+1]-bounds[i], tail)...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (tail=%v, %d bytes, %d ranges): got %d lines, want %d; first difference at line %d",
					name, tail, len(data), len(bounds)-1, len(got), len(want), firstDiff(got, want))
			}
			// One range for the whole text reads the same lines.
			if len(data) > 0 {
				if whole := readRange(t, data, 0, int64(len(data)), tail); !slices.Equal(whole, want) {
					t.Errorf("%s (tail=%v): one range read %d lines, want %d", name, tail, len(whole), len(want))
				}
			}
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestReadLinesHonoursCancel(t *testing.T) {
	data := bytes.Repeat([]byte("line\n"), 10000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := readLines(ctx, bytes.NewReader(data), 0, int64(len(data)), func(string) {})
	if err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestLastLineLosesItsCarriageReturn: a last line without "\n" kept its
// "\r" ("a\r\nb\r" gave "a" and "b\r"), unlike every other line.
func TestLastLineLosesItsCarriageReturn(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a\r\nb\r", []string{"a", "b"}},
		{"a\r", []string{"a"}},
		{"\r", []string{""}},
		{"a\rb", []string{"a\rb"}}, // a "\r" inside a line stays
		{"a\r\r\n", []string{"a\r"}},
	} {
		var got []string
		if _, err := readLines(context.Background(), bytes.NewReader([]byte(c.in)), 0, int64(len(c.in)), func(s string) { got = append(got, s) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("readLines(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// countReader counts the bytes read from it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadLinesWithinOneLongLineReadsOnlyItsRange: a range that lies inside
// a line begun earlier emits nothing and reads its own bytes plus at most
// one read of the underlying reader beyond them, not the rest of the line.
func TestReadLinesWithinOneLongLineReadsOnlyItsRange(t *testing.T) {
	data := append(bytes.Repeat([]byte("x"), 10<<20), "\nnext\n"...)
	off, n := int64(1<<20), int64(256<<10)
	// iotest-style small reads, as the tail reader serves them.
	cr := &countReader{r: io.LimitReader(bytes.NewReader(data[off-1:]), int64(len(data)))}
	got, err := readLines(context.Background(), smallReads{cr, 16 << 10}, off, n, func(s string) { t.Errorf("emitted a line of %d bytes", len(s)) })
	if err != nil || got != 0 {
		t.Fatalf("got %d lines, %v", got, err)
	}
	if cr.n > n+64<<10 {
		t.Errorf("read %d bytes for a %d-byte range inside a line", cr.n, n)
	}
}

// smallReads returns at most size bytes per Read.
type smallReads struct {
	r    io.Reader
	size int
}

func (s smallReads) Read(p []byte) (int, error) {
	if len(p) > s.size {
		p = p[:s.size]
	}
	return s.r.Read(p)
}

// TestReadLinesMaxRefusesALongLineEarly: a line over the limit fails with
// a LineTooLongError naming its offset, after reading about the limit.
func TestReadLinesMaxRefusesALongLineEarly(t *testing.T) {
	for _, size := range []int{3 << 10, 5 << 20} { // within and beyond the buffer
		data := append(append([]byte("ok\n"), bytes.Repeat([]byte("y"), size)...), '\n')
		cr := &countReader{r: bytes.NewReader(data)}
		var lines []string
		_, err := readLinesMax(context.Background(), cr, 0, int64(len(data)), 2<<10, func(s string) { lines = append(lines, s) })
		var le *LineTooLongError
		if !errors.As(err, &le) || le.Offset != 3 || le.Limit != 2<<10 {
			t.Fatalf("size %d: err = %v, want a LineTooLongError at offset 3", size, err)
		}
		if len(lines) != 1 || lines[0] != "ok" {
			t.Errorf("size %d: lines before the long one: %q", size, lines)
		}
		if cr.n > 3<<20 {
			t.Errorf("size %d: read %d bytes before refusing", size, cr.n)
		}
	}
	// A line of exactly the limit is fine.
	data := append(bytes.Repeat([]byte("z"), 2<<10), "\r\n"...)
	if n, err := readLinesMax(context.Background(), bytes.NewReader(data), 0, int64(len(data)), 2<<10, func(string) {}); err != nil || n != 1 {
		t.Errorf("a line of the limit: %d, %v", n, err)
	}
}
