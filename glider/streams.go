package glider

import (
	"context"
	"fmt"
	"io"

	"github.com/galeproject/gale/glider/internal/wire"
)

// The streams below keep the context they were opened with: io.Reader and
// io.Writer take none, and the context governs the whole stream (as
// exec.CommandContext does for a process). Cancelling it fails the
// stream's next operation.

// FileWriter writes a new file. Data is cut into chunks (at most a block
// each) sent straight to the storage servers as pipelined requests, up to
// the client's window in flight. The file becomes visible only when Close
// succeeds; Abort, a failed Close, or the client going away leaves no
// node behind.
type FileWriter struct {
	c         *Client
	ctx       context.Context
	path      string
	handle    uint64
	blockSize int
	chunk     int

	buf    []byte
	free   []wire.Block // allocated, not yet written
	cur    *wire.Block  // block being filled
	curOff int
	lens   []uint64 // bytes per used block
	size   int64
	allocN int
	pipe   pipeline
	err    error
	done   bool
}

// Create opens a writer for a new file at path in storage class class (""
// for ClassDRAM). The parent directory must exist.
func (c *Client) Create(ctx context.Context, path, class string) (*FileWriter, error) {
	return c.create(ctx, path, class, 0)
}

// Replace opens a writer like Create, except that a file may already be
// at path: Close then replaces it in one step (the old file's blocks are
// freed, so a reader still reading it fails), and until then readers see
// the old file. A directory or action at path is not replaced.
func (c *Client) Replace(ctx context.Context, path, class string) (*FileWriter, error) {
	return c.create(ctx, path, class, wire.FlagReplace)
}

func (c *Client) create(ctx context.Context, path, class string, flags uint8) (*FileWriter, error) {
	r, err := c.metaCall(ctx, &wire.Request{Op: wire.OpCreateFile, Path: path, Class: class, Flags: flags})
	if err != nil {
		return nil, err
	}
	bs := int(r.B)
	if bs <= 0 {
		return nil, fmt.Errorf("%w: create %s: block size %d", ErrInternal, path, bs)
	}
	chunk := min(c.cfg.ChunkSize, bs)
	return &FileWriter{c: c, ctx: ctx, path: path, handle: r.A, blockSize: bs, chunk: chunk, allocN: 1}, nil
}

