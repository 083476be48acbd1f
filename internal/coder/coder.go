// Package coder encodes Gale records to bytes and back.
//
// Every element that crosses a stage boundary (a shuffle, a Collect, a
// FromSlice split) is encoded with the Coder of its Go type. Common types get
// fast hand-written binary coders: strings and byte slices (uvarint length
// then bytes), signed integers (zig-zag varints), unsigned integers
// (varints), floats (8 or 4 little-endian bytes), bool, and Gale's KV pairs
// (key then value). Structs whose exported fields are all of supported
// kinds, slices, arrays, maps and pointers of those are encoded field by
// field through reflection. Any other type falls back to
// encoding.BinaryMarshaler/BinaryUnmarshaler when the type implements them,
// and to encoding/json otherwise; the fallback is documented in
// docs/api.md.
//
// The encoding of a value is self-delimiting: a decoder given a buffer that
// holds several values back to back reads exactly one. Encodings are
// deterministic for every type except maps encoded through reflection and
// JSON, whose key order is sorted by encoding/json but not otherwise; keys of
// shuffles must therefore not be maps.
//
// This package may import only the standard library. It starts no
// goroutines and has no mutable state; Coders are safe for concurrent use.
package coder

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
)

// ErrCorrupt is returned (wrapped) when bytes cannot be decoded.
var ErrCorrupt = errors.New("coder: corrupt record")

// Coder encodes and decodes values of one type.
type Coder[T any] interface {
	// Append appends the encoding of v to buf and returns the extended buffer.
	Append(buf []byte, v T) []byte
	// Decode decodes one value from the front of b and returns it with the
	// number of bytes consumed.
	Decode(b []byte) (T, int, error)
}

// Provider is implemented by generic types (such as gale.KV) that build
// their coder from their type parameters' coders. For returns a Coder[T]
// for the implementing type T as an any.
type Provider interface {
	GaleCoder() any
}

// For returns the coder for T.
func For[T any]() Coder[T] {
	var zero T
	switch any(zero).(type) {
	case string:
		return any(stringCoder{}).(Coder[T])
	case []byte:
		return any(bytesCoder{}).(Coder[T])
	case int:
		return any(intCoder[int]{}).(Coder[T])
	case int64:
		return any(intCoder[int64]{}).(Coder[T])
	case int32:
		return any(intCoder[int32]{}).(Coder[T])
	case int16:
		return any(intCoder[int16]{}).(Coder[T])
	case int8:
		return any(intCoder[int8]{}).(Coder[T])
	case uint:
		return any(uintCoder[uint]{}).(Coder[T])
	case uint64:
		return any(uintCoder[uint64]{}).(Coder[T])
	case uint32:
		return any(uintCoder[uint32]{}).(Coder[T])
	case uint16:
		return any(uintCoder[uint16]{}).(Coder[T])
	case uint8:
		return any(uintCoder[uint8]{}).(Coder[T])
	case float64:
		return any(float64Coder{}).(Coder[T])
	case float32:
		return any(float32Coder{}).(Coder[T])
	case bool:
		return any(boolCoder{}).(Coder[T])
	case Provider:
		return any(zero).(Provider).GaleCoder().(Coder[T])
	}
	t := reflect.TypeFor[T]()
	return reflectCoder[T]{c: coderOf(t)}
}

// AppendBytes and ReadBytes are the length-prefixed byte strings of the
// hand-written coders (the same bytes as a shuffle record's field,
// shuffle.AppendField, which frames records; these encode values).

// AppendBytes appends a length-prefixed byte string.
func AppendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// ReadBytes reads a length-prefixed byte string from the front of b. The
// returned slice aliases b.
func ReadBytes(b []byte) ([]byte, int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, 0, fmt.Errorf("%w: bad length prefix", ErrCorrupt)
	}
	return b[k : k+int(n)], k + int(n), nil
}

type stringCoder struct{}

func (stringCoder) Append(buf []byte, v string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}
func (stringCoder) Decode(b []byte) (string, int, error) {
	s, n, err := ReadBytes(b)
	return string(s), n, err
}

type bytesCoder struct{}

func (bytesCoder) Append(buf []byte, v []byte) []byte { return AppendBytes(buf, v) }

// Decode returns a copy of the encoded bytes; nil and empty slices both
// decode as an empty, non-nil slice.
func (bytesCoder) Decode(b []byte) ([]byte, int, error) {
	s, n, err := ReadBytes(b)
	if err != nil {
		return nil, 0, err
	}
	return append([]byte{}, s...), n, nil
}

