package gale

import (
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
)

// pinned maps function code pointers to names given with Register. Like
// database/sql's driver registry, it is a process-wide name table: the
// worker binary fills it the same way the driving program did.
var pinned = struct {
	sync.RWMutex
	byPtr  map[uintptr]string
	byName map[string]uintptr
}{byPtr: map[uintptr]string{}, byName: map[string]uintptr{}}

// Register pins fn (a function used by a transform) to name. It is needed
// for closures and method values, which workers cannot find by their
// compiler-generated names, and useful to keep a name stable across
// refactorings. Call it from an init function so that worker processes,
// which run the same binary, register the same names before serving tasks.
// A registered closure must behave identically in every process: capture
// only values that are the same everywhere.
//
// Register panics if name is empty or already pinned to another function,
// or if fn is not a function: those are programming errors.
func Register(name string, fn any) {
	v := reflect.ValueOf(fn)
	if name == "" || v.Kind() != reflect.Func || v.IsNil() {
		panic(fmt.Sprintf("gale: Register(%q, %T): need a non-empty name and a non-nil function", name, fn))
	}
	ptr := v.Pointer()
	pinned.Lock()
	defer pinned.Unlock()
	if old, ok := pinned.byName[name]; ok && old != ptr {
		panic(fmt.Sprintf("gale: Register: name %q is already registered for another function", name))
	}
	pinned.byName[name] = ptr
	pinned.byPtr[ptr] = name
}

// closureName matches, in a function's name without its package, the
// names the Go compiler gives function literals (F.func1, F.func1.2,
// glob..func1) and method values (-fm). A top-level function named func1
// is not one: its name has nothing before func1.
var closureName = regexp.MustCompile(`.\.func\d+(\.\d+)*$|-fm$|^glob\.`)

// withoutPackage drops the package path and name from a function's
// symbol name: "example.com/x/y.F.func1" becomes "F.func1". Dots in the
// last element of a package path are escaped (%2e) in symbol names, so
// the first dot after the last slash ends the package.
func withoutPackage(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.Index(name, "."); i >= 0 {
		return name[i+1:]
	}
	return name
}

// funcName returns the stable name of fn, or an error explaining why fn
// cannot be shipped to workers.
func funcName(fn any) (string, error) {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "", fmt.Errorf("need a non-nil function, got %T", fn)
	}
	ptr := v.Pointer()
	pinned.RLock()
	name, ok := pinned.byPtr[ptr]
	pinned.RUnlock()
	if ok {
		return name, nil
	}
	f := runtime.FuncForPC(ptr)
	if f == nil {
		return "", fmt.Errorf("cannot name function %T", fn)
	}
	name = f.Name()
	if closureName.MatchString(withoutPackage(name)) {
		return "", fmt.Errorf("function %s is a closure or method value, which workers cannot rebuild; "+
			"use a top-level function, or pin it with gale.Register(\"name\", fn) in an init function", displayName(name))
	}
	return name, nil
}

// displayName shortens a function's full name for labels:
// "github.com/x/y/pkg.F" becomes "pkg.F".
func displayName(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// registerElem registers the element kernel of T and returns its name.
func registerElem[T any](p *Pipeline) string {
	name := "elem:" + coder.TypeName[T]()
	if _, ok := p.reg.Get(name); !ok {
		p.reg.Put(name, &elemKernel[T]{})
	}
	return name
}

// checkCoder records an error if T cannot be encoded.
func checkCoder[T any](p *Pipeline, loc, what string) {
	if err := coder.Check[T](); err != nil {
		p.fail(loc, "%s: %v", what, err)
	}
}

var _ kernel.Elem = (*elemKernel[int])(nil)
