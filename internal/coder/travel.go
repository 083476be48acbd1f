package coder

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"
)

// A configuration value (a combiner, a MapWith parameter, an Iterate
// parameter) reaches a worker as its JSON encoding, and the arguments and
// state of a user-defined shared object travel gob-encoded. Both encodings
// skip what they cannot see — unexported fields, fields tagged "-", and for
// gob function and channel fields — without an error, so a value with such
// state would arrive on a worker different from the value the program
// built. CheckJSON and CheckGob find that state from the type alone, before
// anything runs; RoundTripJSON checks a value.

var (
	gobEncoder    = reflect.TypeFor[gob.GobEncoder]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// CheckJSON reports the first part of t that a JSON round trip loses or
// cannot encode, naming the type, the field and the fix; nil if every
// field that holds state travels. Types with their own MarshalJSON or
// MarshalText are trusted (RoundTripJSON checks their values).
func CheckJSON(t reflect.Type) error {
	return checkTravel(t, jsonRules, map[reflect.Type]bool{})
}

// CheckGob is CheckJSON for encoding/gob, the encoding of shared objects'
// state and method arguments. Types with GobEncode or MarshalBinary are
// trusted.
func CheckGob(t reflect.Type) error {
	return checkTravel(t, gobRules, map[reflect.Type]bool{})
}

type travelRules struct {
	name       string
	custom     func(reflect.Type) bool // the type encodes itself
	skipTag    func(reflect.StructField) bool
	interfaces bool // interface values travel (gob, with gob.Register)
	complex    bool
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

var jsonRules = travelRules{
	name: "JSON",
	custom: func(t reflect.Type) bool {
		return implements(t, jsonMarshaler) || implements(t, textMarshaler)
	},
	skipTag: func(f reflect.StructField) bool { return f.Tag.Get("json") == "-" },
}

var gobRules = travelRules{
	name: "gob",
	custom: func(t reflect.Type) bool {
		return implements(t, gobEncoder) || implements(t, binMarshaler)
	},
	skipTag:    func(reflect.StructField) bool { return false },
	interfaces: true,
	complex:    true,
}

func checkTravel(t reflect.Type, r travelRules, seen map[reflect.Type]bool) error {
	if t == nil || seen[t] {
		return nil
	}
	seen[t] = true
	if r.custom(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkTravel(t.Elem(), r, seen)
	case reflect.Map:
		if err := checkTravel(t.Key(), r, seen); err != nil {
			return err
		}
		return checkTravel(t.Elem(), r, seen)
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fmt.Errorf("%s is a %s, which %s cannot carry to another process", typeName(t), t.Kind(), r.name)
	case reflect.Complex64, reflect.Complex128:
		if !r.complex {
			return fmt.Errorf("%s is a complex number, which %s cannot carry", typeName(t), r.name)
		}
	case reflect.Interface:
		if !r.interfaces {
			return fmt.Errorf("%s is an interface type, whose value %s cannot rebuild; use a concrete type", typeName(t), r.name)
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type.Size() == 0 {
				continue // holds no state (struct{}, [0]func())
			}
			if !f.IsExported() && !(f.Anonymous && r.name == "JSON" && underStruct(f.Type)) {
				return fmt.Errorf("%s has unexported field %s (%s), which %s does not carry to workers: "+
					"export the field, or compute the value inside the function", typeName(t), f.Name, f.Type, r.name)
			}
			if r.skipTag(f) {
				return fmt.Errorf("%s field %s is tagged `json:\"-\"`, so it does not travel to workers: remove the tag", typeName(t), f.Name)
			}
			if err := checkTravel(f.Type, r, seen); err != nil {
				return fmt.Errorf("%s.%s: %w", typeName(t), f.Name, err)
			}
		}
	}
	return nil
}

// underStruct reports whether t is a struct or a pointer to one: encoding/json
// promotes the exported fields of such an embedded field even when its type
// is unexported.
func underStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// RoundTripJSON encodes v as JSON, decodes the encoding into a new value of
// v's dynamic type and checks that the two are deeply equal. It returns the
// encoding and the decoded value, which is what a worker rebuilds from the
// encoding: a caller that uses it instead of v computes exactly what its
// workers compute.
func RoundTripJSON(v any) ([]byte, any, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return []byte("null"), nil, nil
	}
	if err := CheckJSON(t); err != nil {
		return nil, nil, err
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("%s does not encode as JSON: %w", typeName(t), err)
	}
	back, err := DecodeJSON(t, enc)
	if err != nil {
		return nil, nil, err
	}
	if !reflect.DeepEqual(v, back) {
		again, _ := json.Marshal(back)
		return nil, nil, fmt.Errorf("%s does not survive its JSON encoding (%s decodes to a value that encodes as %s): "+
			"keep its configuration in plain exported fields", typeName(t), clip(enc), clip(again))
	}
	return enc, back, nil
}

// DecodeJSON decodes enc into a new value of type t.
func DecodeJSON(t reflect.Type, enc []byte) (any, error) {
	p := reflect.New(t)
	d := json.NewDecoder(bytes.NewReader(enc))
	if err := d.Decode(p.Interface()); err != nil {
		return nil, fmt.Errorf("decoding %s from JSON: %w", typeName(t), err)
	}
	return p.Elem().Interface(), nil
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}
