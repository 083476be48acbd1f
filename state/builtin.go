package state

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"sort"
	"strings"

	"github.com/galeproject/gale/state/internal/wire"
)

// Names of the built-in object types.
const (
	TypeAtomicInt       = "AtomicInt"
	TypeAtomicLong      = "AtomicLong"
	TypeAtomicBoolean   = "AtomicBoolean"
	TypeAtomicByteArray = "AtomicByteArray"
	TypeCounter         = "Counter"
	TypeMap             = "Map"
	TypeList            = "List"
	TypeBlob            = "Blob"
	TypeCyclicBarrier   = "CyclicBarrier"
	TypeSemaphore       = "Semaphore"
	TypeFuture          = "Future"
	TypeCountDownLatch  = "CountDownLatch"
)

type builtinType struct {
	create       func(init []byte) (object, *status)
	coordination bool
}

// builtins is a constant table, filled at init and never modified.
var builtins map[string]builtinType

func init() {
	builtins = map[string]builtinType{
		TypeAtomicInt:       {create: func([]byte) (object, *status) { return &numObj{typ: TypeAtomicInt, bits32: true}, nil }},
		TypeAtomicLong:      {create: func([]byte) (object, *status) { return &numObj{typ: TypeAtomicLong}, nil }},
		TypeCounter:         {create: func([]byte) (object, *status) { return &numObj{typ: TypeCounter}, nil }},
		TypeAtomicBoolean:   {create: func([]byte) (object, *status) { return &boolObj{}, nil }},
		TypeAtomicByteArray: {create: newByteArray},
		TypeMap:             {create: func([]byte) (object, *status) { return &mapObj{m: map[string][]byte{}}, nil }},
		TypeList:            {create: func([]byte) (object, *status) { return &listObj{}, nil }},
		TypeBlob:            {create: func([]byte) (object, *status) { return &blobObj{}, nil }},
		TypeCyclicBarrier:   {create: newBarrier, coordination: true},
		TypeSemaphore:       {create: newSemaphore, coordination: true},
		TypeFuture:          {create: func([]byte) (object, *status) { return &futureObj{}, nil }, coordination: true},
		TypeCountDownLatch:  {create: newLatch, coordination: true},
	}
}

func unknownMethod(typ, m string, methods ...string) *status {
	sort.Strings(methods)
	return fail(wire.CodeUnknownMethod, "%s has no method %q (its methods: %s)", typ, m, strings.Join(methods, ", "))
}

func wantArgs(typ, m string, args [][]byte, n int) *status {
	if len(args) != n {
		return fail(wire.CodeBadArgs, "%s.%s takes %d argument(s), got %d", typ, m, n, len(args))
	}
	return nil
}

func argI64(typ, m string, args [][]byte, i int) (int64, *status) {
	v, ok := decI64(args[i])
	if !ok {
		return 0, fail(wire.CodeBadArgs, "%s.%s: argument %d must be an 8-byte integer, got %d bytes", typ, m, i+1, len(args[i]))
	}
	return v, nil
}

func argsI64(typ, m string, args [][]byte, n int) ([]int64, *status) {
	if st := wantArgs(typ, m, args, n); st != nil {
		return nil, st
	}
	out := make([]int64, n)
	for i := range out {
		v, st := argI64(typ, m, args, i)
		if st != nil {
			return nil, st
		}
		out[i] = v
	}
	return out, nil
}

