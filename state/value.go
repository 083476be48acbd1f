package state

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"math"
	"reflect"
)

// Arguments and results of user-defined methods are encoded one value per
// field with a leading tag byte. Scalars, strings and byte slices — the
// common case for counters, accumulators and images — use a compact
// encoding that costs no reflection-driven type exchange; everything else
// is gob, which carries Go's types exactly (int64 beyond 2^53, NaN,
// nested structs, maps) and decodes straight into the method's parameter
// type, so a mismatch is reported as ErrBadArgs rather than silently
// converted. A gob stream is self-describing, so a fresh encoder per value
// needs no shared state between client and server.
const (
	tagGob    = 'g'
	tagInt    = 'i' // varint, any signed integer kind
	tagUint   = 'u' // uvarint, any unsigned integer kind
	tagFloat  = 'f' // 8 bytes IEEE 754, float32 or float64
	tagString = 's'
	tagBytes  = 'b'
	tagBool   = 't'
)

// encodeValue encodes v. Named types with a scalar kind (type Celsius
// float64) use the compact encoding and decode into any type of that kind.
func encodeValue(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return nil, fmt.Errorf("nil value")
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint([]byte{tagInt}, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint([]byte{tagUint}, rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.BigEndian.AppendUint64([]byte{tagFloat}, math.Float64bits(rv.Float())), nil
	case reflect.String:
		return append([]byte{tagString}, rv.String()...), nil
	case reflect.Bool:
		if rv.Bool() {
			return []byte{tagBool, 1}, nil
		}
		return []byte{tagBool, 0}, nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 && rv.Type().Elem().PkgPath() == "" {
			return append([]byte{tagBytes}, rv.Bytes()...), nil
		}
	}
	var b bytes.Buffer
	b.WriteByte(tagGob)
	if err := gob.NewEncoder(&b).EncodeValue(rv); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func kindName(tag byte) string {
	switch tag {
	case tagInt:
		return "a signed integer"
	case tagUint:
		return "an unsigned integer"
	case tagFloat:
		return "a float"
	case tagString:
		return "a string"
	case tagBytes:
		return "a []byte"
	case tagBool:
		return "a bool"
	}
	return "a gob value"
}

// decodeValue decodes b into the addressable value dst.
func decodeValue(b []byte, dst reflect.Value) error {
	if len(b) == 0 {
		return fmt.Errorf("empty value")
	}
	tag, p := b[0], b[1:]
	if tag == tagGob {
		return gob.NewDecoder(bytes.NewReader(p)).DecodeValue(dst.Addr())
	}
	t := dst.Type()
	mismatch := func() error { return fmt.Errorf("got %s, want %v", kindName(tag), t) }
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		// An any parameter receives the value's natural Go type.
		var v any
		switch tag {
		case tagInt:
			x, n := binary.Varint(p)
			if n <= 0 {
				return fmt.Errorf("malformed integer")
			}
			v = x
		case tagUint:
			x, n := binary.Uvarint(p)
			if n <= 0 {
				return fmt.Errorf("malformed integer")
			}
			v = x
		case tagFloat:
			if len(p) != 8 {
				return fmt.Errorf("malformed float")
			}
			v = math.Float64frombits(binary.BigEndian.Uint64(p))
		case tagString:
			v = string(p)
		case tagBytes:
			v = append([]byte(nil), p...)
		case tagBool:
			v = len(p) == 1 && p[0] == 1
		default:
			return fmt.Errorf("unknown value tag %q", tag)
		}
		dst.Set(reflect.ValueOf(v))
		return nil
	}
	switch tag {
	case tagInt:
		x, n := binary.Varint(p)
		if n <= 0 || n != len(p) {
			return fmt.Errorf("malformed integer")
		}
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if dst.OverflowInt(x) {
				return fmt.Errorf("%d overflows %v", x, t)
			}
			dst.SetInt(x)
			return nil
		}
	case tagUint:
		x, n := binary.Uvarint(p)
		if n <= 0 || n != len(p) {
			return fmt.Errorf("malformed integer")
		}
		switch t.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if dst.OverflowUint(x) {
				return fmt.Errorf("%d overflows %v", x, t)
			}
			dst.SetUint(x)
			return nil
		}
	case tagFloat:
		if len(p) != 8 {
			return fmt.Errorf("malformed float")
		}
		if k := t.Kind(); k == reflect.Float32 || k == reflect.Float64 {
			dst.SetFloat(math.Float64frombits(binary.BigEndian.Uint64(p)))
			return nil
		}
	case tagString:
		if t.Kind() == reflect.String {
			dst.SetString(string(p))
			return nil
		}
	case tagBytes:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			dst.SetBytes(append([]byte(nil), p...))
			return nil
		}
	case tagBool:
		if len(p) != 1 || p[0] > 1 {
			return fmt.Errorf("malformed bool")
		}
		if t.Kind() == reflect.Bool {
			dst.SetBool(p[0] == 1)
			return nil
		}
	default:
		return fmt.Errorf("unknown value tag %q", tag)
	}
	return mismatch()
}
