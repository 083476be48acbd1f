package textgen

import (
	"errors"
	"fmt"
	"math"
)

// Version identifies the text this package generates: it changes whenever
// the same Config would produce different bytes, so that copies cached
// under older versions are not taken for current ones.
const Version = 2

// ErrInvalidConfig is wrapped by the error Validate returns.
var ErrInvalidConfig = errors.New("textgen: invalid config")

// Limits checked by Validate.
const (
	// MaxVocabulary is the largest accepted Config.Vocabulary.
	MaxVocabulary = 1 << 22
	// MinBlockSize and MaxBlockSize bound Config.BlockSize.
	MinBlockSize = 4 << 10
	MaxBlockSize = 256 << 20
)

// Config describes a corpus. Two equal Configs (ignoring Workers) produce
// byte-identical output.
type Config struct {
	// Size is the exact length of the output in bytes. Default 0.
	Size int64
	// Seed selects the corpus: the vocabulary, its ranks and the text.
	// Default 1.
	Seed uint64
	// Vocabulary is the number of distinct base words (distinct after
	// lowercasing). Numbers are drawn separately and are not part of it.
	// Default 50_000, at most MaxVocabulary.
	Vocabulary int
	// ZipfS is the exponent s of the Zipf distribution over the
	// vocabulary: the word of rank k (1-based) is drawn with probability
	// proportional to 1/k^s. Default 1.1; it must be in (0, 10].
	ZipfS float64
	// MinLineWords and MaxLineWords bound the number of tokens on an
	// ordinary line, drawn uniformly between them. Defaults 4 and 24.
	MinLineWords, MaxLineWords int
	// LongLineEvery makes one line in LongLineEvery, on average, a long
	// line; 0 disables long lines. Default 500.
	LongLineEvery int
	// LongLineWords is the number of tokens on a long line; it must be at
	// least MaxLineWords when long lines are enabled. A line never spans
	// two blocks, so a long line is cut at the end of its block. Default
	// 20_000 (about 150 KB).
	LongLineWords int
	// EmptyLineEvery makes one line in EmptyLineEvery, on average, an
	// empty line (a paragraph break); 0 disables them. Default 20.
	EmptyLineEvery int
	// CRLFEvery ends one line in CRLFEvery, on average, with "\r\n"
	// instead of "\n"; 0 means every line ends with "\n". Default 0.
	CRLFEvery int
	// NonASCII is the fraction, in [0, 1], of vocabulary words that are
	// non-ASCII. Default 0.05.
	NonASCII float64
	// BlockSize is the number of bytes generated from one random stream.
	// It is part of the corpus identity: changing it changes the text.
	// Default 4 MiB, between MinBlockSize and MaxBlockSize.
	BlockSize int
	// Workers is the number of goroutines generating blocks; 0 means
	// runtime.GOMAXPROCS(0). It does not change the output. Generate
	// holds 2 × Workers blocks in memory.
	Workers int
}

// DefaultConfig returns the default Config, with Size 0.
func DefaultConfig() Config {
	return Config{
		Seed:           1,
		Vocabulary:     50_000,
		ZipfS:          1.1,
		MinLineWords:   4,
		MaxLineWords:   24,
		LongLineEvery:  500,
		LongLineWords:  20_000,
		EmptyLineEvery: 20,
		NonASCII:       0.05,
		BlockSize:      4 << 20,
	}
}

// Validate reports every problem with c at once, in an error wrapping
// ErrInvalidConfig, or nil if c is usable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	def := DefaultConfig()
	if c.Size < 0 {
		bad("Size is %d; must be at least 0", c.Size)
	}
	if c.Vocabulary < 1 || c.Vocabulary > MaxVocabulary {
		bad("Vocabulary is %d; must be between 1 and %d (DefaultConfig uses %d)", c.Vocabulary, MaxVocabulary, def.Vocabulary)
	}
	if !(c.ZipfS > 0 && c.ZipfS <= 10) { // also rejects NaN
		bad("ZipfS is %v; must be in (0, 10] (DefaultConfig uses %v)", c.ZipfS, def.ZipfS)
	}
	if c.MinLineWords < 1 {
		bad("MinLineWords is %d; must be at least 1 (DefaultConfig uses %d)", c.MinLineWords, def.MinLineWords)
	}
	if c.MaxLineWords < c.MinLineWords {
		bad("MaxLineWords is %d; must be at least MinLineWords (%d)", c.MaxLineWords, c.MinLineWords)
	}
	if c.LongLineEvery < 0 {
		bad("LongLineEvery is %d; must be at least 0 (0 disables long lines)", c.LongLineEvery)
	}
	if c.LongLineEvery > 0 && c.LongLineWords < c.MaxLineWords {
		bad("LongLineWords is %d; must be at least MaxLineWords (%d) when LongLineEvery is set", c.LongLineWords, c.MaxLineWords)
	}
	if c.EmptyLineEvery < 0 {
		bad("EmptyLineEvery is %d; must be at least 0 (0 disables empty lines)", c.EmptyLineEvery)
	}
	if c.CRLFEvery < 0 {
		bad("CRLFEvery is %d; must be at least 0 (0 means LF only)", c.CRLFEvery)
	}
	if !(c.NonASCII >= 0 && c.NonASCII <= 1) || math.IsNaN(c.NonASCII) {
		bad("NonASCII is %v; must be in [0, 1] (DefaultConfig uses %v)", c.NonASCII, def.NonASCII)
	}
	if c.BlockSize < MinBlockSize || c.BlockSize > MaxBlockSize {
		bad("BlockSize is %d; must be between %d and %d (DefaultConfig uses %d)", c.BlockSize, MinBlockSize, MaxBlockSize, def.BlockSize)
	}
	if c.Workers < 0 {
		bad("Workers is %d; must be at least 0 (0 means GOMAXPROCS)", c.Workers)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}
