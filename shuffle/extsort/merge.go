package extsort

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// cursor walks one sorted input of a merge: a run file or the in-memory
// buffer.
type cursor struct {
	order int // position in arrival order; breaks key ties

	// Run file input.
	path      string
	f         *os.File
	br        *bufio.Reader
	size      int64
	remaining int64
	buf       []byte

	// In-memory input.
	mem *Sorter
	pos int

	rec, key []byte
}

func (s *Sorter) readBufferSize() int {
	return int(min(max(s.cfg.MemoryBytes/int64(2*s.cfg.MergeFanIn), 4<<10), 1<<20))
}

func (s *Sorter) openCursor(rn run, order int) (*cursor, error) {
	f, err := os.Open(rn.path)
	if err != nil {
		return nil, &SpillError{Op: "open run file", Path: rn.path, Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, &SpillError{Op: "stat run file", Path: rn.path, Err: err}
	}
	return &cursor{
		order:     order,
		path:      rn.path,
		f:         f,
		br:        bufio.NewReaderSize(f, s.readBufferSize()),
		size:      st.Size(),
		remaining: rn.records,
	}, nil
}

func (c *cursor) close() {
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
}

func (c *cursor) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrCorruptRun, c.path, fmt.Sprintf(format, args...))
}

// next loads the cursor's next record; false at the end of its input.
func (c *cursor) next(s *Sorter) (bool, error) {
	if c.mem != nil {
		if c.pos >= len(s.refs) {
			return false, nil
		}
		c.rec = s.rec(s.refs[c.pos])
		c.pos++
		c.key = s.keyOf(c.rec)
		return true, nil
	}
	if c.remaining == 0 {
		switch _, err := c.br.ReadByte(); {
		case err == nil:
			return false, c.corrupt("data after the last of its records")
		case !errors.Is(err, io.EOF):
			return false, &SpillError{Op: "read run file", Path: c.path, Err: err}
		}
		return false, nil
	}
	n, err := binary.ReadUvarint(c.br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, c.corrupt("truncated with %d records left", c.remaining)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return false, &SpillError{Op: "read run file", Path: c.path, Err: err}
		}
		return false, c.corrupt("bad record length: %v", err)
	}
	if n > uint64(c.size) {
		return false, c.corrupt("record length %d exceeds the file size %d", n, c.size)
	}
	if uint64(cap(c.buf)) < n {
		c.buf = make([]byte, n)
	}
	c.rec = c.buf[:n:n]
	if _, err := io.ReadFull(c.br, c.rec); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, c.corrupt("truncated inside a record with %d records left", c.remaining)
		}
		return false, &SpillError{Op: "read run file", Path: c.path, Err: err}
	}
	c.remaining--
	c.key = s.keyOf(c.rec)
	return true, nil
}

// mergeHeap orders cursors by (key, arrival order).
type mergeHeap []*cursor

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].key, h[j].key); c != 0 {
		return c < 0
	}
	return h[i].order < h[j].order
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}

// merge streams the union of the sorted cursors to out, in order.
func (s *Sorter) merge(ctx context.Context, cursors []*cursor, out func(rec []byte) error) error {
	h := make(mergeHeap, 0, len(cursors))
	for _, c := range cursors {
		ok, err := c.next(s)
		if err != nil {
			return err
		}
		if ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for i := 0; len(h) > 0; i++ {
		if i%ctxCheckEvery == 0 {
			if err := context.Cause(ctx); err != nil {
				return fmt.Errorf("extsort: sort canceled: %w", err)
			}
		}
		top := h[0]
		if err := out(top.rec); err != nil {
			return err
		}
		ok, err := top.next(s)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}
