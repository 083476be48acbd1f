package textgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// slack is the room a block buffer keeps beyond the block size: one token
// (a form of at most maxFormLen bytes, punctuation, and the up to 8 bytes
// the word copies write past their end) may be written past the end before
// it is taken back.
const slack = maxFormLen + 64

// Generate writes the corpus described by cfg to w: exactly cfg.Size bytes,
// ending with '\n' if cfg.Size > 0. It returns the first error from cfg's
// validation, from w, or from ctx; after an error, w may hold a prefix of
// the corpus. Generate waits for all its goroutines before returning.
func Generate(ctx context.Context, w io.Writer, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Size == 0 || ctx.Err() != nil {
		return ctx.Err()
	}
	v := buildVocab(&cfg)
	bs := int64(cfg.BlockSize)
	nblocks := (cfg.Size + bs - 1) / bs
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = int(min(int64(workers), nblocks))
	window := 2 * workers // blocks in flight

	type block struct {
		idx  int64
		buf  []byte
		done chan struct{} // closed when buf holds the block's text
	}
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan *block)
	order := make(chan *block, window) // blocks in output order
	free := make(chan []byte, window)
	for range window {
		free <- make([]byte, 0, cfg.BlockSize+slack)
	}

	g.Go(func() error { // feeder: hands out block indices in order
		defer close(jobs)
		defer close(order)
		for i := range nblocks {
			var buf []byte
			select {
			case buf = <-free:
			case <-gctx.Done():
				return gctx.Err()
			}
			b := &block{idx: i, buf: buf, done: make(chan struct{})}
			order <- b // never blocks: at most window blocks exist
			select {
			case jobs <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for b := range jobs {
				if err := gctx.Err(); err != nil {
					return err
				}
				n := min(bs, cfg.Size-b.idx*bs)
				b.buf = generateBlock(v, &cfg, b.idx, int(n), b.buf)
				close(b.done)
			}
			return nil
		})
	}
	g.Go(func() error { // writer: writes blocks in order
		for b := range order {
			select {
			case <-b.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := gctx.Err(); err != nil {
				return err
			}
			if _, err := w.Write(b.buf); err != nil {
				return fmt.Errorf("textgen: writing block %d: %w", b.idx, err)
			}
			free <- b.buf[:0]
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// GenerateFile writes the corpus described by cfg to the file at path,
// atomically: it writes a temporary file in the same directory, syncs it
// and renames it to path, so path holds either its old content or the whole
// corpus. The file is created with mode 0644.
func GenerateFile(ctx context.Context, path string, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("textgen: creating corpus %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := Generate(ctx, f, cfg); err != nil {
		return fmt.Errorf("textgen: generating corpus %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("textgen: corpus %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("textgen: syncing corpus %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("textgen: closing corpus %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("textgen: renaming corpus into place at %s: %w", path, err)
	}
	return nil
}

// Punctuation written around words.
var (
	openers = [...]string{"(", "\"", "“", "«", "'"}
	closers = [...]string{")", "\"", "”", "»", "'"}
	enders  = [...]string{".", ".", ".", ".", ".", ".", ".", ".", "?", "?", "!", "…", "...", ".", ".", "?"}
	pausers = [...]string{";", ":", " —", " -"}
)

// writer generates the text of one block.
type writer struct {
	v            *vocab
	cfg          *Config
	rng          wyrand
	choices      [64]uint32 // the next words, sampled ahead (see vocab.sample)
	next         int        // index of the next unused choice
	buf          []byte
	capNext      bool   // the next word starts a sentence
	sepBits      uint32 // decides the separator after the last token
	sentenceLeft int    // words before the sentence ends
}

// generateBlock returns block idx of the corpus, n bytes long, in buf.
// Every line ends inside the block; the last line is padded with spaces
// so that the block ends with '\n' at byte n.
func generateBlock(v *vocab, cfg *Config, idx int64, n int, buf []byte) []byte {
	if cap(buf) < n+slack { // the fast paths below rely on the slack
		buf = make([]byte, 0, n+slack)
	}
	wr := writer{v: v, cfg: cfg, rng: newWyrand(cfg.Seed, streamBlock, uint64(idx)), buf: buf[:0], capNext: true}
	wr.next = len(wr.choices)
	wr.sentenceLeft = wr.sentenceLen()
	limit := n - 1 // room before the final '\n'
	for {
		words := wr.lineWords()
		for j := 0; j < words; j++ {
			mark := len(wr.buf)
			if j > 0 {
				wr.sep()
			}
			wr.token()
			if len(wr.buf) > limit {
				// The token does not fit: pad and end the block.
				wr.buf = wr.buf[:mark]
				return wr.finish(n)
			}
		}
		if len(wr.buf) >= limit {
			return wr.finish(n)
		}
		if wr.cfg.CRLFEvery > 0 && wr.rng.next()%uint64(wr.cfg.CRLFEvery) == 0 && len(wr.buf) < limit-1 {
			wr.buf = append(wr.buf, '\r')
		}
		wr.buf = append(wr.buf, '\n') // len(wr.buf) < n still
	}
}

// finish pads the block with spaces up to n-1 bytes and ends it with '\n'.
func (wr *writer) finish(n int) []byte {
	for len(wr.buf) < n-1 {
		wr.buf = append(wr.buf, ' ')
	}
	return append(wr.buf, '\n')
}

func (wr *writer) lineWords() int {
	c := wr.cfg
	r := wr.rng.next()
	if c.EmptyLineEvery > 0 && (r>>32)%uint64(c.EmptyLineEvery) == 0 {
		return 0
	}
	if c.LongLineEvery > 0 && (r&0xffff_ffff)%uint64(c.LongLineEvery) == 0 {
		return c.LongLineWords
	}
	span := uint64(c.MaxLineWords - c.MinLineWords + 1)
	return c.MinLineWords + int(wr.rng.next()%span)
}

func (wr *writer) sentenceLen() int {
	return 3 + int(wr.rng.next()%22)
}

// sep writes the separator between two tokens of a line, as decided by
// the previous token.
func (wr *writer) sep() {
	switch d := wr.sepBits; {
	case d < 8:
		wr.buf = append(wr.buf, '-') // a hyphenated compound
	case d < 11:
		wr.buf = append(wr.buf, ' ', ' ')
	case d < 13:
		wr.buf = append(wr.buf, '\t')
	default:
		wr.buf = append(wr.buf, ' ')
	}
}

// token writes one word or number with the punctuation around it.
func (wr *writer) token() {
	// One random number decides everything about a token, in disjoint
	// bit fields: 0-9 number or word, 10-19 opening punctuation, 20-29
	// capitals, 30-39 comma or pause, 40-43 sentence end, 50-59 the next
	// separator.
	d := wr.rng.next()
	wr.sepBits = uint32(d>>50) & 1023
	open := -1
	if x := (d >> 10) & 1023; x < 15 {
		open = int(x % uint64(len(openers)))
		wr.buf = append(wr.buf, openers[open]...)
	}
	if d&1023 < 12 {
		wr.number(wr.rng.next())
	} else {
		wr.word(d)
	}
	if open >= 0 {
		wr.buf = append(wr.buf, closers[open]...)
	}
	wr.sentenceLeft--
	if wr.sentenceLeft <= 0 {
		wr.buf = append(wr.buf, enders[(d>>40)%uint64(len(enders))]...)
		wr.sentenceLeft = wr.sentenceLen()
		wr.capNext = true
		return
	}
	switch x := (d >> 30) & 1023; {
	case x < 70:
		wr.buf = append(wr.buf, ',')
	case x < 80:
		wr.buf = append(wr.buf, pausers[x%uint64(len(pausers))]...)
	}
}

// refill samples the next len(wr.choices) words. Sampling them in a
// batch lets the CPU overlap the cache misses of many draws, which it
// cannot do one word at a time, where each draw's lookup waits behind the
// previous word's writing.
func (wr *writer) refill() {
	v := wr.v
	for j := range wr.choices {
		wr.choices[j] = v.sample(wr.rng.next(), wr.rng.next())
	}
	wr.next = 0
}

func (wr *writer) word(d uint64) {
	if wr.next == len(wr.choices) {
		wr.refill()
	}
	v := wr.v
	c := wr.choices[wr.next]
	wr.next++
	caps := (d>>20)&1023 < 2
	f := &v.slots[c>>1].forms[c&1]
	meta := f[inlineMax]
	if !caps && meta&inlineLen != 0 && (!wr.capNext || meta&(inlineCapSame|inlineCapASCII) != 0) {
		// Copy the whole inline form with two moves, several times
		// cheaper than memmove for a few bytes; the block buffer's
		// slack guarantees the room.
		n := len(wr.buf)
		dst := wr.buf[n : n+len(f)]
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(f[:8]))
		binary.LittleEndian.PutUint32(dst[8:], binary.LittleEndian.Uint32(f[8:]))
		if wr.capNext && meta&inlineCapASCII != 0 {
			dst[0] -= 'a' - 'A'
		}
		wr.buf = wr.buf[:n+int(meta&inlineLen)]
		wr.capNext = false
		return
	}
	e := &v.words[v.rank(c)]
	start, end := e.off, e.off+uint32(e.lo)
	switch {
	case caps:
		start = e.off + uint32(e.lo) + uint32(e.ti)
		end = start + uint32(e.up)
	case wr.capNext || e.proper:
		start = e.off + uint32(e.lo)
		end = start + uint32(e.ti)
	}
	wr.putLong(v.arena[start:end])
	wr.capNext = false
}

// putLong appends a form from the arena in 8-byte moves. It may copy up to
// 7 bytes past the form, which the arena's padding and the block buffer's
// slack allow, and then drops them.
func (wr *writer) putLong(src []byte) {
	n, l := len(wr.buf), len(src)
	if cap(src) < l+8 {
		wr.buf = append(wr.buf, src...)
		return
	}
	dst := wr.buf[n : n+l+8]
	s := src[:l+8]
	for k := 0; k < l; k += 8 {
		binary.LittleEndian.PutUint64(dst[k:], binary.LittleEndian.Uint64(s[k:]))
	}
	wr.buf = wr.buf[:n+l]
}

func (wr *writer) number(r uint64) {
	switch k := r & 15; {
	case k < 8: // small integers
		wr.buf = strconv.AppendUint(wr.buf, (r>>8)%100, 10)
	case k < 13: // years
		wr.buf = strconv.AppendUint(wr.buf, 1900+(r>>8)%130, 10)
	case k < 14: // thousands separated: 12,345
		wr.buf = strconv.AppendUint(wr.buf, 1+(r>>8)%999, 10)
		wr.buf = append(wr.buf, ',')
		wr.buf = append(wr.buf, byte('0'+(r>>20)%10), byte('0'+(r>>24)%10), byte('0'+(r>>28)%10))
	default: // decimals: 3.14
		wr.buf = strconv.AppendUint(wr.buf, (r>>8)%10, 10)
		wr.buf = append(wr.buf, '.')
		wr.buf = strconv.AppendUint(wr.buf, (r>>16)%100, 10)
	}
	wr.capNext = false
}
