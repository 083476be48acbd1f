// Package sort is Gale's distributed sort of text lines or of sort-benchmark
// records.
//
//   - text: every line is a record, ordered by its bytes (the order of
//     LC_ALL=C sort); output lines end with "\n".
//   - records: fixed 100-byte records ordered by their first 10 bytes, the
//     layout of the public sort benchmark's gensort/valsort (binary or
//     ASCII variant); output is the records, back to back.
//
// Concatenating the part files in order gives the sorted input.
package sort

import (
	"fmt"

	"github.com/galeproject/gale"
)

// Formats.
const (
	Text    = "text"
	Records = "records"
)

// Record layout of the sort benchmark.
const (
	RecordSize = 100
	KeySize    = 10
)

// Build adds a sort of inputs to p, writing to output.
func Build(p *gale.Pipeline, format string, inputs []string, output string, opts ...gale.SortOption) error {
	switch format {
	case Text:
		lines := gale.ReadText(p, inputs...)
		gale.WriteText(gale.Sort(lines, opts...), output)
	case Records:
		recs := gale.ReadRecords(p, RecordSize, inputs...)
		gale.WriteRecords(gale.Sort(recs, append([]gale.SortOption{gale.KeyPrefix(KeySize)}, opts...)...), output)
	default:
		return fmt.Errorf("sort: unknown format %q (want %s or %s)", format, Text, Records)
	}
	return nil
}
