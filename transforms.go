package gale

import (
	"fmt"
	"reflect"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/planner"
)

// narrow adds a narrow transform node.
func narrow[In, Out any](c Collection[In], kind string, fn any, k any, loc string) Collection[Out] {
	p := c.p
	if p == nil {
		panic("gale: " + kind + " of a zero Collection")
	}
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "%s: %v", kind, err)
		name = fmt.Sprintf("invalid-%d", len(p.nodes))
	}
	return narrowNamed[In, Out](c, kind, name, k, loc)
}

// narrowNamed adds a narrow transform node whose function has the given
// name. Gale's own generic helpers use it: an instantiated generic function
// used as a value is compiled to a closure, which funcName rejects.
func narrowNamed[In, Out any](c Collection[In], kind, name string, k any, loc string) Collection[Out] {
	p := c.p
	kname := fmt.Sprintf("%s:%s(%s)%s", kind, name, coder.TypeName[In](), coder.TypeName[Out]())
	p.reg.Put(kname, k)
	return addNode[Out](p, &node{Node: planner.Node{
		Kind: planner.Narrow, Label: kind + "(" + displayName(name) + ")", Kernel: kname,
		Inputs: []int{c.id}, Loc: loc,
	}})
}

// Map applies fn to every element.
func Map[In, Out any](c Collection[In], fn func(In) Out) Collection[Out] {
	return narrow[In, Out](c, "Map", fn, mapKernel[In, Out]{fn}, callerLoc(1))
}

// FlatMap calls fn with every element and a function that emits zero or
// more outputs for it.
func FlatMap[In, Out any](c Collection[In], fn func(In, func(Out))) Collection[Out] {
	return narrow[In, Out](c, "FlatMap", fn, flatMapKernel[In, Out]{fn}, callerLoc(1))
}

// Filter keeps the elements for which fn returns true.
func Filter[T any](c Collection[T], fn func(T) bool) Collection[T] {
	return narrow[T, T](c, "Filter", fn, filterKernel[T]{fn}, callerLoc(1))
}

// KeyBy pairs every element with the key fn computes for it.
func KeyBy[K comparable, V any](c Collection[V], fn func(V) K) Collection[KV[K, V]] {
	return narrow[V, KV[K, V]](c, "KeyBy", fn, keyByKernel[K, V]{fn}, callerLoc(1))
}

type keyByKernel[K comparable, V any] struct{ fn func(V) K }

func (k keyByKernel[K, V]) Build(next any) (any, error) {
	emit, ok := next.(func(KV[K, V]))
	if !ok {
		return nil, fmt.Errorf("gale: key-by output feeds %T", next)
	}
	fn := k.fn
	return func(v V) { emit(KV[K, V]{fn(v), v}) }, nil
}

// Combiner combines values of type V into an accumulator A and extracts an
// output O from it. Merge must be associative and commutative, and Create
// must return an identity of Merge: Gale runs Add and Merge on many workers
// in any order (partial aggregation before the shuffle, then merging).
//
// A combiner travels to workers as its type plus its JSON encoding, and
// every process — the driver included — runs the value decoded from that
// encoding, so all compute the same. Its configuration must therefore live
// in exported fields: a combiner with an unexported field, a field tagged
// `json:"-"`, a func, channel or interface field, or a value that does not
// survive its JSON round trip is refused when the pipeline is built, naming
// the type and field. Its type must be a named type reachable by the worker
// binary (it always is: the worker is the same program). A and the key type
// must be encodable (see package coder's rules in docs/api.md).
type Combiner[V, A, O any] interface {
	Create() A
	Add(acc A, v V) A
	Merge(a, b A) A
	Extract(acc A) O
}

// identified is implemented by Gale's built-in combiners, whose identity is
// not their JSON encoding.
type identified interface{ combinerID() (string, error) }

// travelingCombiner returns c's JSON encoding and the value workers
// rebuild from it. A combiner whose state would not survive the trip (an
// unexported field, a func) is refused here, before anything runs:
// otherwise a worker process would rebuild a different value and compute
// something else than the driver.
func travelingCombiner(c any) ([]byte, any, error) {
	cfg, back, err := coder.RoundTripJSON(c)
	if err != nil {
		return nil, nil, fmt.Errorf("combiner %s cannot travel to workers as its JSON encoding: %v", reflect.TypeOf(c), err)
	}
	return cfg, back, nil
}

