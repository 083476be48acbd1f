// Package textgen generates reproducible synthetic text corpora for Gale's
// word-count tests, examples and benchmarks.
//
// A corpus is a stream of lines of Zipf-distributed words drawn from a
// synthetic vocabulary: pronounceable pseudo-words built from syllables, a
// slice of non-ASCII words (café, straße, Ωmega, 東京, число, and synthetic
// Cyrillic, Greek, accented Latin and CJK words), words mixing letters and
// digits, and numbers. Lines vary in length, a few are very long, sentences
// start with a capital, proper nouns are always capitalised, a few words are
// written in capitals, and punctuation, quotes, parentheses and hyphens
// appear between words. The output is valid UTF-8.
//
// The output is a pure function of Config (except Workers, which only sets
// parallelism): the text is produced in fixed-size blocks, each from its own
// random stream derived from (Seed, block index), generated in parallel and
// written in order. Every block ends with '\n', so a corpus of Size > 0
// bytes ends with '\n'.
//
// # Usage
//
//	cfg := textgen.DefaultConfig()
//	cfg.Size = 256 << 20
//	cfg.Seed = 42
//	if err := textgen.GenerateFile(ctx, "corpus.txt", cfg); err != nil { ... }
//
// # Imports and goroutines
//
// textgen imports the standard library and golang.org/x/sync/errgroup.
// Generate starts Config.Workers generating goroutines plus one feeding and
// one writing goroutine, all owned by an errgroup; it waits for every one of
// them before it returns.
package textgen
