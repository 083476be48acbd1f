package state

import (
	"encoding/binary"
	"math"

	"github.com/galeproject/gale/state/internal/wire"
)

// Built-in objects encode integers as 8-byte big-endian two's complement,
// booleans as one byte, byte strings as they are, and lists as a uvarint
// count followed by uvarint-length-prefixed items. The encoding is fixed
// width where it can be so that the server decodes without allocating.

func encI64(v int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)) }

func decI64(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

func encBool(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

func decBool(b []byte) (bool, bool) {
	if len(b) != 1 || b[0] > 1 {
		return false, false
	}
	return b[0] == 1, true
}

func encList(items [][]byte) []byte {
	n := binary.MaxVarintLen64
	for _, it := range items {
		n += binary.MaxVarintLen64 + len(it)
	}
	out := binary.AppendUvarint(make([]byte, 0, n), uint64(len(items)))
	for _, it := range items {
		out = wire.AppendBytes(out, it)
	}
	return out
}

func decList(b []byte) ([][]byte, error) {
	d := wire.NewDecoder(b)
	n := d.Uvarint("list length")
	if d.Err() == nil && n > uint64(len(d.Rest())) {
		return nil, wire.ErrMalformed
	}
	out := make([][]byte, 0, n)
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		out = append(out, d.Bytes("list item"))
	}
	return out, d.Err()
}

// encOpt encodes an optional value: a presence byte then the value.
func encOpt(v []byte, ok bool) []byte {
	if !ok {
		return []byte{0}
	}
	out := make([]byte, 0, 1+len(v))
	out = append(out, 1)
	return append(out, v...)
}

func decOpt(b []byte) ([]byte, bool, bool) {
	if len(b) < 1 || b[0] > 1 {
		return nil, false, false
	}
	if b[0] == 0 {
		return nil, false, len(b) == 1
	}
	return b[1:], true, true
}

// encInit encodes an integer creation parameter.
func encInit(v int64) []byte { return binary.AppendVarint(nil, v) }

func decInit(b []byte) (int64, bool) {
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return 0, false
	}
	return v, true
}

func clampInt32(v int64) int64 { return int64(int32(v)) }

var _ = math.MaxInt64
