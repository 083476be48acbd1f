package state

import (
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/state/internal/wire"
)

// Registry holds user-defined object types by name. A server hosts the
// types of the Registry in its ServerConfig; the binary that starts the
// server must link them, as a Gale worker binary links its functions.
//
// A Registry is safe for concurrent use; registering is normally done once
// at start-up.
type Registry struct {
	mu    sync.RWMutex
	types map[string]*userType
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]*userType{}} }

// RegisterType registers *T as the user-defined object type name in reg.
// Clients address it as reg's name, and every exported method of *T becomes
// remotely callable by name. T's zero value is the new object's state.
//
// Methods run on the server, one at a time per object, with the object's
// lock held: they must not block. Parameters and results travel gob-encoded,
// so they must be gob-encodable; a method may return nothing, a value, an
// error, or a value and an error.
//
// Before each call the object is copied so that a panicking method leaves it
// as it was: with T's Clone() *T method if it has one (cheap, and required
// for types gob cannot encode), else with a gob round trip (T's exported
// fields). Persistent objects are stored gob-encoded.
//
// RegisterType panics if name is empty, a built-in type, already registered,
// or if T is neither gob-encodable nor has a Clone method: these are
// programming errors, as with sql.Register.
func RegisterType[T any](reg *Registry, name string) {
	t := reflect.TypeFor[T]()
	pt := reflect.PointerTo(t)
	if name == "" {
		panic("state: RegisterType with an empty name")
	}
	if _, ok := builtins[name]; ok {
		panic(fmt.Sprintf("state: RegisterType(%q): the name of a built-in type", name))
	}
	ut := &userType{name: name, t: t, methods: map[string]reflect.Method{}}
	for i := 0; i < pt.NumMethod(); i++ {
		m := pt.Method(i)
		ut.methods[m.Name] = m
	}
	// State gob does not carry (unexported fields, funcs) would silently be
	// lost by the copy taken before each call and by a persistent object's
	// snapshot; arguments and results with such state would arrive changed.
	ut.lossy = coder.CheckGob(t)
	if _, err := gobBytes(reflect.New(t).Interface()); err == nil && ut.lossy == nil {
		ut.persistable = true
	}
	if c, ok := ut.methods["Clone"]; ok && c.Type.NumIn() == 1 && c.Type.NumOut() == 1 && c.Type.Out(0) == pt {
		ut.clone = c
		ut.hasClone = true
	} else if _, err := gobBytes(reflect.New(t).Interface()); err != nil {
		panic(fmt.Sprintf("state: RegisterType(%q): %v is not gob-encodable (%v); give it exported fields or a Clone() %v method", name, t, err, pt))
	} else if ut.lossy != nil {
		panic(fmt.Sprintf("state: RegisterType(%q): %v; the gob copy taken before each call would lose it: "+
			"export it, implement GobEncode/GobDecode, or give %v a Clone() %v method", name, ut.lossy, t, pt))
	}
	for _, m := range ut.methods {
		if m.Name == "Clone" && ut.hasClone {
			continue
		}
		for i := 1; i < m.Type.NumIn(); i++ {
			if err := coder.CheckGob(m.Type.In(i)); err != nil {
				panic(fmt.Sprintf("state: RegisterType(%q): argument %d of %v.%s: %v", name, i, t, m.Name, err))
			}
		}
		for i := 0; i < m.Type.NumOut(); i++ {
			if out := m.Type.Out(i); out != errorType {
				if err := coder.CheckGob(out); err != nil {
					panic(fmt.Sprintf("state: RegisterType(%q): result %d of %v.%s: %v", name, i+1, t, m.Name, err))
				}
			}
		}
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.types == nil {
		reg.types = map[string]*userType{}
	}
	if _, dup := reg.types[name]; dup {
		panic(fmt.Sprintf("state: RegisterType(%q) called twice", name))
	}
	reg.types[name] = ut
}

func (r *Registry) lookup(name string) *userType {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.types[name]
}

func (r *Registry) names() string {
	if r == nil {
		return "no types registered"
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.types) == 0 {
		return "no types registered"
	}
	ns := make([]string, 0, len(r.types))
	for n := range r.types {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return "registered: " + strings.Join(ns, ", ")
}

type userType struct {
	name     string
	t        reflect.Type
	methods  map[string]reflect.Method
	clone    reflect.Method
	hasClone bool
	lossy    error // why gob loses part of a T, if it does
	// persistable: T's state gob-encodes, so its objects can be
	// persistent and replicated (snapshots carry the encoding).
	persistable bool
}

func (ut *userType) create() object { return &userObj{ut: ut, v: reflect.New(ut.t)} }

func (ut *userType) methodNames() string {
	ns := make([]string, 0, len(ut.methods))
	for n := range ut.methods {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

var errorType = reflect.TypeFor[error]()

// userObj is an instance of a user-defined type; v is a *T.
type userObj struct {
	plain
	ut *userType
	v  reflect.Value
}

func (o *userObj) readOnly(string) bool { return false }

func (o *userObj) snapshot() (func(), error) {
	if o.ut.hasClone {
		c := o.ut.clone.Func.Call([]reflect.Value{o.v})[0]
		if c.IsNil() {
			return nil, fmt.Errorf("%s.Clone returned nil", o.ut.name)
		}
		return func() { o.v = c }, nil
	}
	b, err := gobBytes(o.v.Interface())
	if err != nil {
		return nil, err
	}
	return func() {
		nv := reflect.New(o.ut.t)
		if gobLoad(b, nv.Interface()) == nil {
			o.v = nv
		}
	}, nil
}

func (o *userObj) invoke(m string, args [][]byte, _ *waiter) (body []byte, st *status, parked bool) {
	meth, ok := o.ut.methods[m]
	if !ok {
		return nil, fail(wire.CodeUnknownMethod, "%s has no method %q (its methods: %s)", o.ut.name, m, o.ut.methodNames()), false
	}
	mt := meth.Type
	if want := mt.NumIn() - 1; len(args) != want {
		return nil, fail(wire.CodeBadArgs, "%s.%s takes %d argument(s), got %d", o.ut.name, m, want, len(args)), false
	}
	in := make([]reflect.Value, mt.NumIn())
	in[0] = o.v
	for i, a := range args {
		pt := mt.In(i + 1)
		p := reflect.New(pt).Elem()
		if err := decodeValue(a, p); err != nil {
			return nil, fail(wire.CodeBadArgs, "%s.%s: argument %d does not decode as %v: %v", o.ut.name, m, i+1, pt, err), false
		}
		in[i+1] = p
	}
	restore, err := o.snapshot()
	if err != nil {
		return nil, fail(wire.CodeInternal, "%s.%s: copying the object before the call: %v", o.ut.name, m, err), false
	}
	out, st := o.call(meth, in)
	if st != nil {
		if st.code == wire.CodePanic {
			restore()
		}
		return nil, st, false
	}
	// Results: (), (R), (error), (R, error).
	if n := len(out); n > 0 && mt.Out(n-1) == errorType {
		if e := out[n-1]; !e.IsNil() {
			return nil, fail(wire.CodeMethodError, "%s.%s: %v", o.ut.name, m, e.Interface()), false
		}
		out = out[:n-1]
	}
	if len(out) == 0 {
		return nil, nil, false
	}
	b, err := encodeValue(out[0].Interface())
	if err != nil {
		return nil, fail(wire.CodeInternal, "%s.%s: encoding the result: %v", o.ut.name, m, err), false
	}
	return b, nil, false
}

func (o *userObj) call(meth reflect.Method, in []reflect.Value) (out []reflect.Value, st *status) {
	defer func() {
		if r := recover(); r != nil {
			st = fail(wire.CodePanic, "%s.%s panicked (object restored to its state before the call): %v\n%s", o.ut.name, meth.Name, r, debug.Stack())
		}
	}()
	return meth.Func.Call(in), nil
}

func (o *userObj) marshal() ([]byte, error) {
	if o.ut.lossy != nil {
		return nil, fmt.Errorf("state: a persistent %s cannot be saved: %v; implement GobEncode/GobDecode to persist it", o.ut.name, o.ut.lossy)
	}
	return gobBytes(o.v.Interface())
}
func (o *userObj) unmarshal(b []byte) error {
	nv := reflect.New(o.ut.t)
	if err := gobLoad(b, nv.Interface()); err != nil {
		return errors.Join(fmt.Errorf("state: restoring %s", o.ut.name), err)
	}
	o.v = nv
	return nil
}
