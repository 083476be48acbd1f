package glider

import (
	"errors"
	"io"
	"strings"

	"github.com/galeproject/gale/glider/internal/wire"
	"github.com/galeproject/gale/shuffle"
)

// MaxRecord bounds the key or value of one record (64 MiB): a corrupt
// length cannot make a reader allocate more. It is shuffle.MaxRecord.
const MaxRecord = shuffle.MaxRecord

// AppendRecord appends one record to dst: the key's length (uvarint), the
// key, the value's length (uvarint), the value. Merge and sort actions
// consume and produce streams of such records: the shuffle's record
// framing (shuffle.AppendRecord), so a partition's bytes stream into an
// action unchanged.
func AppendRecord(dst, key, value []byte) []byte { return shuffle.AppendRecord(dst, key, value) }

// RecordReader reads records written by AppendRecord from a stream.
type RecordReader struct {
	rr *shuffle.RecordReader
}

// NewRecordReader returns a reader of the records in r.
func NewRecordReader(r io.Reader) *RecordReader {
	return &RecordReader{rr: shuffle.NewRecordReader(r)}
}

// Next returns the next record. The slices are valid until the next call.
// It returns io.EOF at a clean end of the stream, an error wrapping
// ErrBadRequest for a truncated or oversized record, and the stream's own
// error (such as ErrStreamBroken) if it fails.
func (rr *RecordReader) Next() (key, value []byte, err error) {
	key, value, err = rr.rr.Next()
	switch {
	case err == nil || err == io.EOF:
	case errors.Is(err, shuffle.ErrTruncated):
		err = errf(wire.CodeBadRequest, "glider: record %d is truncated", rr.rr.Records())
	case errors.Is(err, shuffle.ErrTooLarge):
		err = errf(wire.CodeBadRequest, "glider: %s", strings.TrimPrefix(err.Error(), shuffle.ErrTooLarge.Error()+": "))
	}
	return key, value, err
}

// Records returns the number of records read so far.
func (rr *RecordReader) Records() int64 { return rr.rr.Records() }
