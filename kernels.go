package gale

import (
	"bufio"
	"context"
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"unsafe"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
)

// elemKernel is the element kernel of T.
type elemKernel[T any] struct{}

func (elemKernel[T]) Fanout(nexts []any) (any, error) {
	fs := make([]func(T), len(nexts))
	for i, n := range nexts {
		f, ok := n.(func(T))
		if !ok {
			return nil, fmt.Errorf("gale: fan-out of %s: child %d takes %T", coder.TypeName[T](), i, n)
		}
		fs[i] = f
	}
	switch len(fs) {
	case 1:
		return fs[0], nil
	case 2:
		a, b := fs[0], fs[1]
		return func(v T) { a(v); b(v) }, nil
	}
	return func(v T) {
		for _, f := range fs {
			f(v)
		}
	}, nil
}

func (elemKernel[T]) TextSink(w io.Writer) kernel.Sink {
	s := &textSink[T]{w: bufio.NewWriterSize(w, 256<<10), format: textFormatter[T]()}
	return s
}

func (elemKernel[T]) RecordSink(w io.Writer) kernel.Sink {
	return &recordSink[T]{w: bufio.NewWriterSize(w, 256<<10), c: coder.For[T]()}
}

func (elemKernel[T]) RawSink(w io.Writer) (kernel.Sink, error) {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.String:
	case reflect.Slice:
		if reflect.TypeFor[T]().Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("gale: raw output of %s: need strings or byte slices", coder.TypeName[T]())
		}
	default:
		return nil, fmt.Errorf("gale: raw output of %s: need strings or byte slices", coder.TypeName[T]())
	}
	raw := rawBytes[T]()
	return &textSink[T]{w: bufio.NewWriterSize(w, 256<<10), format: func(b []byte, v T) []byte { return append(b, raw.to(v)...) }, raw: true}, nil
}

func (elemKernel[T]) DecodeRecords(data []byte, next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: records of %s feed %T", coder.TypeName[T](), next)
	}
	c := coder.For[T]()
	var n int64
	for len(data) > 0 {
		v, k, err := c.Decode(data)
		if err != nil {
			return n, fmt.Errorf("gale: decoding record %d of %s: %w", n, coder.TypeName[T](), err)
		}
		data = data[k:]
		emit(v)
		n++
	}
	return n, nil
}

// textSink writes one line per element.
type textSink[T any] struct {
	raw     bool // no newline after each element
	w       *bufio.Writer
	format  func([]byte, T) []byte
	buf     []byte
	records int64
	bytes   int64
	err     error
}

func (s *textSink[T]) Emit() any {
	return func(v T) {
		s.buf = s.format(s.buf[:0], v)
		if !s.raw {
			s.buf = append(s.buf, '\n')
		}
		n, err := s.w.Write(s.buf)
		s.bytes += int64(n)
		s.records++
		if err != nil {
			panic(kernel.Abort{Err: fmt.Errorf("gale: writing text: %w", err)})
		}
	}
}
func (s *textSink[T]) Close() error   { return s.w.Flush() }
func (s *textSink[T]) Records() int64 { return s.records }
func (s *textSink[T]) Bytes() int64   { return s.bytes }

// recordSink writes encoded records back to back.
type recordSink[T any] struct {
	w       *bufio.Writer
	c       coder.Coder[T]
	buf     []byte
	records int64
	bytes   int64
}

func (s *recordSink[T]) Emit() any {
	return func(v T) {
		s.buf = s.c.Append(s.buf[:0], v)
		n, err := s.w.Write(s.buf)
		s.bytes += int64(n)
		s.records++
		if err != nil {
			panic(kernel.Abort{Err: fmt.Errorf("gale: writing records: %w", err)})
		}
	}
}
func (s *recordSink[T]) Close() error   { return s.w.Flush() }
func (s *recordSink[T]) Records() int64 { return s.records }
func (s *recordSink[T]) Bytes() int64   { return s.bytes }

// texter is implemented by generic types (KV) that format themselves.
type texter interface{ galeText() any }

