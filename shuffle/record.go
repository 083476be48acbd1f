package shuffle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Record framing. A partition's bytes are a sequence of records, and a
// record is a sequence of fields, each its length as a uvarint then its
// bytes. Keyed shuffles (and Glider's merge and sort actions) write
// two-field records, key then value (AppendRecord); the Beam worker's edges
// write one field (a whole element) or three (key, window, value). Records
// are self-delimiting, so partitions written by different tasks can be
// concatenated and read as one.

// MaxRecord bounds one field of a record read from a stream (64 MiB): a
// corrupt length cannot make a reader allocate more.
const MaxRecord = 64 << 20

// ErrTruncated means a record ends before its declared length.
var ErrTruncated = errors.New("shuffle: truncated record")

// ErrTooLarge means a streamed record's field is longer than MaxRecord.
var ErrTooLarge = errors.New("shuffle: record field too large")

// AppendField appends one field to dst: len(f) as a uvarint, then f.
func AppendField(dst, f []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	return append(dst, f...)
}

// ReadField returns the field at the start of b and the bytes after it.
// field aliases b. A field cut short is ErrTruncated.
func ReadField(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, ErrTruncated
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// AppendRecord appends the two-field record (key, value) to dst.
func AppendRecord(dst, key, value []byte) []byte {
	return AppendField(AppendField(dst, key), value)
}

// ReadRecord returns the two-field record at the start of b and the bytes
// after it. key and value alias b.
func ReadRecord(b []byte) (key, value, rest []byte, err error) {
	if key, rest, err = ReadField(b); err != nil {
		return nil, nil, nil, err
	}
	if value, rest, err = ReadField(rest); err != nil {
		return nil, nil, nil, err
	}
	return key, value, rest, nil
}

// RecordReader reads two-field records (AppendRecord) from a stream.
type RecordReader struct {
	r        *bufio.Reader
	key, val []byte
	n        int64
}

// NewRecordReader returns a reader of the records in r.
func NewRecordReader(r io.Reader) *RecordReader {
	return &RecordReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// Next returns the next record. The slices are valid until the next call.
// It returns io.EOF at a clean end of the stream, an error wrapping
// ErrTruncated or ErrTooLarge for a record cut short or a field longer
// than MaxRecord, and the stream's own error if it fails.
func (rr *RecordReader) Next() (key, value []byte, err error) {
	// Fast path: a record wholly in the buffer is returned in place,
	// without copying (the slices stay valid until the buffer is refilled,
	// which only the next call does).
	if rr.r.Buffered() == 0 {
		if _, err := rr.r.Peek(1); err != nil && rr.r.Buffered() == 0 {
			if err == io.EOF {
				return nil, nil, io.EOF
			}
			return nil, nil, rr.wrap(err)
		}
	}
	if buf, _ := rr.r.Peek(rr.r.Buffered()); len(buf) > 0 {
		klen, n1 := binary.Uvarint(buf)
		if n1 > 0 && klen <= uint64(len(buf)-n1) {
			rest := buf[n1+int(klen):]
			vlen, n2 := binary.Uvarint(rest)
			if n2 > 0 && vlen <= uint64(len(rest)-n2) {
				key, value = buf[n1:n1+int(klen)], rest[n2:n2+int(vlen)]
				_, _ = rr.r.Discard(n1 + int(klen) + n2 + int(vlen)) // buffered: cannot fail
				rr.n++
				return key, value, nil
			}
		}
	}
	klen, err := binary.ReadUvarint(rr.r)
	if err != nil {
		if err == io.EOF {
			return nil, nil, io.EOF
		}
		return nil, nil, rr.wrap(err)
	}
	if rr.key, err = rr.field(klen, rr.key); err != nil {
		return nil, nil, err
	}
	vlen, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return nil, nil, rr.wrap(err)
	}
	if rr.val, err = rr.field(vlen, rr.val); err != nil {
		return nil, nil, err
	}
	rr.n++
	return rr.key, rr.val, nil
}

func (rr *RecordReader) field(n uint64, buf []byte) ([]byte, error) {
	if n > MaxRecord {
		return nil, fmt.Errorf("%w: record %d: field of %d bytes exceeds %d (not a record stream?)", ErrTooLarge, rr.n, n, MaxRecord)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(rr.r, buf); err != nil {
		return nil, rr.wrap(err)
	}
	return buf, nil
}

func (rr *RecordReader) wrap(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: record %d", ErrTruncated, rr.n)
	}
	return err
}

// Records returns the number of records read so far.
func (rr *RecordReader) Records() int64 { return rr.n }
