package coder

import (
	"math"
	"reflect"
)

// KeyFor returns the coder of T used for shuffle keys, which are grouped
// and partitioned by their encoding: For[T], except that floating-point
// values, at any depth of a struct or array key, are normalized first so
// that keys Go's == finds equal encode equally. -0 encodes as +0 (one
// group, as in a Go map), and every NaN as one canonical NaN: all NaN keys
// form one group, where a Go map would keep each NaN apart (a group per
// NaN cannot be formed across workers; SQL and Spark group NaNs together
// too). Values reached through pointers and types with their own binary
// or JSON encoding are encoded as they are.
func KeyFor[T any]() Coder[T] {
	c := For[T]()
	t := reflect.TypeFor[T]()
	if !hasFloat(t, map[reflect.Type]bool{}) {
		return c
	}
	switch t.Kind() {
	case reflect.Float64, reflect.Float32:
		return floatKey[T]{c}
	}
	return reflectKey[T]{c}
}

// hasFloat reports whether t holds floats that normalize reaches.
func hasFloat(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if custom(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return hasFloat(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.IsExported() && hasFloat(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// custom reports whether t encodes itself (For does not walk its fields).
func custom(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return (pt.Implements(binMarshaler) && pt.Implements(binUnmarshaler)) || pt.Implements(jsonMarshaler)
}

func normFloat(f float64) float64 {
	switch {
	case f == 0:
		return 0
	case f != f:
		return math.NaN()
	}
	return f
}

type floatKey[T any] struct{ c Coder[T] }

func (k floatKey[T]) Append(buf []byte, v T) []byte {
	rv := reflect.ValueOf(&v).Elem()
	rv.SetFloat(normFloat(rv.Float()))
	return k.c.Append(buf, v)
}

func (k floatKey[T]) Decode(b []byte) (T, int, error) { return k.c.Decode(b) }

type reflectKey[T any] struct{ c Coder[T] }

func (k reflectKey[T]) Append(buf []byte, v T) []byte {
	normalize(reflect.ValueOf(&v).Elem()) // v is a copy: keys are comparable, so hold no slices or maps
	return k.c.Append(buf, v)
}

func (k reflectKey[T]) Decode(b []byte) (T, int, error) { return k.c.Decode(b) }

// normalize normalizes the floats of the addressable value v in place.
func normalize(v reflect.Value) {
	if custom(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		v.SetFloat(normFloat(v.Float()))
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	}
}