// textFormatter returns how elements of T are written as text: strings and
// byte slices as they are, integers in decimal, floats in the shortest
// decimal form that reads back exactly (strconv 'g', -1), bools as true and
// false, KV as key, tab, value, and types with a String or MarshalText
// method through it. checkText refuses every other type when the pipeline
// is built, so the last case never formats a value with %v.
//
// The string and []byte cases reinterpret T through unsafe after checking
// that T is exactly that type: converting a generic T to an interface to
// switch on it would allocate for every element.
func textFormatter[T any]() func([]byte, T) []byte {
	var zero T
	switch any(zero).(type) {
	case string:
		return func(b []byte, v T) []byte { return append(b, *(*string)(unsafe.Pointer(&v))...) }
	case []byte:
		return func(b []byte, v T) []byte { return append(b, *(*[]byte)(unsafe.Pointer(&v))...) }
	case int64:
		return func(b []byte, v T) []byte { return strconv.AppendInt(b, *(*int64)(unsafe.Pointer(&v)), 10) }
	case int:
		return func(b []byte, v T) []byte { return strconv.AppendInt(b, int64(*(*int)(unsafe.Pointer(&v))), 10) }
	case float64:
		return func(b []byte, v T) []byte {
			return strconv.AppendFloat(b, *(*float64)(unsafe.Pointer(&v)), 'g', -1, 64)
		}
	case texter:
		return any(zero).(texter).galeText().(func([]byte, T) []byte)
	case fmt.Stringer:
		return func(b []byte, v T) []byte { return append(b, any(v).(fmt.Stringer).String()...) }
	case encoding.TextMarshaler:
		return func(b []byte, v T) []byte {
			text, err := any(v).(encoding.TextMarshaler).MarshalText()
			if err != nil {
				panic(kernel.Abort{Err: fmt.Errorf("gale: formatting a %s as text: %w", coder.TypeName[T](), err)})
			}
			return append(b, text...)
		}
	}
	t := reflect.TypeFor[T]()
	switch t.Kind() {
	case reflect.String:
		return func(b []byte, v T) []byte { return append(b, reflect.ValueOf(v).String()...) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(b []byte, v T) []byte { return strconv.AppendInt(b, reflect.ValueOf(v).Int(), 10) }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(b []byte, v T) []byte { return strconv.AppendUint(b, reflect.ValueOf(v).Uint(), 10) }
	case reflect.Float32, reflect.Float64:
		bits := t.Bits()
		return func(b []byte, v T) []byte { return strconv.AppendFloat(b, reflect.ValueOf(v).Float(), 'g', -1, bits) }
	case reflect.Bool:
		return func(b []byte, v T) []byte { return strconv.AppendBool(b, reflect.ValueOf(v).Bool()) }
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return func(b []byte, v T) []byte { return append(b, reflect.ValueOf(v).Bytes()...) }
		}
	}
	return func(b []byte, v T) []byte { return fmt.Append(b, v) } // refused by checkText
}

var (
	texterType        = reflect.TypeFor[texter]()
	stringerType      = reflect.TypeFor[fmt.Stringer]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// checkText reports why elements of t cannot be written as text by
// textFormatter, naming the type and the fix; nil if they can.
func checkText(t reflect.Type) error {
	switch {
	case t.Implements(texterType):
		for _, f := range []string{"Key", "Value"} {
			sf, _ := t.FieldByName(f)
			if err := checkText(sf.Type); err != nil {
				return err
			}
		}
		return nil
	case t.Implements(stringerType), t.Implements(textMarshalerType):
		return nil
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
	}
	return fmt.Errorf("elements of type %s have no text form: WriteText writes strings, byte slices, numbers, bools, "+
		"KVs of those and types with a String or MarshalText method; Map the elements to strings first, or give %s a String method",
		t, t)
}

// Narrow kernels.

type mapKernel[In, Out any] struct{ fn func(In) Out }

func (k mapKernel[In, Out]) Build(next any) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: map output %s feeds %T", coder.TypeName[Out](), next)
	}
	fn := k.fn
	return func(v In) { emit(fn(v)) }, nil
}

type flatMapKernel[In, Out any] struct{ fn func(In, func(Out)) }

func (k flatMapKernel[In, Out]) Build(next any) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: flat map output %s feeds %T", coder.TypeName[Out](), next)
	}
	fn := k.fn
	return func(v In) { fn(v, emit) }, nil
}

type filterKernel[T any] struct{ fn func(T) bool }

func (k filterKernel[T]) Build(next any) (any, error) {
	emit, ok := next.(func(T))
	if !ok {
		return nil, fmt.Errorf("gale: filter output %s feeds %T", coder.TypeName[T](), next)
	}
	fn := k.fn
	return func(v T) {
		if fn(v) {
			emit(v)
		}
	}, nil
}

type generatorKernel[T any] struct{ fn func(int64) T }

func (k generatorKernel[T]) Generate(ctx context.Context, lo, hi int64, next any) error {
	emit, ok := next.(func(T))
	if !ok {
		return fmt.Errorf("gale: generator output %s feeds %T", coder.TypeName[T](), next)
	}
	for i := lo; i < hi; i++ {
		if i&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		emit(k.fn(i))
	}
	return nil
}