// Write buffers p and sends every full chunk.
func (w *FileWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("%w: write to %s after Close", ErrClosed, w.path)
	}
	n := 0
	for len(p) > 0 {
		room := w.room()
		if len(w.buf) == 0 && len(p) >= room {
			// A whole chunk straight from the caller's slice: the frame
			// is written to the socket before send returns.
			if err := w.send(p[:room]); err != nil {
				return n, err
			}
			p, n = p[room:], n+room
			continue
		}
		k := min(room-len(w.buf), len(p))
		if w.buf == nil {
			w.buf = make([]byte, 0, w.chunk)
		}
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == room {
			if err := w.send(w.buf); err != nil {
				return n, err
			}
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

// room is the size of the next chunk: a chunk never crosses a block end.
func (w *FileWriter) room() int {
	if w.cur == nil || w.curOff == w.blockSize {
		return w.chunk
	}
	return min(w.chunk, w.blockSize-w.curOff)
}

// send writes one chunk to the current block, moving to the next block
// (allocating a batch when needed) when the current one is full.
func (w *FileWriter) send(data []byte) error {
	if w.cur == nil || w.curOff == w.blockSize {
		if len(w.free) == 0 {
			r, err := w.c.metaCall(w.ctx, &wire.Request{Op: wire.OpAlloc, A: w.handle, B: uint64(w.allocN)})
			if err != nil {
				return w.fail(err)
			}
			w.free = r.Blocks
			w.allocN = min(w.allocN*2, 64)
		}
		b := w.free[0]
		w.free = w.free[1:]
		w.cur, w.curOff = &b, 0
		w.lens = append(w.lens, 0)
	}
	d, err := w.c.dataConn(w.ctx, w.cur.Addr)
	if err != nil {
		return w.fail(err)
	}
	call, err := d.start(&wire.Request{Op: wire.OpWriteBlock, A: w.cur.ID, B: uint64(w.curOff), Data: data})
	if err != nil {
		return w.fail(err)
	}
	w.pipe.push(call, len(data))
	w.curOff += len(data)
	w.lens[len(w.lens)-1] += uint64(len(data))
	w.size += int64(len(data))
	for w.pipe.len() >= w.c.cfg.Window {
		if _, _, err := w.pipe.pop(w.ctx); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *FileWriter) fail(err error) error {
	if w.err == nil {
		w.err = streamErr("write", w.path, err)
		w.abort()
	}
	return w.err
}

func (w *FileWriter) abort() {
	// Best effort with a fresh context: the stream's own may be the reason
	// for aborting. Chunks in flight are waited for first, so the blocks
	// are freed after they were written (storage servers also refuse
	// writes to freed blocks). If the request cannot be sent the metadata
	// server still drops the handle when this client disconnects.
	ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.WriteTimeout)
	defer cancel()
	for w.pipe.len() > 0 {
		_, _, _ = w.pipe.pop(ctx)
	}
	_, _ = w.c.metaCall(ctx, &wire.Request{Op: wire.OpAbort, A: w.handle})
}

// Abort abandons the file: nothing becomes visible and its blocks are
// freed.
func (w *FileWriter) Abort() {
	if w.done || w.err != nil {
		return
	}
	w.done = true
	w.fail(fmt.Errorf("%w: %s: writer aborted", ErrClosed, w.path))
}

// Close sends the rest, waits for every chunk to be stored and commits the
// file, which then becomes visible at its path.
func (w *FileWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return nil
	}
	w.done = true
	if len(w.buf) > 0 {
		if err := w.send(w.buf); err != nil {
			return err
		}
		w.buf = nil
	}
	for w.pipe.len() > 0 {
		if _, _, err := w.pipe.pop(w.ctx); err != nil {
			return w.fail(err)
		}
	}
	if _, err := w.c.metaCall(w.ctx, &wire.Request{Op: wire.OpCommit, A: w.handle, B: uint64(w.size), IDs: w.lens}); err != nil {
		return w.fail(err)
	}
	return nil
}

// Size returns the number of bytes written so far.
func (w *FileWriter) Size() int64 { return w.size + int64(len(w.buf)) }

// ChunkSize is the size of the chunks the writer sends: a Write of a whole
// chunk, while nothing is buffered, goes to the storage server without
// being copied.
func (w *FileWriter) ChunkSize() int { return w.chunk }

// FileReader reads a file. After one lookup it requests chunks straight
// from the storage servers, keeping up to the client's window in flight.
type FileReader struct {
	c      *Client
	ctx    context.Context
	node   wire.Node
	chunk  int
	blk    int // next block to request
	off    uint64
	pos    int64 // offset of the next byte Read returns
	pipe   pipeline
	cur    []byte
	err    error
	closed bool
}

// Open opens the file at path for reading.
func (c *Client) Open(ctx context.Context, path string) (*FileReader, error) {
	n, err := c.lookup(ctx, path)
	if err != nil {
		return nil, err
	}
	if n.Kind != wire.NodeFile {
		return nil, fmt.Errorf("%w: open %s: it is a %v, not a file", ErrWrongKind, path, NodeKind(n.Kind))
	}
	return &FileReader{c: c, ctx: ctx, node: n, chunk: c.cfg.ChunkSize}, nil
}

// Size returns the file's length.
func (r *FileReader) Size() int64 { return int64(r.node.Size) }

func (r *FileReader) fill() error {
	for r.pipe.len() < r.c.cfg.Window && r.blk < len(r.node.Blocks) {
		b := r.node.Blocks[r.blk]
		if r.off >= b.Len {
			r.blk, r.off = r.blk+1, 0
			continue
		}
		n := min(uint64(r.chunk), b.Len-r.off)
		d, err := r.c.dataConn(r.ctx, b.Addr)
		if err != nil {
			return err
		}
		call, err := d.start(&wire.Request{Op: wire.OpReadBlock, A: b.ID, B: r.off, C: n})
		if err != nil {
			return err
		}
		r.pipe.push(call, int(n))
		r.off += n
	}
	return nil
}

// Read reads the next bytes of the file.
func (r *FileReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("%w: read from %s after Close", ErrClosed, r.node.Path)
	}
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.fill(); err != nil {
			r.err = streamErr("read", r.node.Path, err)
			r.pipe.abandon()
			return 0, r.err
		}
		if r.pipe.len() == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		resp, want, err := r.pipe.pop(r.ctx)
		if err == nil && len(resp.Data) != want {
			err = fmt.Errorf("%w: read %s: got %d bytes of a %d-byte chunk", ErrDataLost, r.node.Path, len(resp.Data), want)
		}
		if err != nil {
			r.err = streamErr("read", r.node.Path, err)
			r.pipe.abandon()
			return 0, r.err
		}
		r.cur = resp.Data
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	r.pos += int64(n)
	return n, nil
}