type signed interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}
type unsigned interface {
	~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

type intCoder[T signed] struct{}

func (intCoder[T]) Append(buf []byte, v T) []byte { return binary.AppendVarint(buf, int64(v)) }
func (intCoder[T]) Decode(b []byte) (T, int, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: bad varint", ErrCorrupt)
	}
	return T(v), n, nil
}

type uintCoder[T unsigned] struct{}

func (uintCoder[T]) Append(buf []byte, v T) []byte { return binary.AppendUvarint(buf, uint64(v)) }
func (uintCoder[T]) Decode(b []byte) (T, int, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: bad uvarint", ErrCorrupt)
	}
	return T(v), n, nil
}

type float64Coder struct{}

func (float64Coder) Append(buf []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
}
func (float64Coder) Decode(b []byte) (float64, int, error) {
	if len(b) < 8 {
		return 0, 0, fmt.Errorf("%w: short float64", ErrCorrupt)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), 8, nil
}

type float32Coder struct{}

func (float32Coder) Append(buf []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
}
func (float32Coder) Decode(b []byte) (float32, int, error) {
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("%w: short float32", ErrCorrupt)
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b)), 4, nil
}

type boolCoder struct{}

func (boolCoder) Append(buf []byte, v bool) []byte {
	if v {
		return append(buf, 1)
	}
	return append(buf, 0)
}
func (boolCoder) Decode(b []byte) (bool, int, error) {
	if len(b) < 1 || b[0] > 1 {
		return false, 0, fmt.Errorf("%w: bad bool", ErrCorrupt)
	}
	return b[0] == 1, 1, nil
}

// Pair is the coder of a two-field record built from its fields' coders;
// gale.KV uses it.
type Pair[A, B any, T any] struct {
	A     Coder[A]
	B     Coder[B]
	Split func(T) (A, B)
	Join  func(A, B) T
}

// Append encodes v's first field then its second.
func (p Pair[A, B, T]) Append(buf []byte, v T) []byte {
	a, b := p.Split(v)
	buf = p.A.Append(buf, a)
	return p.B.Append(buf, b)
}

// Decode decodes the two fields in order.
func (p Pair[A, B, T]) Decode(b []byte) (T, int, error) {
	var zero T
	a, n, err := p.A.Decode(b)
	if err != nil {
		return zero, 0, err
	}
	bv, m, err := p.B.Decode(b[n:])
	if err != nil {
		return zero, 0, err
	}
	return p.Join(a, bv), n + m, nil
}

// reflectCoder encodes any other type through a per-type codec tree built
// once by reflection.
type reflectCoder[T any] struct{ c *rcodec }

func (r reflectCoder[T]) Append(buf []byte, v T) []byte {
	return r.c.enc(buf, reflect.ValueOf(&v).Elem())
}
func (r reflectCoder[T]) Decode(b []byte) (T, int, error) {
	var v T
	n, err := r.c.dec(b, reflect.ValueOf(&v).Elem())
	return v, n, err
}

type rcodec struct {
	enc func(buf []byte, v reflect.Value) []byte
	dec func(b []byte, v reflect.Value) (int, error)
}

