package wordref

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ErrMalformed is returned by ParseCounts, wrapped with the line number,
// when a line is not "word\tcount".
var ErrMalformed = errors.New("wordref: malformed count line")

// ErrInvalidWord is returned by WriteSorted, wrapped with the word, when a
// word is empty or contains a tab or a newline and so cannot be written in
// the "word\tcount" format.
var ErrInvalidWord = errors.New("wordref: invalid word")

// readSize is how many bytes Count asks its reader for at a time. Large
// reads amortise the per-read cost; 1 MiB stays inside L2 on common CPUs.
const readSize = 1 << 20

// IsWordRune reports whether r belongs to a word: unicode.IsLetter(r) ||
// unicode.IsDigit(r).
func IsWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// Byte classes for the ASCII fast path.
const (
	clsSep   = 1 << iota // ASCII byte that separates words
	clsUpper             // ASCII upper-case letter
	clsHigh              // byte >= 0x80: part of a multi-byte rune or invalid
)

// asciiClass classifies every byte value; it is computed once and never
// written again.
var asciiClass = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		switch {
		case b >= utf8.RuneSelf:
			t[b] = clsHigh
		case 'A' <= b && b <= 'Z':
			t[b] = clsUpper
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9':
			t[b] = 0
		default:
			t[b] = clsSep
		}
	}
	return t
}()

// counter accumulates counts. The map goes from a word to its index in
// vals rather than to the count itself: m[string(b)]++ allocates the key on
// every call, whereas a lookup m[string(b)] does not, so a word already seen
// costs one allocation-free lookup and one slice increment.
type counter struct {
	index map[string]int32
	vals  []int64
	word  []byte // the word being assembled, lowercased
}

func (c *counter) add(w []byte) {
	if i, ok := c.index[string(w)]; ok {
		c.vals[i]++
		return
	}
	c.index[string(w)] = int32(len(c.vals))
	c.vals = append(c.vals, 1)
}

// scan counts the words of data and returns how many bytes it consumed.
// Unless final, it stops before an incomplete UTF-8 sequence at the end of
// data, and it keeps a word that reaches the end of data in c.word, so the
// caller continues with the unconsumed bytes followed by more input.
func (c *counter) scan(data []byte, final bool) int {
	word := c.word
	i, n := 0, len(data)
	for i < n {
		b := data[i]
		cls := asciiClass[b]
		if cls&clsSep != 0 {
			if len(word) > 0 {
				c.add(word)
				word = word[:0]
			}
			i++
			continue
		}
		if cls == clsHigh {
			if !final && !utf8.FullRune(data[i:]) {
				break
			}
			r, size := utf8.DecodeRune(data[i:])
			i += size
			if IsWordRune(r) {
				word = utf8.AppendRune(word, unicode.ToLower(r))
			} else if len(word) > 0 {
				c.add(word)
				word = word[:0]
			}
			continue
		}
		// A run of ASCII letters and digits.
		start := i
		acc := cls
		for i++; i < n; i++ {
			cls = asciiClass[data[i]]
			if cls&(clsSep|clsHigh) != 0 {
				break
			}
			acc |= cls
		}
		if len(word) == 0 && acc == 0 && i < n && cls == clsSep {
			// A whole lower-case ASCII word inside data: count it in
			// place, without copying.
			c.add(data[start:i])
			continue
		}
		if acc == 0 {
			word = append(word, data[start:i]...)
		} else {
			for _, b := range data[start:i] {
				if asciiClass[b] == clsUpper {
					b += 'a' - 'A'
				}
				word = append(word, b)
			}
		}
	}
	c.word = word
	return i
}

// Count reads r to EOF and returns how many times each word occurs (see
// the package documentation for what a word is). It handles lines of any
// length, CRLF line ends and invalid UTF-8. The error, if any, is the first
// error r returned other than io.EOF.
func Count(r io.Reader) (map[string]int64, error) {
	c := counter{index: make(map[string]int32, 1<<12), word: make([]byte, 0, 64)}
	buf := make([]byte, readSize+utf8.UTFMax)
	carry := 0 // bytes of an incomplete rune kept at the front of buf
	for {
		n, err := r.Read(buf[carry : carry+readSize])
		data := buf[:carry+n]
		final := err != nil
		used := c.scan(data, final) // consumes all of data when final
		carry = copy(buf, data[used:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("wordref: reading input: %w", err)
		}
	}
	if len(c.word) > 0 {
		c.add(c.word)
	}
	out := make(map[string]int64, len(c.index))
	for w, i := range c.index {
		out[w] = c.vals[i]
	}
	return out, nil
}

// WriteSorted writes counts to w as "word\tcount\n" lines sorted by word in
// byte order. It fails with ErrInvalidWord, before writing anything, if a
// word is empty or contains a tab or a newline.
func WriteSorted(w io.Writer, counts map[string]int64) error {
	words := make([]string, 0, len(counts))
	for word := range counts {
		if word == "" {
			return fmt.Errorf("%w: empty word (count %d)", ErrInvalidWord, counts[word])
		}
		for i := 0; i < len(word); i++ {
			if word[i] == '\t' || word[i] == '\n' {
				return fmt.Errorf("%w: %q contains a tab or a newline", ErrInvalidWord, word)
			}
		}
		words = append(words, word)
	}
	slices.Sort(words)
	bw := bufio.NewWriterSize(w, 256<<10)
	var num []byte
	for _, word := range words {
		bw.WriteString(word)
		bw.WriteByte('\t')
		num = strconv.AppendInt(num[:0], counts[word], 10)
		num = append(num, '\n')
		if _, err := bw.Write(num); err != nil {
			return fmt.Errorf("wordref: writing counts: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("wordref: writing counts: %w", err)
	}
	return nil
}

// ParseCounts reads "word\tcount" lines, as written by WriteSorted, and
// returns the counts. Lines may come in any order and the last one may lack
// its newline. A line that is not a non-empty word, a tab and a positive
// decimal count, or that repeats a word, fails with an error wrapping
// ErrMalformed and naming the line number (1-based).
func ParseCounts(r io.Reader) (map[string]int64, error) {
	counts := make(map[string]int64)
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte // a line longer than br's buffer, reassembled
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
			line = long
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("wordref: reading counts at line %d: %w", lineNo, err)
		}
		if len(line) == 0 && err == io.EOF {
			return counts, nil
		}
		body := bytes.TrimSuffix(line, []byte{'\n'})
		if perr := parseLine(body, counts); perr != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, lineNo, perr)
		}
		if err == io.EOF {
			return counts, nil
		}
	}
}

func parseLine(line []byte, counts map[string]int64) error {
	tab := bytes.IndexByte(line, '\t')
	if tab < 0 {
		return fmt.Errorf("no tab in %q; want \"word\\tcount\"", clip(line))
	}
	word, num := line[:tab], line[tab+1:]
	if len(word) == 0 {
		return fmt.Errorf("empty word in %q", clip(line))
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("count %q of word %q is not a positive decimal integer", clip(num), clip(word))
	}
	if _, dup := counts[string(word)]; dup {
		return fmt.Errorf("word %q appears twice", clip(word))
	}
	counts[string(word)] = n
	return nil
}

// clip shortens b for error messages.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