// Seek implements io.Seeker: the next Read starts at the given offset
// (requests in flight for other offsets are abandoned). Offsets past the
// end read nothing.
func (r *FileReader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fmt.Errorf("%w: seek in %s after Close", ErrClosed, r.node.Path)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += int64(r.node.Size)
	default:
		return 0, fmt.Errorf("%w: seek in %s: whence %d", ErrBadRequest, r.node.Path, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("%w: seek in %s to negative offset %d", ErrBadRequest, r.node.Path, offset)
	}
	if r.err != nil && r.err != io.EOF {
		return 0, r.err
	}
	r.pipe.abandon()
	r.cur, r.err, r.pos = nil, nil, offset
	r.blk, r.off = len(r.node.Blocks), 0
	rest := uint64(offset)
	for i, b := range r.node.Blocks {
		if rest < b.Len {
			r.blk, r.off = i, rest
			break
		}
		rest -= b.Len
	}
	return offset, nil
}

// Close releases the reader; requests in flight are abandoned.
func (r *FileReader) Close() error {
	if !r.closed {
		r.closed = true
		r.pipe.abandon()
	}
	return nil
}

// ActionWriter streams data into an action's OnWrite. Chunks are sent as
// pipelined requests straight to the action's active server; each is
// acknowledged when the action consumed it. Close returns OnWrite's
// result; Abort (or the client going away) makes the action's reads fail
// with ErrStreamBroken instead of a short stream.
type ActionWriter struct {
	c     *Client
	ctx   context.Context
	path  string
	d     *conn
	sid   uint64
	chunk int
	buf   []byte
	pipe  pipeline
	err   error
	done  bool
}