var (
	binMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// codecCache memoizes codec trees per type. It is a cache of pure functions
// of the type, not mutable program state.
var codecCache sync.Map // reflect.Type -> *rcodec

// coderOf returns the codec of t. Codecs are built privately and published
// to codecCache only once complete, so a goroutine never uses a codec that
// another is still filling in; two goroutines may build the same type at
// once, and either result serves.
func coderOf(t reflect.Type) *rcodec {
	if c, ok := codecCache.Load(t); ok {
		return c.(*rcodec)
	}
	b := builder{pending: map[reflect.Type]*rcodec{}}
	c := b.coderOf(t)
	for typ, built := range b.pending {
		codecCache.LoadOrStore(typ, built)
	}
	return c
}

// builder builds the codecs of one type tree. pending holds the codecs it
// has started, so recursive types terminate on their placeholder.
type builder struct {
	pending map[reflect.Type]*rcodec
}

func (b *builder) coderOf(t reflect.Type) *rcodec {
	if c, ok := codecCache.Load(t); ok {
		return c.(*rcodec)
	}
	if c, ok := b.pending[t]; ok {
		return c
	}
	c := &rcodec{}
	b.pending[t] = c
	b.build(t, c)
	return c
}

func (b *builder) build(t reflect.Type, c *rcodec) {
	if reflect.PointerTo(t).Implements(binMarshaler) && reflect.PointerTo(t).Implements(binUnmarshaler) {
		c.enc = func(buf []byte, v reflect.Value) []byte {
			b, err := v.Addr().Interface().(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				panic(fmt.Errorf("coder: %s.MarshalBinary: %w", t, err))
			}
			return AppendBytes(buf, b)
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			s, n, err := ReadBytes(b)
			if err != nil {
				return 0, err
			}
			if err := v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(s); err != nil {
				return 0, fmt.Errorf("%w: %s.UnmarshalBinary: %w", ErrCorrupt, t, err)
			}
			return n, nil
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		c.enc = func(buf []byte, v reflect.Value) []byte { return stringCoder{}.Append(buf, v.String()) }
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			s, n, err := ReadBytes(b)
			if err == nil {
				v.SetString(string(s))
			}
			return n, err
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.enc = func(buf []byte, v reflect.Value) []byte { return binary.AppendVarint(buf, v.Int()) }
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			x, n := binary.Varint(b)
			if n <= 0 {
				return 0, fmt.Errorf("%w: bad varint", ErrCorrupt)
			}
			v.SetInt(x)
			return n, nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		c.enc = func(buf []byte, v reflect.Value) []byte { return binary.AppendUvarint(buf, v.Uint()) }
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return 0, fmt.Errorf("%w: bad uvarint", ErrCorrupt)
			}
			v.SetUint(x)
			return n, nil
		}
	case reflect.Float32, reflect.Float64:
		c.enc = func(buf []byte, v reflect.Value) []byte {
			return binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Float()))
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			if len(b) < 8 {
				return 0, fmt.Errorf("%w: short float", ErrCorrupt)
			}
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
			return 8, nil
		}
	case reflect.Bool:
		c.enc = func(buf []byte, v reflect.Value) []byte { return boolCoder{}.Append(buf, v.Bool()) }
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			x, n, err := boolCoder{}.Decode(b)
			if err == nil {
				v.SetBool(x)
			}
			return n, err
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			c.enc = func(buf []byte, v reflect.Value) []byte { return AppendBytes(buf, v.Bytes()) }
			c.dec = func(b []byte, v reflect.Value) (int, error) {
				s, n, err := ReadBytes(b)
				if err == nil {
					v.SetBytes(append([]byte(nil), s...))
				}
				return n, err
			}
			return
		}
		ec := b.coderOf(t.Elem())
		c.enc = func(buf []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(buf, 0)
			}
			buf = binary.AppendUvarint(buf, uint64(v.Len())+1)
			for i := 0; i < v.Len(); i++ {
				buf = ec.enc(buf, v.Index(i))
			}
			return buf
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)) {
				return 0, fmt.Errorf("%w: bad slice length", ErrCorrupt)
			}
			if n == 0 {
				v.SetZero()
				return k, nil
			}
			l := int(n - 1)
			s := reflect.MakeSlice(t, l, l)
			off := k
			for i := 0; i < l; i++ {
				m, err := ec.dec(b[off:], s.Index(i))
				if err != nil {
					return 0, err
				}
				off += m
			}
			v.Set(s)
			return off, nil
		}
	case reflect.Array:
		ec := b.coderOf(t.Elem())
		c.enc = func(buf []byte, v reflect.Value) []byte {
			for i := 0; i < v.Len(); i++ {
				buf = ec.enc(buf, v.Index(i))
			}
			return buf
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			off := 0
			for i := 0; i < v.Len(); i++ {
				m, err := ec.dec(b[off:], v.Index(i))
				if err != nil {
					return 0, err
				}
				off += m
			}
			return off, nil
		}
	case reflect.Pointer:
		ec := b.coderOf(t.Elem())
		c.enc = func(buf []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(buf, 0)
			}
			return ec.enc(append(buf, 1), v.Elem())
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			if len(b) < 1 {
				return 0, fmt.Errorf("%w: short pointer", ErrCorrupt)
			}
			if b[0] == 0 {
				v.SetZero()
				return 1, nil
			}
			p := reflect.New(t.Elem())
			m, err := ec.dec(b[1:], p.Elem())
			if err != nil {
				return 0, err
			}
			v.Set(p)
			return m + 1, nil
		}
	case reflect.Map:
		kc, vc := b.coderOf(t.Key()), b.coderOf(t.Elem())
		c.enc = func(buf []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(buf, 0)
			}
			// Encode entries in the order of their encoded keys so equal
			// maps encode to equal bytes.
			type ent struct{ k, v []byte }
			ents := make([]ent, 0, v.Len())
			it := v.MapRange()
			for it.Next() {
				ents = append(ents, ent{kc.enc(nil, it.Key()), vc.enc(nil, it.Value())})
			}
			sort.Slice(ents, func(i, j int) bool { return string(ents[i].k) < string(ents[j].k) })
			buf = binary.AppendUvarint(buf, uint64(len(ents))+1)
			for _, e := range ents {
				buf = append(append(buf, e.k...), e.v...)
			}
			return buf
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)) {
				return 0, fmt.Errorf("%w: bad map length", ErrCorrupt)
			}
			if n == 0 {
				v.SetZero()
				return k, nil
			}
			m := reflect.MakeMapWithSize(t, int(n-1))
			off := k
			for i := 0; i < int(n-1); i++ {
				kv, vv := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
				a, err := kc.dec(b[off:], kv)
				if err != nil {
					return 0, err
				}
				off += a
				bn, err := vc.dec(b[off:], vv)
				if err != nil {
					return 0, err
				}
				off += bn
				m.SetMapIndex(kv, vv)
			}
			v.Set(m)
			return off, nil
		}
	case reflect.Struct:
		if !allExported(t) {
			jsonCodec(t, c)
			return
		}
		fcs := make([]*rcodec, t.NumField())
		for i := range fcs {
			fcs[i] = b.coderOf(t.Field(i).Type)
		}
		c.enc = func(buf []byte, v reflect.Value) []byte {
			for i, fc := range fcs {
				buf = fc.enc(buf, v.Field(i))
			}
			return buf
		}
		c.dec = func(b []byte, v reflect.Value) (int, error) {
			off := 0
			for i, fc := range fcs {
				m, err := fc.dec(b[off:], v.Field(i))
				if err != nil {
					return 0, err
				}
				off += m
			}
			return off, nil
		}
	default:
		jsonCodec(t, c)
	}
}

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// Check reports whether values of T can be encoded, naming the offending
// type and the fix when not.
func Check[T any]() error {
	var zero T
	if _, ok := any(zero).(Provider); ok {
		return nil
	}
	return check(reflect.TypeFor[T](), map[reflect.Type]bool{})
}

