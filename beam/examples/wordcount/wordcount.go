// Package wordcount is Apache Beam's Go wordcount example
// (sdks/go/examples/wordcount) as a reusable pipeline: it reads text with
// textio.Read, extracts words with a DoFn that reports a counter and a
// distribution, counts them with stats.Count (a lifted CombinePerKey),
// formats "word: count" lines and writes them with textio.Write. The code
// is Beam's, unchanged but for living in a function, so it runs on any
// Beam runner; cmd/beam-wordcount runs it on Gale.
//
// This package imports the Beam Go SDK only. It starts no goroutines.
package wordcount

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
)

func init() {
	register.DoFn3x0[context.Context, string, func(string)](&ExtractFn{})
	register.Function2x1(FormatFn)
	register.Emitter1[string]()
}

var (
	wordRE     = regexp.MustCompile(`[a-zA-Z]+('[a-z])?`)
	empty      = beam.NewCounter("extract", "emptyLines")
	smallWords = beam.NewCounter("extract", "smallWords")
	lineLen    = beam.NewDistribution("extract", "lineLenDistro")
)

// ExtractFn emits the words of a line, counting empty lines and words
// shorter than SmallWordLength and recording line lengths.
type ExtractFn struct {
	SmallWordLength int `json:"smallWordLength"`
}

// ProcessElement emits each word of line.
func (f *ExtractFn) ProcessElement(ctx context.Context, line string, emit func(string)) {
	lineLen.Update(ctx, int64(len(line)))
	if len(strings.TrimSpace(line)) == 0 {
		empty.Inc(ctx, 1)
	}
	for _, word := range wordRE.FindAllString(line, -1) {
		if len(word) < f.SmallWordLength {
			smallWords.Inc(ctx, 1)
		}
		emit(word)
	}
}

// FormatFn formats a word and its count as "word: count".
func FormatFn(w string, c int) string {
	return fmt.Sprintf("%s: %v", w, c)
}

// CountWords counts the words of lines.
func CountWords(s beam.Scope, lines beam.PCollection) beam.PCollection {
	s = s.Scope("CountWords")
	col := beam.ParDo(s, &ExtractFn{SmallWordLength: 9}, lines)
	return stats.Count(s, col)
}

// Build adds the word count of the files matching input, written to
// output, to the pipeline of s.
func Build(s beam.Scope, input, output string) {
	lines := textio.Read(s, input)
	counted := CountWords(s, lines)
	formatted := beam.ParDo(s, FormatFn, counted)
	textio.Write(s, output, formatted)
}
