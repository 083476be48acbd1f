package main

import (
	"regexp"
	"slices"
	"testing"
)

// TestWordsMatchesExtractFn checks Words against the regular expression
// Beam's wordcount uses, on tricky lines and on every short string over a
// small alphabet.
func TestWordsMatchesExtractFn(t *testing.T) {
	re := regexp.MustCompile(`[a-zA-Z]+('[a-z])?`)
	check := func(line string) {
		var got []string
		Words(line, func(w string) { got = append(got, w) })
		if want := re.FindAllString(line, -1); !slices.Equal(got, want) {
			t.Fatalf("Words(%q) = %q, want %q", line, got, want)
		}
	}
	for _, line := range []string{"", "The cat's hat.", "don't's", "it'S x'y ''a 'b", "café naïve", "a1b2 ÀB", "end'", "x'"} {
		check(line)
	}
	alphabet := []byte("aZ' 9é")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		check(string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 5)
}
