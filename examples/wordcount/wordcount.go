// Package wordcount is Gale's word count: the number of occurrences of
// every word in a set of text files, written as "word<TAB>count" lines.
//
// Words are maximal runs of Unicode letters and digits, lowercased rune by
// rune (unicode.ToLower); everything else, invalid UTF-8 included,
// separates words.
//
//	p := gale.NewPipeline()
//	wordcount.Build(p, []string{"books/"}, "counts")
//	report, err := gale.Run(ctx, p)
package wordcount

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/galeproject/gale"
)

// Build adds word count over inputs to p, writing to output, and returns
// the counts collection (for further use or Collect). It uses
// gale.CountWords, the fused form of BuildGeneral's pipeline.
func Build(p *gale.Pipeline, inputs []string, output string) gale.Collection[gale.KV[string, int64]] {
	counts := gale.CountWords(gale.ReadText(p, inputs...))
	if output != "" {
		gale.WriteText(counts, output)
	}
	return counts
}

// BuildGeneral is Build written with the general API,
// CountPerElement(FlatMap(lines, Tokenize)), which counts the same words:
// the shape of any user's word count.
func BuildGeneral(p *gale.Pipeline, inputs []string, output string) gale.Collection[gale.KV[string, int64]] {
	lines := gale.ReadText(p, inputs...)
	counts := gale.CountPerElement(gale.FlatMap(lines, Tokenize))
	if output != "" {
		gale.WriteText(counts, output)
	}
	return counts
}

// wordByte classifies ASCII bytes: 1 for letters and digits, 2 for upper
// case letters, 0 for separators. It is never written after init.
var wordByte = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			t[c] = 1
		case 'A' <= c && c <= 'Z':
			t[c] = 2
		}
	}
	return t
}()

// Tokenize emits the words of line, lowercased. A word that is already
// lower case is emitted as a substring of line, without copying.
func Tokenize(line string, emit func(string)) {
	i, n := 0, len(line)
	for i < n {
		// Skip separators.
		if c := line[i]; c < utf8.RuneSelf {
			if wordByte[c] == 0 {
				i++
				continue
			}
		} else if r, size := utf8.DecodeRuneInString(line[i:]); !isWord(r) {
			i += size
			continue
		}
		start, lower := i, true
		for i < n {
			c := line[i]
			if c < utf8.RuneSelf {
				k := wordByte[c]
				if k == 0 {
					break
				}
				lower = lower && k == 1
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(line[i:])
			if !isWord(r) {
				break
			}
			lower = lower && unicode.ToLower(r) == r
			i += size
		}
		if lower {
			emit(line[start:i])
		} else {
			emit(strings.Map(unicode.ToLower, line[start:i]))
		}
	}
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
