package shuffle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Shuffle object layout. A map task writes each shuffle's partitions as
// one object of the temporary store:
//
//	partition 0 | partition 1 | ... | partition N-1 | footer | footer length | magic
//
// The footer holds one uvarint length per partition; the footer length is
// 8 bytes little-endian; the magic is "GALESHF" followed by the layout's
// version byte, '1'. Readers take the partition ranges from the producing
// task's result (Ranges) and never need the footer; it makes objects
// self-describing for tools, recovery and tests (ParseFooter). Every
// shuffle object — the engine's and the Beam worker's — has this layout.
const (
	// Magic starts the last TrailerSize-8 bytes of every shuffle object.
	Magic = "GALESHF"
	// Version is the layout's version byte, written after Magic.
	Version byte = '1'
	// TrailerSize is the size of the fixed end of an object: the footer
	// length and the magic with its version byte.
	TrailerSize = 8 + len(Magic) + 1
)

// Range is one partition's bytes in a shuffle object. Records is kept for
// descriptors' sake (it is always 0 in objects written today).
type Range struct {
	Off     int64 `json:"off"`
	Len     int64 `json:"len"`
	Records int64 `json:"records"`
}

// Segment is a byte range of a shuffle object a reduce task reads: one
// partition of one map output, or (coalesced) several contiguous ones.
type Segment struct {
	Key     string `json:"key"`
	Off     int64  `json:"off"`
	Len     int64  `json:"len"`
	Records int64  `json:"records"`
}

// Object is a shuffle object ready to be written: the partitions and the
// footer describing them. It holds the partitions, never copies them.
type Object struct {
	parts  [][]byte
	footer []byte
	// Ranges are the partitions' places in the object, in order.
	Ranges []Range
}

// NewObject lays out parts as one shuffle object.
func NewObject(parts [][]byte) *Object {
	o := &Object{parts: parts, Ranges: make([]Range, len(parts))}
	var off int64
	for i, p := range parts {
		o.Ranges[i] = Range{Off: off, Len: int64(len(p))}
		off += int64(len(p))
		o.footer = binary.AppendUvarint(o.footer, uint64(len(p)))
	}
	o.footer = binary.LittleEndian.AppendUint64(o.footer, uint64(len(o.footer)))
	o.footer = append(o.footer, Magic...)
	o.footer = append(o.footer, Version)
	return o
}

// Size returns the object's size in bytes, footer included.
func (o *Object) Size() int64 {
	n := int64(len(o.footer))
	for _, p := range o.parts {
		n += int64(len(p))
	}
	return n
}

// Reader returns a reader of the whole object. Each call returns a new
// reader from the start.
func (o *Object) Reader() io.Reader {
	rs := make([]io.Reader, 0, len(o.parts)+1)
	for _, p := range o.parts {
		rs = append(rs, bytes.NewReader(p))
	}
	return io.MultiReader(append(rs, bytes.NewReader(o.footer))...)
}

// Bytes returns the object as one slice (a copy), for tests and tools.
func (o *Object) Bytes() []byte {
	b := make([]byte, 0, o.Size())
	for _, p := range o.parts {
		b = append(b, p...)
	}
	return append(b, o.footer...)
}

// FooterLen returns the length of the footer that precedes the trailer
// (the object's last TrailerSize bytes), after checking the magic and the
// version: the first step of reading an object's partition ranges.
func FooterLen(trailer []byte) (int64, error) {
	if len(trailer) != TrailerSize {
		return 0, fmt.Errorf("shuffle: a shuffle object trailer is %d bytes, got %d", TrailerSize, len(trailer))
	}
	magic := trailer[8:]
	if string(magic[:len(Magic)]) != Magic {
		return 0, fmt.Errorf("shuffle: not a shuffle object (it ends in %q, not %q)", magic, Magic+string(Version))
	}
	if v := magic[len(Magic)]; v != Version {
		return 0, fmt.Errorf("shuffle: shuffle object layout version %q, this build reads %q; "+
			"read it with the Gale version that wrote it", v, Version)
	}
	n := binary.LittleEndian.Uint64(trailer[:8])
	if n > 1<<40 {
		return 0, fmt.Errorf("shuffle: shuffle object footer of %d bytes is corrupt", n)
	}
	return int64(n), nil
}

// ParseFooter returns the partition ranges of a shuffle object of size
// bytes whose footer and trailer (its last FooterLen+TrailerSize bytes)
// are tail.
func ParseFooter(tail []byte, size int64) ([]Range, error) {
	if len(tail) < TrailerSize {
		return nil, fmt.Errorf("shuffle: a shuffle object of %d bytes is shorter than its %d-byte trailer", len(tail), TrailerSize)
	}
	n, err := FooterLen(tail[len(tail)-TrailerSize:])
	if err != nil {
		return nil, err
	}
	if int64(len(tail)) != n+int64(TrailerSize) {
		return nil, fmt.Errorf("shuffle: footer of %d bytes, got %d bytes before the trailer", n, len(tail)-TrailerSize)
	}
	footer := tail[:n]
	data := size - n - int64(TrailerSize)
	var rs []Range
	var off int64
	for len(footer) > 0 {
		l, k := binary.Uvarint(footer)
		if k <= 0 {
			return nil, fmt.Errorf("shuffle: corrupt footer after partition %d", len(rs))
		}
		footer = footer[k:]
		rs = append(rs, Range{Off: off, Len: int64(l)})
		off += int64(l)
		if off > data || off < 0 {
			return nil, fmt.Errorf("shuffle: footer's partitions end at byte %d, past the %d data bytes", off, data)
		}
	}
	if off != data {
		return nil, fmt.Errorf("shuffle: footer's partitions hold %d bytes, the object %d", off, data)
	}
	return rs, nil
}