// ActionWriter opens a write stream on the action at path.
func (c *Client) ActionWriter(ctx context.Context, path string) (*ActionWriter, error) {
	d, sid, err := c.openStream(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	return &ActionWriter{c: c, ctx: ctx, path: path, d: d, sid: sid, chunk: c.cfg.ChunkSize}, nil
}

func (c *Client) openStream(ctx context.Context, path string, flags uint8) (*conn, uint64, error) {
	n, err := c.lookup(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	if n.Kind != wire.NodeAction {
		return nil, 0, fmt.Errorf("%w: %s is a %v, not an action", ErrWrongKind, path, NodeKind(n.Kind))
	}
	d, err := c.dataConn(ctx, n.Addr)
	if err != nil {
		return nil, 0, err
	}
	call, err := d.start(&wire.Request{Op: wire.OpStreamOpen, A: n.ID, Flags: flags})
	if err != nil {
		return nil, 0, err
	}
	if _, err := call.wait(ctx); err != nil {
		return nil, 0, err
	}
	return d, call.id, nil
}

// Write buffers p and sends every full chunk. Whole chunks of a p of at
// least ChunkSize bytes are sent from p without being copied.
func (w *ActionWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("%w: write to %s after Close", ErrClosed, w.path)
	}
	n := 0
	if len(w.buf) > 0 && len(p) >= w.chunk {
		// A whole chunk or more: send what is buffered as a short chunk
		// (an action stream has no block boundaries to respect), so the
		// chunks of p go out without being copied.
		if err := w.send(w.buf); err != nil {
			return 0, err
		}
		w.buf = w.buf[:0]
	}
	for len(p) > 0 {
		if len(w.buf) == 0 && len(p) >= w.chunk {
			if err := w.send(p[:w.chunk]); err != nil {
				return n, err
			}
			p, n = p[w.chunk:], n+w.chunk
			continue
		}
		if w.buf == nil {
			w.buf = make([]byte, 0, w.chunk)
		}
		k := min(w.chunk-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == w.chunk {
			if err := w.send(w.buf); err != nil {
				return n, err
			}
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

func (w *ActionWriter) send(data []byte) error {
	call, err := w.d.start(&wire.Request{Op: wire.OpStreamData, A: w.sid, Data: data})
	if err != nil {
		return w.fail(err)
	}
	w.pipe.push(call, len(data))
	for w.pipe.len() >= w.c.cfg.Window {
		if _, _, err := w.pipe.pop(w.ctx); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *ActionWriter) fail(err error) error {
	if w.err == nil {
		w.err = streamErr("write", w.path, err)
		w.pipe.abandon()
		// Cut the stream so the action does not wait for data that will
		// never come; fire and forget.
		if call, e := w.d.start(&wire.Request{Op: wire.OpStreamAbort, A: w.sid}); e == nil {
			w.d.forget(call.id)
		}
	}
	return w.err
}

// Flush sends the buffered bytes now as a (short) chunk, without waiting
// for the action to consume them. Records streamed in small bursts reach
// the action sooner this way.
func (w *ActionWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("%w: flush of %s after Close", ErrClosed, w.path)
	}
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.send(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// Abort cuts the stream: the action's OnWrite sees ErrStreamBroken.
func (w *ActionWriter) Abort() {
	if w.done || w.err != nil {
		return
	}
	w.done = true
	w.fail(fmt.Errorf("%w: %s: writer aborted", ErrStreamBroken, w.path))
}

// Close sends the rest, ends the stream and returns the action's OnWrite
// result (an error wrapping ErrActionFailed if it failed or panicked).
func (w *ActionWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return nil
	}
	w.done = true
	if len(w.buf) > 0 {
		if err := w.send(w.buf); err != nil {
			return err
		}
		w.buf = nil
	}
	call, err := w.d.start(&wire.Request{Op: wire.OpStreamEnd, A: w.sid})
	if err != nil {
		return w.fail(err)
	}
	for w.pipe.len() > 0 {
		if _, _, err := w.pipe.pop(w.ctx); err != nil {
			w.d.forget(call.id)
			return w.fail(err)
		}
	}
	if _, err := call.wait(w.ctx); err != nil {
		w.err = streamErr("write", w.path, err)
		return w.err
	}
	return nil
}

// ActionReader streams an action's OnRead output, keeping up to the
// client's window of chunk requests in flight at its active server.
type ActionReader struct {
	c      *Client
	ctx    context.Context
	path   string
	d      *conn
	sid    uint64
	pipe   pipeline
	cur    []byte
	eof    bool // the server reported the end; ask no more
	err    error
	closed bool
}

// ActionReader opens a read stream on the action at path: its OnRead
// starts running (once it gets the action lock).
func (c *Client) ActionReader(ctx context.Context, path string) (*ActionReader, error) {
	d, sid, err := c.openStream(ctx, path, wire.FlagRead)
	if err != nil {
		return nil, err
	}
	return &ActionReader{c: c, ctx: ctx, path: path, d: d, sid: sid}, nil
}

// Read reads the next bytes of the action's output.
func (r *ActionReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("%w: read from %s after Close", ErrClosed, r.path)
	}
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		for !r.eof && r.pipe.len() < r.c.cfg.Window {
			call, err := r.d.start(&wire.Request{Op: wire.OpStreamRead, A: r.sid, C: uint64(r.c.cfg.ChunkSize)})
			if err != nil {
				r.err = streamErr("read", r.path, err)
				r.pipe.abandon()
				return 0, r.err
			}
			r.pipe.push(call, 0)
		}
		if r.pipe.len() == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		resp, _, err := r.pipe.pop(r.ctx)
		if err != nil {
			r.err = streamErr("read", r.path, err)
			r.pipe.abandon()
			return 0, r.err
		}
		if resp.Flags&wire.FlagEOF != 0 {
			r.eof = true
			r.pipe.abandon() // every later request answers EOF too
			continue
		}
		r.cur = resp.Data
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close releases the reader. Closing before the end cuts the stream: the
// action's writes to it fail.
func (r *ActionReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.pipe.abandon()
	if !r.eof && r.err == nil || (r.err != nil && r.err != io.EOF) {
		if call, err := r.d.start(&wire.Request{Op: wire.OpStreamAbort, A: r.sid}); err == nil {
			r.d.forget(call.id)
		}
	}
	return nil
}