func typeString(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "*" + typeString(t.Elem())
	}
	if t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

func shuffleNode[In, Out any](c Collection[In], kind planner.Kind, label, kname string, liftable bool, loc string) Collection[Out] {
	return addNode[Out](c.p, &node{Node: planner.Node{
		Kind: kind, Label: label, Kernel: kname, Inputs: []int{c.id}, Loc: loc, Liftable: liftable,
	}})
}

// CombinePerKey combines the values of each key with comb. The combiner is
// lifted: each map task combines the values it sees before the shuffle, so
// only one partial aggregate per key and task crosses it.
func CombinePerKey[K comparable, V, A, O any](c Collection[KV[K, V]], comb Combiner[V, A, O]) Collection[KV[K, O]] {
	return combinePerKey(c, comb, "CombinePerKey", callerLoc(1))
}

func combinePerKey[K comparable, V, A, O any](c Collection[KV[K, V]], comb Combiner[V, A, O], label, loc string) Collection[KV[K, O]] {
	p := c.p
	checkCoder[K](p, loc, label+" key")
	checkCoder[V](p, loc, label+" value")
	checkCoder[A](p, loc, label+" accumulator")
	var kname string
	switch cb := any(comb).(type) {
	case nil:
		p.fail(loc, "%s: nil combiner", label)
		kname = fmt.Sprintf("invalid-%d", len(p.nodes))
	case identified:
		id, err := cb.combinerID()
		if err != nil {
			p.fail(loc, "%s: %v", label, err)
		}
		kname = fmt.Sprintf("combine:%s:%s", id, coder.TypeName[K]())
		p.reg.Put(kname, &combineKernel[K, V, A, O]{c: comb})
	default:
		t := reflect.TypeOf(comb)
		label += "(" + t.String() + ")"
		// The kernel's name carries the combiner's type and configuration;
		// every process, this one included, runs the combiner decoded from
		// it, so a worker whose own pipeline construction configured the
		// combiner otherwise still runs the driver's.
		prefix := fmt.Sprintf("combine:%s:%s:", typeString(t), coder.TypeName[K]())
		p.reg.PutFamily(prefix, func(cfg string) (any, error) {
			v, err := coder.DecodeJSON(t, []byte(cfg))
			if err != nil {
				return nil, err
			}
			return &combineKernel[K, V, A, O]{c: v.(Combiner[V, A, O])}, nil
		})
		cfg, _, err := travelingCombiner(comb)
		if err != nil {
			p.fail(loc, "%s: %v", label, err)
		}
		kname = prefix + string(cfg)
	}
	return shuffleNode[KV[K, V], KV[K, O]](c, planner.Combine, label, kname, true, loc)
}

// GroupByKey groups the values of each key. The values of a key arrive in
// a deterministic order for a given plan, but no particular order is
// promised.
func GroupByKey[K comparable, V any](c Collection[KV[K, V]]) Collection[KV[K, []V]] {
	loc := callerLoc(1)
	checkCoder[K](c.p, loc, "GroupByKey key")
	checkCoder[V](c.p, loc, "GroupByKey value")
	kname := fmt.Sprintf("group:%s:%s", coder.TypeName[K](), coder.TypeName[V]())
	c.p.reg.Put(kname, groupKernel[K, V]{})
	return shuffleNode[KV[K, V], KV[K, []V]](c, planner.GroupByKey, "GroupByKey", kname, false, loc)
}

// CountPerElement counts how often each distinct element occurs.
func CountPerElement[T comparable](c Collection[T]) Collection[KV[T, int64]] {
	loc := callerLoc(1)
	checkCoder[T](c.p, loc, "CountPerElement element")
	kname := "count:" + coder.TypeName[T]()
	c.p.reg.Put(kname, countKernel[T]{})
	return shuffleNode[T, KV[T, int64]](c, planner.Combine, "CountPerElement", kname, true, loc)
}

// CountPerKey counts the values of each key.
func CountPerKey[K comparable, V any](c Collection[KV[K, V]]) Collection[KV[K, int64]] {
	return combinePerKey(c, Combiner[V, int64, int64](countCombiner[V]{}), "CountPerKey", callerLoc(1))
}

