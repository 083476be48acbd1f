package wordref

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/galeproject/gale/internal/textgen"
)

// benchCorpus returns a generated corpus of size bytes (default Config).
func benchCorpus(b *testing.B, size int64) []byte {
	b.Helper()
	cfg := textgen.DefaultConfig()
	cfg.Size = size
	var corpus bytes.Buffer
	corpus.Grow(int(cfg.Size))
	if err := textgen.Generate(context.Background(), &corpus, cfg); err != nil {
		b.Fatal(err)
	}
	return corpus.Bytes()
}

// BenchmarkCount measures Count on a 256 MiB generated corpus held in
// memory, so that only counting is timed.
func BenchmarkCount(b *testing.B) {
	data := benchCorpus(b, 256<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Count(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountMap runs a byte-at-a-time scan into a Go map (the map
// goes to an index into a slice of counts, so that a word already seen
// costs one allocation-free lookup): the straightforward design Count's
// own scan and table are measured against.
func BenchmarkCountMap(b *testing.B) {
	data := benchCorpus(b, 256<<20)
	if want, _ := Count(bytes.NewReader(data)); !maps.Equal(mapCount(data), want) {
		b.Fatal("the map-based counter disagrees with Count")
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		mapCount(data)
	}
}

func mapCount(data []byte) map[string]int64 {
	index := make(map[string]int32)
	var vals []int64
	add := func(w []byte) {
		if i, ok := index[string(w)]; ok {
			vals[i]++
			return
		}
		index[string(w)] = int32(len(vals))
		vals = append(vals, 1)
	}
	var word []byte
	for i := 0; i < len(data); {
		b := data[i]
		if b < utf8.RuneSelf {
			if cls := asciiClass[b]; cls&clsSep != 0 {
				if len(word) > 0 {
					add(word)
					word = word[:0]
				}
			} else {
				if cls == clsUpper {
					b += 'a' - 'A'
				}
				word = append(word, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		i += size
		if IsWordRune(r) {
			word = utf8.AppendRune(word, unicode.ToLower(r))
		} else if len(word) > 0 {
			add(word)
			word = word[:0]
		}
	}
	if len(word) > 0 {
		add(word)
	}
	out := make(map[string]int64, len(vals))
	for w, i := range index {
		out[w] = vals[i]
	}
	return out
}

// BenchmarkCountNaive measures the naive counter of the tests.
func BenchmarkCountNaive(b *testing.B) {
	data := benchCorpus(b, 64<<20)
	s := string(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		naiveCount(s)
	}
}