func check(t reflect.Type, seen map[reflect.Type]bool) error {
	if t == nil {
		return errors.New("coder: nil interface type cannot be encoded")
	}
	if seen[t] {
		return nil
	}
	seen[t] = true
	pt := reflect.PointerTo(t)
	if pt.Implements(binMarshaler) && pt.Implements(binUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return nil
	case reflect.Slice, reflect.Array, reflect.Pointer:
		return check(t.Elem(), seen)
	case reflect.Map:
		if err := check(t.Key(), seen); err != nil {
			return err
		}
		return check(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				if pt.Implements(jsonMarshaler) && pt.Implements(jsonUnmarshaler) {
					return nil
				}
				return fmt.Errorf("coder: type %s has unexported field %s and cannot travel between workers; "+
					"export its fields or implement encoding.BinaryMarshaler and BinaryUnmarshaler", typeName(t), f.Name)
			}
			if err := check(f.Type, seen); err != nil {
				return fmt.Errorf("coder: field %s.%s: %w", typeName(t), f.Name, err)
			}
		}
		return nil
	}
	if pt.Implements(jsonMarshaler) && pt.Implements(jsonUnmarshaler) {
		return nil
	}
	return fmt.Errorf("coder: type %s (%s) cannot travel between workers; "+
		"use a concrete type or implement encoding.BinaryMarshaler and BinaryUnmarshaler", typeName(t), t.Kind())
}

func allExported(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

// jsonCodec is the documented fallback for types that implement
// json.Marshaler and json.Unmarshaler but have no binary form. Check rejects
// every other type before a pipeline runs, so the panic below reports a
// Marshal failure of the value itself; the worker recovers it and fails the
// task with its message.
func jsonCodec(t reflect.Type, c *rcodec) {
	c.enc = func(buf []byte, v reflect.Value) []byte {
		b, err := json.Marshal(v.Interface())
		if err != nil {
			panic(fmt.Errorf("coder: cannot encode %s as JSON (implement encoding.BinaryMarshaler): %w", t, err))
		}
		return AppendBytes(buf, b)
	}
	c.dec = func(b []byte, v reflect.Value) (int, error) {
		s, n, err := ReadBytes(b)
		if err != nil {
			return 0, err
		}
		p := reflect.New(t)
		if err := json.Unmarshal(s, p.Interface()); err != nil {
			return 0, fmt.Errorf("%w: %s from JSON: %w", ErrCorrupt, t, err)
		}
		v.Set(p.Elem())
		return n, nil
	}
}

// TypeName returns a stable, package-qualified name for T, used to key
// registered operations. Two distinct types never share a name.
func TypeName[T any]() string { return typeName(reflect.TypeFor[T]()) }

func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}
