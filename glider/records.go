package glider

import (
	"bufio"
	"encoding/binary"
	"io"

	"github.com/galeproject/gale/glider/internal/wire"
)

// MaxRecord bounds the key or value of one record (64 MiB): a corrupt
// length cannot make a reader allocate more.
const MaxRecord = 64 << 20

// AppendRecord appends one record to dst: the key's length (uvarint), the
// key, the value's length (uvarint), the value. Merge and sort actions
// consume and produce streams of such records.
func AppendRecord(dst, key, value []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// RecordReader reads records written by AppendRecord from a stream.
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
// ErrBadRequest for a truncated or oversized record, and the stream's own
// error (such as ErrStreamBroken) if it fails.
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
		return nil, errf(wire.CodeBadRequest, "glider: record %d: field of %d bytes exceeds %d (not a record stream?)", rr.n, n, MaxRecord)
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
		return errf(wire.CodeBadRequest, "glider: record %d is truncated", rr.n)
	}
	return err
}

// Records returns the number of records read so far.
func (rr *RecordReader) Records() int64 { return rr.n }