func gobBytes(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func gobLoad(b []byte, v any) error { return gob.NewDecoder(bytes.NewReader(b)).Decode(v) }

// plain is embedded by objects that never block and have no creation
// parameters.
type plain struct{}

func (plain) cancel(*waiter) bool      { return false }
func (plain) checkInit([]byte) *status { return nil }

// numObj implements AtomicInt (32-bit, wrapping), AtomicLong and Counter.
type numObj struct {
	plain
	typ    string
	bits32 bool
	v      int64
}

func (o *numObj) norm(v int64) int64 {
	if o.bits32 {
		return clampInt32(v)
	}
	return v
}

func (o *numObj) readOnly(m string) bool { return m == "Get" }

// numArgs is the argument count of each numeric method (a constant table).
var numArgs = map[string]int{"Get": 0, "Set": 1, "GetAndSet": 1, "AddAndGet": 1, "GetAndAdd": 1,
	"IncrementAndGet": 0, "DecrementAndGet": 0, "GetAndIncrement": 0, "GetAndDecrement": 0,
	"CompareAndSet": 2, "Add": 1, "Increment": 0, "Reset": 0}

func (o *numObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	n, ok := numArgs[m]
	if o.typ == TypeCounter {
		ok = m == "Get" || m == "Add" || m == "Increment" || m == "Reset"
	} else {
		ok = ok && m != "Add" && m != "Increment" && m != "Reset"
	}
	if !ok {
		if o.typ == TypeCounter {
			return nil, unknownMethod(o.typ, m, "Get", "Add", "Increment", "Reset"), false
		}
		return nil, unknownMethod(o.typ, m, "Get", "Set", "GetAndSet", "AddAndGet", "GetAndAdd", "IncrementAndGet",
			"DecrementAndGet", "GetAndIncrement", "GetAndDecrement", "CompareAndSet"), false
	}
	a, st := argsI64(o.typ, m, args, n)
	if st != nil {
		return nil, st, false
	}
	old := o.v
	switch m {
	case "Get":
	case "Set":
		o.v = o.norm(a[0])
		return nil, nil, false
	case "GetAndSet":
		o.v = o.norm(a[0])
	case "AddAndGet", "Add":
		o.v = o.norm(o.v + a[0])
		return encI64(o.v), nil, false
	case "GetAndAdd":
		o.v = o.norm(o.v + a[0])
	case "IncrementAndGet", "Increment":
		o.v = o.norm(o.v + 1)
		return encI64(o.v), nil, false
	case "DecrementAndGet":
		o.v = o.norm(o.v - 1)
		return encI64(o.v), nil, false
	case "GetAndIncrement":
		o.v = o.norm(o.v + 1)
	case "GetAndDecrement":
		o.v = o.norm(o.v - 1)
	case "Reset":
		o.v = 0
	case "CompareAndSet":
		if o.v == a[0] {
			o.v = o.norm(a[1])
			return encBool(true), nil, false
		}
		return encBool(false), nil, false
	}
	return encI64(old), nil, false
}

func (o *numObj) marshal() ([]byte, error) { return encI64(o.v), nil }
func (o *numObj) unmarshal(b []byte) error {
	v, ok := decI64(b)
	if !ok {
		return fmt.Errorf("state: bad %s snapshot", o.typ)
	}
	o.v = v
	return nil
}

// boolObj implements AtomicBoolean.
type boolObj struct {
	plain
	v bool
}

func (o *boolObj) readOnly(m string) bool { return m == "Get" }

func (o *boolObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	n := map[string]int{"Get": 0, "Set": 1, "GetAndSet": 1, "CompareAndSet": 2}
	want, ok := n[m]
	if !ok {
		return nil, unknownMethod(TypeAtomicBoolean, m, "Get", "Set", "GetAndSet", "CompareAndSet"), false
	}
	if st := wantArgs(TypeAtomicBoolean, m, args, want); st != nil {
		return nil, st, false
	}
	a := make([]bool, want)
	for i := range a {
		v, ok := decBool(args[i])
		if !ok {
			return nil, fail(wire.CodeBadArgs, "AtomicBoolean.%s: argument %d must be a boolean", m, i+1), false
		}
		a[i] = v
	}
	old := o.v
	switch m {
	case "Set":
		o.v = a[0]
		return nil, nil, false
	case "GetAndSet":
		o.v = a[0]
	case "CompareAndSet":
		if o.v != a[0] {
			return encBool(false), nil, false
		}
		o.v = a[1]
		return encBool(true), nil, false
	}
	return encBool(old), nil, false
}

func (o *boolObj) marshal() ([]byte, error) { return encBool(o.v), nil }
func (o *boolObj) unmarshal(b []byte) error {
	v, ok := decBool(b)
	if !ok {
		return fmt.Errorf("state: bad AtomicBoolean snapshot")
	}
	o.v = v
	return nil
}

// byteArrayObj implements AtomicByteArray: a fixed-length byte array
// whose length is its creation parameter.
type byteArrayObj struct {
	plain
	b []byte
}

func newByteArray(init []byte) (object, *status) {
	n, ok := decInit(init)
	if !ok || n < 0 || n > 1<<30 {
		return nil, fail(wire.CodeBadArgs, "AtomicByteArray needs its length (0..2^30) at creation")
	}
	return &byteArrayObj{b: make([]byte, n)}, nil
}

func (o *byteArrayObj) checkInit(init []byte) *status {
	if n, ok := decInit(init); !ok || n != int64(len(o.b)) {
		return fail(wire.CodeMismatch, "AtomicByteArray has length %d; this call expects %d", len(o.b), n)
	}
	return nil
}

func (o *byteArrayObj) readOnly(m string) bool {
	return m == "Get" || m == "Length" || m == "GetRange" || m == "GetAll"
}

func (o *byteArrayObj) index(m string, args [][]byte, i int, span int64) (int64, *status) {
	v, st := argI64(TypeAtomicByteArray, m, args, i)
	if st != nil {
		return 0, st
	}
	if v < 0 || v+span > int64(len(o.b)) {
		return 0, fail(wire.CodeOutOfRange, "AtomicByteArray.%s: index %d (span %d) outside length %d", m, v, span, len(o.b))
	}
	return v, nil
}

func (o *byteArrayObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	const T = TypeAtomicByteArray
	switch m {
	case "Length":
		if st := wantArgs(T, m, args, 0); st != nil {
			return nil, st, false
		}
		return encI64(int64(len(o.b))), nil, false
	case "GetAll":
		if st := wantArgs(T, m, args, 0); st != nil {
			return nil, st, false
		}
		return append([]byte(nil), o.b...), nil, false
	case "Get", "Set", "GetAndSet", "AddAndGet", "CompareAndSet":
		n := map[string]int{"Get": 1, "Set": 2, "GetAndSet": 2, "AddAndGet": 2, "CompareAndSet": 3}[m]
		if st := wantArgs(T, m, args, n); st != nil {
			return nil, st, false
		}
		i, st := o.index(m, args, 0, 1)
		if st != nil {
			return nil, st, false
		}
		vals := make([]byte, 0, 2)
		for _, a := range args[1:] {
			if len(a) != 1 {
				return nil, fail(wire.CodeBadArgs, "AtomicByteArray.%s: values must be single bytes", m), false
			}
			vals = append(vals, a[0])
		}
		old := o.b[i]
		switch m {
		case "Set":
			o.b[i] = vals[0]
			return nil, nil, false
		case "GetAndSet":
			o.b[i] = vals[0]
		case "AddAndGet":
			o.b[i] += vals[0]
			return []byte{o.b[i]}, nil, false
		case "CompareAndSet":
			if old != vals[0] {
				return encBool(false), nil, false
			}
			o.b[i] = vals[1]
			return encBool(true), nil, false
		}
		return []byte{old}, nil, false
	case "GetRange":
		if st := wantArgs(T, m, args, 2); st != nil {
			return nil, st, false
		}
		n, st := argI64(T, m, args, 1)
		if st != nil {
			return nil, st, false
		}
		if n < 0 {
			return nil, fail(wire.CodeBadArgs, "AtomicByteArray.GetRange: negative count %d", n), false
		}
		off, st := o.index(m, args, 0, n)
		if st != nil {
			return nil, st, false
		}
		return append([]byte(nil), o.b[off:off+n]...), nil, false
	case "SetRange":
		if st := wantArgs(T, m, args, 2); st != nil {
			return nil, st, false
		}
		off, st := o.index(m, args, 0, int64(len(args[1])))
		if st != nil {
			return nil, st, false
		}
		copy(o.b[off:], args[1])
		return nil, nil, false
	}
	return nil, unknownMethod(T, m, "Length", "Get", "Set", "GetAndSet", "AddAndGet", "CompareAndSet", "GetRange", "SetRange", "GetAll"), false
}

func (o *byteArrayObj) marshal() ([]byte, error) { return append([]byte(nil), o.b...), nil }
func (o *byteArrayObj) unmarshal(b []byte) error { o.b = append([]byte(nil), b...); return nil }

// mapObj implements Map: byte-string keys to byte-string values.
type mapObj struct {
	plain
	m map[string][]byte
}

func (o *mapObj) readOnly(m string) bool {
	return m == "Get" || m == "Size" || m == "Keys" || m == "ContainsKey"
}

func (o *mapObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	n, ok := map[string]int{"Put": 2, "Get": 1, "Delete": 1, "Size": 0, "Keys": 0, "PutIfAbsent": 2, "Clear": 0, "ContainsKey": 1}[m]
	if !ok {
		return nil, unknownMethod(TypeMap, m, "Put", "Get", "Delete", "Size", "Keys", "PutIfAbsent", "Clear", "ContainsKey"), false
	}
	if st := wantArgs(TypeMap, m, args, n); st != nil {
		return nil, st, false
	}
	switch m {
	case "Put":
		old, had := o.m[string(args[0])]
		o.m[string(args[0])] = append([]byte(nil), args[1]...)
		return encOpt(old, had), nil, false
	case "Get":
		v, had := o.m[string(args[0])]
		return encOpt(v, had), nil, false
	case "ContainsKey":
		_, had := o.m[string(args[0])]
		return encBool(had), nil, false
	case "Delete":
		old, had := o.m[string(args[0])]
		delete(o.m, string(args[0]))
		return encOpt(old, had), nil, false
	case "Size":
		return encI64(int64(len(o.m))), nil, false
	case "Keys":
		keys := make([]string, 0, len(o.m))
		for k := range o.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		items := make([][]byte, len(keys))
		for i, k := range keys {
			items[i] = []byte(k)
		}
		return encList(items), nil, false
	case "PutIfAbsent":
		if old, had := o.m[string(args[0])]; had {
			return encOpt(old, true), nil, false
		}
		o.m[string(args[0])] = append([]byte(nil), args[1]...)
		return encOpt(nil, false), nil, false
	case "Clear":
		o.m = map[string][]byte{}
	}
	return nil, nil, false
}

func (o *mapObj) marshal() ([]byte, error) { return gobBytes(o.m) }
func (o *mapObj) unmarshal(b []byte) error {
	o.m = map[string][]byte{}
	return gobLoad(b, &o.m)
}

// listObj implements List: an append-only-growing sequence of byte strings.
type listObj struct {
	plain
	items [][]byte
}

func (o *listObj) readOnly(m string) bool { return m == "Get" || m == "Len" || m == "Range" }

func (o *listObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	n, ok := map[string]int{"Append": 1, "Get": 1, "Set": 2, "Len": 0, "Range": 2, "Clear": 0}[m]
	if !ok {
		return nil, unknownMethod(TypeList, m, "Append", "Get", "Set", "Len", "Range", "Clear"), false
	}
	if st := wantArgs(TypeList, m, args, n); st != nil {
		return nil, st, false
	}
	switch m {
	case "Append":
		o.items = append(o.items, append([]byte(nil), args[0]...))
		return encI64(int64(len(o.items))), nil, false
	case "Len":
		return encI64(int64(len(o.items))), nil, false
	case "Clear":
		o.items = nil
		return nil, nil, false
	case "Get", "Set":
		i, st := argI64(TypeList, m, args, 0)
		if st != nil {
			return nil, st, false
		}
		if i < 0 || i >= int64(len(o.items)) {
			return nil, fail(wire.CodeOutOfRange, "List.%s: index %d outside length %d", m, i, len(o.items)), false
		}
		if m == "Set" {
			o.items[i] = append([]byte(nil), args[1]...)
			return nil, nil, false
		}
		return o.items[i], nil, false
	case "Range":
		a, st := argsI64(TypeList, m, args, 2)
		if st != nil {
			return nil, st, false
		}
		from, to := a[0], a[1]
		if to > int64(len(o.items)) {
			to = int64(len(o.items))
		}
		if from < 0 || from > to {
			return nil, fail(wire.CodeOutOfRange, "List.Range: [%d, %d) invalid for length %d", a[0], a[1], len(o.items)), false
		}
		return encList(o.items[from:to]), nil, false
	}
	return nil, nil, false
}

func (o *listObj) marshal() ([]byte, error) { return encList(o.items), nil }
func (o *listObj) unmarshal(b []byte) error {
	items, err := decList(b)
	for i := range items {
		items[i] = append([]byte(nil), items[i]...)
	}
	o.items = items
	return err
}

// blobObj implements Blob: one byte string, replaced or appended to.
type blobObj struct {
	plain
	b []byte
}

func (o *blobObj) readOnly(m string) bool { return m == "Get" || m == "Len" }

func (o *blobObj) invoke(m string, args [][]byte, _ *waiter) ([]byte, *status, bool) {
	n, ok := map[string]int{"Set": 1, "Get": 0, "Len": 0, "Append": 1}[m]
	if !ok {
		return nil, unknownMethod(TypeBlob, m, "Set", "Get", "Len", "Append"), false
	}
	if st := wantArgs(TypeBlob, m, args, n); st != nil {
		return nil, st, false
	}
	switch m {
	case "Set":
		o.b = append([]byte(nil), args[0]...)
		return nil, nil, false
	case "Append":
		o.b = append(o.b, args[0]...)
		return encI64(int64(len(o.b))), nil, false
	case "Len":
		return encI64(int64(len(o.b))), nil, false
	}
	// Returning o.b without copying is safe: Set replaces the slice and
	// Append writes only past the returned length, so the bytes the reply
	// holds never change after the lock is released.
	return o.b, nil, false
}

func (o *blobObj) marshal() ([]byte, error) { return append([]byte(nil), o.b...), nil }
func (o *blobObj) unmarshal(b []byte) error { o.b = append([]byte(nil), b...); return nil }
