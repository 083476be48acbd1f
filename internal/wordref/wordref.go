package wordref

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
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

// twoByteLower maps each rune encoded in two bytes of UTF-8 (U+0080 to
// U+07FF) to its lowercase form if it is a word rune, and to 0 if it
// separates words (no word rune lowercases to U+0000). It is computed once
// and never written again.
var twoByteLower = func() (t [0x800]rune) {
	for r := rune(0x80); r < 0x800; r++ {
		if IsWordRune(r) {
			t[r] = unicode.ToLower(r)
		}
	}
	return t
}()

const (
	highBits = 0x8080808080808080
	ones     = 0x0101010101010101
)

// lowerMask returns, for the eight bytes packed in x, 0x80 in each byte
// that is an ASCII lower-case letter and 0 in the others (SWAR: the byte
// additions never carry into the next byte, because every byte added to
// is below 0x80 and the addends are small).
func lowerMask(x uint64) uint64 {
	ascii := ^x & highBits       // 0x80 where the byte is ASCII
	low := x &^ highBits         // the bytes without their top bit
	geA := low + (0x80-'a')*ones // top bit set where byte >= 'a'
	gtZ := low + (0x7f-'z')*ones // top bit set where byte > 'z'
	return ascii & geA &^ gtZ & highBits
}

// counter accumulates counts in an open-addressing hash table with linear
// probing. It replaces a map[string]int64 because the map is where the time
// went: m[string(b)]++ allocates the key on every call, and even with an
// allocation-free lookup the map's hashing, generic probing and key
// comparison (a call to memequal) took two thirds of Count's time. Here a
// word of at most 16 bytes, nearly every word, is packed into two 64-bit
// integers that serve as its hash input and are compared in place of its
// bytes, so a hit is a multiply, usually one slot load and three integer
// compares. The key of a new word is allocated once, as the map would.
type counter struct {
	slots []slot   // len is a power of two; at most half full
	keys  []string // the words, indexed by slot.key
	mask  uint64
	word  []byte // the word being assembled, lowercased
}

// slot is one entry of counter's table; count == 0 marks an empty slot.
// For a word of at most 16 bytes, k0 and k1 hold its bytes (little-endian,
// zero-padded); for a longer word, k0 holds its hash and k1 is 0. Words
// never contain a zero byte, and n tells the two apart. A slot is 32
// bytes, so it does not straddle cache lines in a table aligned as large
// allocations are.
type slot struct {
	k0, k1 uint64
	count  int64
	n      uint32 // length of the word, saturated at MaxUint32
	key    uint32 // index of the word in counter.keys
}

// Hash constants (from wyhash).
const (
	hashK0 = 0xa0761d6478bd642f
	hashK1 = 0xe7037ed1a0b428db
	hashK2 = 0x8ebc6af09c88c6e3
)

// hashShort hashes a word of n <= 16 bytes packed into k0, k1.
func hashShort(k0, k1 uint64, n int) uint64 {
	hi, lo := bits.Mul64(k0^hashK0, k1^hashK1^uint64(n))
	return hi ^ lo
}

// hashLong hashes a word of more than 16 bytes.
func hashLong(w []byte) uint64 {
	h := uint64(len(w)) * hashK2
	for len(w) >= 8 {
		hi, lo := bits.Mul64(binary.LittleEndian.Uint64(w)^hashK0, h^hashK1)
		h = hi ^ lo
		w = w[8:]
	}
	var tail [8]byte
	copy(tail[:], w)
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(tail[:])^hashK0, h^hashK1)
	return hi ^ lo
}

// pack returns the bytes of w, len(w) <= 16, as two little-endian
// integers padded with zeros. When w's capacity allows, it reads whole
// 8-byte words past len(w) (still within w's array) and masks the excess.
func pack(w []byte) (k0, k1 uint64) {
	n := len(w)
	if cap(w) >= 16 {
		full := w[:16]
		k0 = binary.LittleEndian.Uint64(full)
		k1 = binary.LittleEndian.Uint64(full[8:])
		if n < 8 {
			return k0 & (1<<(8*n) - 1), 0
		}
		return k0, k1 & (1<<(8*(n-8)) - 1)
	}
	var b [16]byte
	copy(b[:], w)
	return binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])
}

func newCounter() *counter {
	const size = 1 << 12
	return &counter{slots: make([]slot, size), mask: size - 1, word: make([]byte, 0, 256)}
}

func (c *counter) add(w []byte) {
	n := len(w)
	if n > 16 {
		c.addLong(w)
		return
	}
	k0, k1 := pack(w)
	for i := hashShort(k0, k1, n) & c.mask; ; i = (i + 1) & c.mask {
		s := &c.slots[i]
		if s.k0 == k0 && s.k1 == k1 && s.n == uint32(n) {
			s.count++
			return
		}
		if s.count == 0 {
			c.insert(s, k0, k1, w)
			return
		}
	}
}

func (c *counter) addLong(w []byte) {
	h := hashLong(w)
	for i := h & c.mask; ; i = (i + 1) & c.mask {
		s := &c.slots[i]
		if s.k0 == h && s.n == saturate(len(w)) && c.keys[s.key] == string(w) {
			s.count++
			return
		}
		if s.count == 0 {
			c.insert(s, h, 0, w)
			return
		}
	}
}

func (c *counter) insert(s *slot, k0, k1 uint64, w []byte) {
	*s = slot{k0: k0, k1: k1, count: 1, n: saturate(len(w)), key: uint32(len(c.keys))}
	c.keys = append(c.keys, string(w))
	if 2*len(c.keys) > len(c.slots) {
		c.grow()
	}
}

func saturate(n int) uint32 { return uint32(min(n, math.MaxUint32)) }

// grow doubles the table.
func (c *counter) grow() {
	old := c.slots
	c.slots = make([]slot, 2*len(old))
	c.mask = uint64(len(c.slots) - 1)
	for _, s := range old {
		if s.count == 0 {
			continue
		}
		h := s.k0
		if s.n <= 16 {
			h = hashShort(s.k0, s.k1, int(s.n))
		}
		i := h & c.mask
		for c.slots[i].count != 0 {
			i = (i + 1) & c.mask
		}
		c.slots[i] = s
	}
}

func (c *counter) result() map[string]int64 {
	out := make(map[string]int64, len(c.keys))
	for _, s := range c.slots {
		if s.count != 0 {
			out[c.keys[s.key]] = s.count
		}
	}
	return out
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
			// Two-byte sequences (Latin accents, Greek, Cyrillic, ...)
			// are decoded and classified by table.
			if b >= 0xc2 && b <= 0xdf && i+1 < n && data[i+1]&0xc0 == 0x80 {
				lr := twoByteLower[rune(b&0x1f)<<6|rune(data[i+1]&0x3f)]
				i += 2
				if lr != 0 {
					word = utf8.AppendRune(word, lr)
				} else if len(word) > 0 {
					c.add(word)
					word = word[:0]
				}
				continue
			}
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
		// A run of ASCII letters and digits. Lower-case letters, most
		// of the text, are skipped eight at a time.
		start := i
		acc := cls
		for i++; ; i++ {
			for i+8 <= n {
				m := lowerMask(binary.LittleEndian.Uint64(data[i:]))
				if m != highBits {
					i += bits.TrailingZeros64(^m&highBits) >> 3
					break
				}
				i += 8
			}
			if i >= n {
				break
			}
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
	c := newCounter()
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
	return c.result(), nil
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
