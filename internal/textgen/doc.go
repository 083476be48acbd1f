// Package textgen generates reproducible synthetic text corpora for Gale's
// word-count tests, examples and benchmarks.
//
// A corpus is a stream of lines of Zipf-distributed words drawn from a
// vocabulary whose most frequent words are common English words (the, of,
// and, ...), followed by pronounceable pseudo-words built from syllables, a
// slice of non-ASCII words (café, straße, Ωmega, 東京, число, and synthetic
// Cyrillic, Greek, accented Latin and CJK words), words mixing letters and
// digits, and numbers. Lines vary in length, a few are very long, sentences
// start with a capital, proper nouns are always capitalised, a few words are
// written in capitals, and punctuation, quotes, parentheses and hyphens
// appear between words. The output is valid UTF-8.
//
// The output is a pure function of Config (except Workers, which only sets
// parallelism) for a given version of this package, whatever GOMAXPROCS
// is: the text is produced in fixed-size blocks, each from its own random
// stream derived from (Seed, block index), generated in parallel and
// written in order. Every line ends inside its block and every block ends
// with '\n' (its last line padded with spaces if needed), so a corpus of
// Size > 0 bytes ends with '\n'. Blocks before the last do not depend on
// Size, so a smaller corpus is a prefix of a larger one up to the smaller
// one's last whole block.
//
// Words of rank k (1-based) in the vocabulary appear with probability
// proportional to 1/k^ZipfS; they are drawn from an alias table in O(1)
// without floating point, and the table also carries the text of most
// words, so that generation runs at several hundred MB/s on two cores.
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
