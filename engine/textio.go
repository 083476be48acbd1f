package engine

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// decompressor returns a reader of r's decompressed stream. Concatenated
// gzip members (as pigz and cat of .gz files write) are read as one
// stream, as gunzip does.
func decompressor(codec string, r io.Reader) (io.ReadCloser, error) {
	switch codec {
	case CompressionGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("not a gzip stream: %w", err)
		}
		return zr, nil
	case CompressionBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	case CompressionZstd:
		// One decoding goroutine: a task's CPU is one worker's.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("engine: unknown compression %q", codec)
}

// readLines reads the lines that start in the byte range [off, off+n) of
// a text object and calls emit with each, without its line terminator ("\n"
// or "\r\n"; a last line without "\n" loses a trailing "\r"). r must start at byte off-1 when off > 0 (at 0 otherwise): the
// byte before the range tells whether a line starts exactly at off. A line
// belongs to the range its first byte lies in, so every line of an object
// split into consecutive ranges is read exactly once, however long it is.
// It returns the number of lines emitted.
func readLines(ctx context.Context, r io.Reader, off, n int64, emit func(string)) (int64, error) {
	return readLinesMax(ctx, r, off, n, 0, emit)
}

// readLinesMax is readLines that refuses, as soon as it sees one, a line
// longer than maxLine bytes (a *LineTooLongError), before buffering the
// rest of it; 0 means no limit.
func readLinesMax(ctx context.Context, r io.Reader, off, n, maxLine int64, emit func(string)) (int64, error) {
	return readLinesOpt(ctx, r, off, n, maxLine, false, emit)
}

// readLinesOpt is readLinesMax; with borrow set, a line that fits the read
// buffer is emitted as a string over the buffer, valid only during the call
// (for a consumer that keeps nothing: kernel.LineBorrower).
func readLinesOpt(ctx context.Context, r io.Reader, off, n, maxLine int64, borrow bool, emit func(string)) (int64, error) {
	// A 1 MiB buffer, or less for a small range: a job of many small
	// chunks should not allocate a megabyte per task.
	size := int64(1 << 20)
	if n < size {
		size = max(n+1, 64<<10)
	}
	br := bufio.NewReaderSize(r, int(size))
	pos := off // offset of the next unread byte
	if off > 0 {
		prev, err := br.ReadByte()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if prev != '\n' {
			// The line at off began earlier: it belongs to the previous
			// range. Skip to the start of the next line, if one starts
			// in the range; a range inside one long line reads no further
			// than its end.
			skipped, found, err := skipLine(br, n)
			pos += skipped
			if err == io.EOF || (err == nil && !found) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
		}
	}
	end := off + n
	var count int64
	for pos < end {
		if count&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		line, err := br.ReadSlice('\n')
		owned := false // line is a fresh buffer that no one else refers to
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer accumulates in its own buffer,
			// which then becomes the emitted string without a copy.
			// The limit is checked before each append (with room for a
			// line end the final check trims), so a line over it never
			// grows a buffer past it.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if maxLine > 0 && int64(len(long)+len(line)) > maxLine+2 {
					return count, &LineTooLongError{Offset: pos, Limit: maxLine}
				}
				long = append(long, line...)
			}
			line, owned = long, true
		}
		if maxLine > 0 && int64(len(trimEOL(line))) > maxLine {
			return count, &LineTooLongError{Offset: pos, Limit: maxLine}
		}
		if err != nil && err != io.EOF {
			return count, err
		}
		if len(line) == 0 { // EOF
			return count, nil
		}
		pos += int64(len(line))
		line = trimEOL(line)
		if owned || borrow {
			emit(unsafe.String(unsafe.SliceData(line), len(line)))
		} else {
			emit(string(line))
		}
		count++
		if err == io.EOF {
			return count, nil
		}
	}
	return count, nil
}

// LineTooLongError reports a text line longer than a task may buffer.
type LineTooLongError struct {
	Offset int64 // where the line starts in its object
	Limit  int64 // the longest line allowed: the worker memory budget
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("the line at byte %d is longer than the worker memory budget of %d bytes, "+
		"and a task holds a whole line in memory: raise the budget above the longest line "+
		"(--worker-memory, gale.WorkerMemory) or break the line", e.Offset, e.Limit)
}

// trimEOL removes a line's terminator: "\n" or "\r\n", or, for the last
// line of an object, which may end without "\n", a trailing "\r".
func trimEOL(line []byte) []byte {
	if len(line) > 0 && line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line
}

// skipLine consumes bytes through the next '\n' and returns how many. It
// gives up (found false) after consuming limit bytes without one, having
// read ahead at most one read of the underlying reader.
func skipLine(br *bufio.Reader, limit int64) (n int64, found bool, err error) {
	for n < limit {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return n, false, err
			}
		}
		buf, _ := br.Peek(int(min(int64(br.Buffered()), limit-n)))
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			_, _ = br.Discard(i + 1)
			return n + int64(i) + 1, true, nil
		}
		_, _ = br.Discard(len(buf))
		n += int64(len(buf))
	}
	return n, false, nil
}

// borrowsLines reports whether the task's input feeds one shuffle writer
// and nothing else, a writer that keeps no part of the lines it is fed
// (kernel.LineBorrower): the reader may then lend it lines from its buffer.
func (t *task) borrowsLines() bool {
	if len(t.spec.Roots) != 1 || t.spec.Ops[t.spec.Roots[0]].Kind != planner.OpShuffleWrite {
		return false
	}
	for _, s := range t.shuffles {
		if s.op == t.spec.Roots[0] {
			_, ok := s.w.(kernel.LineBorrower)
			return ok
		}
	}
	return false
}