// Number is the constraint of SumPerKey's values.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// SumPerKey sums the values of each key.
func SumPerKey[K comparable, V Number](c Collection[KV[K, V]]) Collection[KV[K, V]] {
	return combinePerKey(c, Combiner[V, V, V](sumCombiner[V]{}), "SumPerKey", callerLoc(1))
}

// Reduce folds all elements into one with fn, which must be associative
// and commutative. The result holds one element, or none for an empty
// input.
func Reduce[T any](c Collection[T], fn func(a, b T) T) Collection[T] {
	loc := callerLoc(1)
	name, err := funcName(fn)
	if err != nil {
		c.p.fail(loc, "Reduce: %v", err)
	}
	keyed := narrowNamed[T, KV[bool, T]](c, "Reduce.Key", "gale.unitKey", mapKernel[T, KV[bool, T]]{unitKey[T]}, loc)
	combined := combinePerKey(keyed, Combiner[T, reduceAcc[T], T](reduceCombiner[T]{fn: fn, name: name}), "Reduce("+displayName(name)+")", loc)
	c.p.nodes[combined.id].Keys = 1 // one constant key: one partition
	return narrowNamed[KV[bool, T], T](combined, "Reduce.Value", "gale.kvValue", mapKernel[KV[bool, T], T]{kvValue[bool, T]}, loc)
}

func unitKey[T any](v T) KV[bool, T]           { return KV[bool, T]{true, v} }
func kvValue[K, V any](kv KV[K, V]) V          { return kv.Value }
func (reduceCombiner[T]) Create() reduceAcc[T] { return reduceAcc[T]{} }

// Flatten returns the union of its inputs, which must belong to one
// pipeline.
func Flatten[T any](cs ...Collection[T]) Collection[T] {
	loc := callerLoc(1)
	if len(cs) == 0 || cs[0].p == nil {
		panic("gale: Flatten needs at least one collection")
	}
	p := cs[0].p
	ins := make([]int, len(cs))
	for i, c := range cs {
		if c.p != p {
			p.fail(loc, "Flatten: input %d belongs to another pipeline", i)
		}
		ins[i] = c.id
	}
	return addNode[T](p, &node{Node: planner.Node{Kind: planner.Flatten, Label: "Flatten", Inputs: ins, Loc: loc}})
}

// Built-in combiners.

type countCombiner[V any] struct{}

func (countCombiner[V]) combinerID() (string, error)    { return "count:" + coder.TypeName[V](), nil }
func (countCombiner[V]) Create() int64                  { return 0 }
func (countCombiner[V]) Add(a int64, _ V) int64         { return a + 1 }
func (countCombiner[V]) Merge(a, b int64) int64         { return a + b }
func (countCombiner[V]) Extract(a int64) int64          { return a }
func (sumCombiner[V]) combinerID() (string, error)      { return "sum:" + coder.TypeName[V](), nil }
func (sumCombiner[V]) Create() V                        { var z V; return z }
func (sumCombiner[V]) Add(a V, v V) V                   { return a + v }
func (sumCombiner[V]) Merge(a, b V) V                   { return a + b }
func (sumCombiner[V]) Extract(a V) V                    { return a }
func (r reduceCombiner[T]) combinerID() (string, error) { return "reduce:" + r.name, nil }

type sumCombiner[V Number] struct{}

// reduceAcc is Reduce's accumulator: a value, once one has been seen.
type reduceAcc[T any] struct {
	Set bool
	V   T
}

type reduceCombiner[T any] struct {
	fn   func(a, b T) T
	name string
}

func (r reduceCombiner[T]) Add(a reduceAcc[T], v T) reduceAcc[T] {
	if !a.Set {
		return reduceAcc[T]{true, v}
	}
	return reduceAcc[T]{true, r.fn(a.V, v)}
}

func (r reduceCombiner[T]) Merge(a, b reduceAcc[T]) reduceAcc[T] {
	if !a.Set {
		return b
	}
	if !b.Set {
		return a
	}
	return reduceAcc[T]{true, r.fn(a.V, b.V)}
}

func (r reduceCombiner[T]) Extract(a reduceAcc[T]) T { return a.V }
