package gale

import (
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/internal/strtab"
	"github.com/galeproject/gale/planner"
)

// CountWords counts the words of lines: maximal runs of Unicode letters and
// digits, lowercased rune by rune (unicode.ToLower); everything else,
// invalid UTF-8 included, separates words. It is
// CountPerElement(FlatMap(lines, tokenize)) for that tokenizer, fused: the
// map side scans each line and counts its words in place, with no call per
// word and no string per line or per word (the engine lends it the lines
// from its read buffer, since it keeps none of them). The shuffle, the
// reduce side, the output and Glider's merge actions are CountPerElement's.
func CountWords(lines Collection[string]) Collection[KV[string, int64]] {
	const kname = "countwords"
	lines.p.reg.Put(kname, wordsKernel{})
	return shuffleNode[string, KV[string, int64]](lines, planner.Combine, "CountWords", kname, true, callerLoc(1))
}

// wordsKernel is CountWords's keyed kernel: CountPerElement's for strings,
// with a writer fed lines instead of words.
type wordsKernel struct{ countKernel[string] }

var (
	_ kernel.Keyed  = wordsKernel{}
	_ kernel.Merger = wordsKernel{}
)

func (wordsKernel) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	w := &wordsWriter{out: newPartitions(parts), combine: combine, sc: coder.For[string](), ic: coder.For[int64]()}
	if combine {
		w.table = strtab.New()
	}
	return w, nil
}

// wordsWriter tokenizes lines and counts their words, in a packed-key
// table (combining) or as one record per word.
type wordsWriter struct {
	out     *partitions
	sc      coder.Coder[string]
	ic      coder.Coder[int64]
	combine bool
	table   *strtab.Table
	lower   []byte // a word being lowercased
	kbuf    []byte
	n       int64 // words
}

var _ kernel.LineBorrower = (*wordsWriter)(nil)

// BorrowsLines implements kernel.LineBorrower: a line is scanned during
// the call and no part of it is kept (the table copies new words).
func (w *wordsWriter) BorrowsLines() {}

// wordClass classifies ASCII bytes: 1 for lower case letters and digits, 2
// for upper case letters, 0 for separators. It is never written after init.
var wordClass = func() (t [utf8.RuneSelf]uint8) {
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

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func (w *wordsWriter) Emit() any {
	return func(line string) {
		i, n := 0, len(line)
		for i < n {
			// Skip separators.
			if c := line[i]; c < utf8.RuneSelf {
				if wordClass[c] == 0 {
					i++
					continue
				}
			} else if r, size := utf8.DecodeRuneInString(line[i:]); !isWordRune(r) {
				i += size
				continue
			}
			start, lower := i, true
			for i < n {
				c := line[i]
				if c < utf8.RuneSelf {
					k := wordClass[c]
					if k == 0 {
						break
					}
					lower = lower && k == 1
					i++
					continue
				}
				r, size := utf8.DecodeRuneInString(line[i:])
				if !isWordRune(r) {
					break
				}
				lower = lower && unicode.ToLower(r) == r
				i += size
			}
			word := line[start:i]
			if !lower {
				w.lower = appendLower(w.lower[:0], word)
				word = unsafe.String(unsafe.SliceData(w.lower), len(w.lower))
			}
			w.add(word)
		}
	}
}

// appendLower appends word lowercased rune by rune; word holds only word
// runes, so every rune decodes validly.
func appendLower(dst []byte, word string) []byte {
	for i := 0; i < len(word); {
		c := word[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(word[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += size
	}
	return dst
}

func (w *wordsWriter) add(word string) {
	w.n++
	if !w.combine {
		w.kbuf = w.sc.Append(w.kbuf[:0], word)
		w.out.add(w.kbuf, varintOne)
		return
	}
	w.table.Add(word, 1)
	if w.table.Len() > maxCombineEntries {
		w.flush()
	}
}

func (w *wordsWriter) flush() {
	var vbuf []byte
	w.table.Range(func(key string, n int64) {
		w.kbuf = w.sc.Append(w.kbuf[:0], key)
		vbuf = w.ic.Append(vbuf[:0], n)
		w.out.add(w.kbuf, vbuf)
	})
	w.table.Reset()
}

func (w *wordsWriter) Finish() ([][]byte, error) {
	if w.combine {
		w.flush()
	}
	return w.out.parts, nil
}

// Records reports the words counted, as CountPerElement's writer reports
// the words fed to it.
func (w *wordsWriter) Records() int64 { return w.n }
