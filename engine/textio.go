package engine

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
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
	br := bufio.NewReaderSize(r, 1<<20)
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
			// range. Skip to the start of the next line.
			skipped, err := skipLine(br)
			pos += skipped
			if err == io.EOF {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
		}
	}
	end := off + n
	var count int64
	var long []byte // accumulates a line longer than the buffer
	for pos < end {
		if count&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return count, err
		}
		if len(line) == 0 { // EOF
			return count, nil
		}
		pos += int64(len(line))
		line = trimEOL(line)
		emit(string(line))
		count++
		if err == io.EOF {
			return count, nil
		}
	}
	return count, nil
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

// skipLine consumes bytes through the next '\n' and returns how many.
func skipLine(br *bufio.Reader) (int64, error) {
	var n int64
	for {
		b, err := br.ReadSlice('\n')
		n += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return n, err
	}
}
