// Package wordref is Gale's reference word counter: an independent,
// single-goroutine implementation of the word-count definition that tests,
// examples and benchmarks check Gale's distributed word count against, and
// the one-core baseline the benchmarks compare it with.
//
// # Definition
//
// A word is a maximal run of runes r with unicode.IsLetter(r) ||
// unicode.IsDigit(r), lowercased rune by rune with unicode.ToLower (simple
// case mapping). Every other rune separates words: spaces, punctuation,
// symbols, combining marks, CR, LF, and every byte that is not valid UTF-8
// (it decodes as utf8.RuneError, which is not a letter). Lowercasing never
// changes which runes belong to a word, and for valid UTF-8 it is exactly
// strings.ToLower, which is defined as strings.Map(unicode.ToLower, s).
// Because the simple mapping is used, "İstanbul" (U+0130, capital I with dot
// above) counts as "istanbul", not as the full-mapping "i̇stanbul", and
// "STRASSE" and "straße" stay different words.
//
// The counted output format, written by WriteSorted and read by ParseCounts,
// is one "word\tcount\n" line per distinct word, sorted by word in byte
// order.
//
// # Usage
//
//	counts, err := wordref.Count(f)
//	if err != nil { ... }
//	err = wordref.WriteSorted(w, counts)
//
// # Imports and goroutines
//
// wordref imports only the standard library and starts no goroutines; every
// function runs on its caller's goroutine. Functions are safe to call
// concurrently on distinct inputs.
package wordref
