package gensort

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Summary describes a sequence of records, as valsort reports it.
type Summary struct {
	// Records is the number of whole records.
	Records int64
	// Checksum is the sum of the records' CRC-32s.
	Checksum Checksum
	// Duplicates counts records whose key equals the previous record's key.
	Duplicates int64
	// Unordered counts records whose key is below the previous record's key.
	Unordered int64
	// FirstUnordered is the index of the first such record, -1 if none.
	FirstUnordered int64
	// FirstKey and LastKey are the keys of the first and last records, nil
	// when there are none.
	FirstKey, LastKey []byte
}

// Validator checks records written to it; it is an io.Writer so it can sit
// at the end of a pipeline (for example the emit function of a sort). Writes
// may split records anywhere. The zero value is not ready: use NewValidator.
type Validator struct {
	sum      Summary
	prev     [KeySize]byte
	partial  [RecordSize]byte
	npartial int
	firstErr error
}

// NewValidator returns an empty Validator.
func NewValidator() *Validator {
	return &Validator{sum: Summary{FirstUnordered: -1}}
}

// Write checks the records in p. It never fails: problems are reported by
// Summary.
func (v *Validator) Write(p []byte) (int, error) {
	n := len(p)
	if v.npartial > 0 {
		k := copy(v.partial[v.npartial:], p)
		v.npartial += k
		p = p[k:]
		if v.npartial < RecordSize {
			return n, nil
		}
		v.record(v.partial[:])
		v.npartial = 0
	}
	for len(p) >= RecordSize {
		v.record(p[:RecordSize])
		p = p[RecordSize:]
	}
	v.npartial = copy(v.partial[:], p)
	return n, nil
}

func (v *Validator) record(rec []byte) {
	s := &v.sum
	s.Checksum = s.Checksum.Add(rec)
	key := rec[:KeySize]
	if s.Records == 0 {
		s.FirstKey = bytes.Clone(key)
	} else {
		switch c := bytes.Compare(v.prev[:], key); {
		case c == 0:
			s.Duplicates++
		case c > 0:
			if s.Unordered == 0 {
				s.FirstUnordered = s.Records
				v.firstErr = fmt.Errorf("%w: record %d (byte offset %d) has key %x, below key %x of the record before it",
					ErrUnordered, s.Records, s.Records*RecordSize, key, v.prev[:])
			}
			s.Unordered++
		}
	}
	copy(v.prev[:], key)
	s.Records++
}

// Summary returns the summary of the records written so far. The error wraps
// ErrTruncated if the bytes written end inside a record (it names the byte
// offset where that record starts), else ErrUnordered if some record is out
// of order (it names the first one's index and byte offset). The Summary is
// complete in both cases, so its Checksum can check unsorted input too.
func (v *Validator) Summary() (Summary, error) {
	s := v.sum
	if s.Records > 0 {
		s.LastKey = bytes.Clone(v.prev[:])
	}
	if v.npartial > 0 {
		off := s.Records * RecordSize
		return s, fmt.Errorf("%w at byte offset %d (record %d): only %d of %d bytes; the input size %d is not a multiple of %d",
			ErrTruncated, off, s.Records, v.npartial, RecordSize, off+int64(v.npartial), RecordSize)
	}
	if v.firstErr != nil {
		return s, fmt.Errorf("%w (%d unordered records in all)", v.firstErr, s.Unordered)
	}
	return s, nil
}

// Validate reads r to its end and returns the summary of its records, with
// the errors of Validator.Summary, or a read error.
func Validate(ctx context.Context, r io.Reader) (Summary, error) {
	v := NewValidator()
	buf := make([]byte, 10000*RecordSize)
	for {
		if err := context.Cause(ctx); err != nil {
			s, _ := v.Summary()
			return s, fmt.Errorf("gensort: validate canceled: %w", err)
		}
		n, err := r.Read(buf)
		v.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return v.Summary()
		}
		if err != nil {
			s, _ := v.Summary()
			return s, fmt.Errorf("gensort: read at byte offset %d: %w", s.Records*RecordSize+int64(v.npartial), err)
		}
	}
}

// Combine merges the summaries of consecutive parts of one sorted output, in
// order, as valsort -s does. The first key of each non-empty part must not be
// below the last key of the non-empty part before it; an equal key counts as
// a duplicate. The error wraps ErrUnordered and names the first part whose
// boundary or content is out of order; the combined Summary is complete
// anyway.
func Combine(parts ...Summary) (Summary, error) {
	out := Summary{FirstUnordered: -1}
	var firstErr error
	prevPart := -1
	for i, p := range parts {
		if p.Records == 0 {
			continue
		}
		if out.Records == 0 {
			out.FirstKey = bytes.Clone(p.FirstKey)
		} else {
			switch c := bytes.Compare(out.LastKey, p.FirstKey); {
			case c == 0:
				out.Duplicates++
			case c > 0:
				if out.Unordered == 0 {
					out.FirstUnordered = out.Records
					firstErr = fmt.Errorf("%w: part %d starts (record %d overall) with key %x, below the last key %x of part %d",
						ErrUnordered, i, out.Records, p.FirstKey, out.LastKey, prevPart)
				}
				out.Unordered++
			}
		}
		if p.Unordered > 0 && out.Unordered == 0 {
			out.FirstUnordered = out.Records + p.FirstUnordered
			firstErr = fmt.Errorf("%w: part %d is out of order at its record %d (record %d overall)",
				ErrUnordered, i, p.FirstUnordered, out.FirstUnordered)
		}
		out.Unordered += p.Unordered
		out.Records += p.Records
		out.Duplicates += p.Duplicates
		out.Checksum = out.Checksum.Plus(p.Checksum)
		out.LastKey = bytes.Clone(p.LastKey)
		prevPart = i
	}
	if firstErr != nil {
		return out, fmt.Errorf("%w (%d unordered records in all)", firstErr, out.Unordered)
	}
	return out, nil
}
