package gale

import (
	"fmt"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// Side is a side input: a collection that every task of a transform reads
// whole, as a value of type S (a slice with AsSlice, a map with AsMap or
// AsMultiMap, one element with AsSingleton), next to the elements of its
// main input. Typical side inputs are a lookup table (customers by ID
// while mapping orders) and a global figure (the total to divide every
// count by).
//
// The side collection is computed first, and its elements are written
// once to the job's temporary store; each worker reads and decodes them
// once and shares the value among the tasks it runs, which must treat it
// as read-only. A side input larger than half a task's memory budget
// (WorkerMemory) fails the job before the reading stage starts, naming it:
// join large collections with Join instead. When the side input is
// computed from the same data as the main input (the total of the numbers
// each is divided by), Gale redistributes the main input through one
// shuffle, so the stage that reads the side input does not wait for
// itself.
type Side[S any] struct {
	p    *Pipeline
	node int // the sink node that materializes the collection
}

// AsSlice makes c a side input read as a slice of its elements, in a
// deterministic order for a given plan but no particular one.
func AsSlice[T any](c Collection[T]) Side[[]T] {
	return sideSink[T, []T](c, "AsSlice", "side:slice:"+coder.TypeName[T](), sliceView[T]{}, callerLoc(1))
}

// AsMap makes c a side input read as a map from key to value. A key that
// appears twice fails the reading tasks, naming it (use AsMultiMap when
// keys repeat).
func AsMap[K comparable, V any](c Collection[KV[K, V]]) Side[map[K]V] {
	loc := callerLoc(1)
	return sideSink[KV[K, V], map[K]V](c, "AsMap", "side:map:"+coder.TypeName[KV[K, V]](), mapView[K, V]{}, loc)
}

// AsMultiMap makes c a side input read as a map from key to all its
// values.
func AsMultiMap[K comparable, V any](c Collection[KV[K, V]]) Side[map[K][]V] {
	loc := callerLoc(1)
	return sideSink[KV[K, V], map[K][]V](c, "AsMultiMap", "side:multimap:"+coder.TypeName[KV[K, V]](), multiMapView[K, V]{}, loc)
}

// AsSingleton makes c, which must hold exactly one element (such as the
// result of Count, Sum or Combine), a side input read as that element.
// Any other number of elements fails the reading tasks with an error that
// says how many there were.
func AsSingleton[T any](c Collection[T]) Side[T] {
	return sideSink[T, T](c, "AsSingleton", "side:singleton:"+coder.TypeName[T](), singletonView[T]{}, callerLoc(1))
}

func sideSink[T, S any](c Collection[T], kind, kname string, view kernel.SideView, loc string) Side[S] {
	p := c.p
	if p == nil {
		panic("gale: " + kind + " of a zero Collection")
	}
	checkCoder[T](p, loc, kind)
	p.reg.Put(kname, view)
	n := addNode[T](p, &node{Node: planner.Node{Kind: planner.Sink, Label: kind, Kernel: kname, Inputs: []int{c.id}, Loc: loc},
		sink: &sinkInfo{format: "records"}})
	return Side[S]{p: p, node: n.id}
}

// MapWithSide applies fn(side, x) to every element x, where side is the
// value of the side input.
func MapWithSide[S, In, Out any](c Collection[In], fn func(S, In) Out, side Side[S]) Collection[Out] {
	return withSide[S, In, Out](c, "MapWithSide", fn, side, mapSideKernel[S, In, Out]{fn}, callerLoc(1))
}

// FlatMapWithSide is FlatMap with a side input, as MapWithSide.
func FlatMapWithSide[S, In, Out any](c Collection[In], fn func(S, In, func(Out)), side Side[S]) Collection[Out] {
	return withSide[S, In, Out](c, "FlatMapWithSide", fn, side, flatMapSideKernel[S, In, Out]{fn}, callerLoc(1))
}

// FilterWithSide is Filter with a side input, as MapWithSide.
func FilterWithSide[S, T any](c Collection[T], fn func(S, T) bool, side Side[S]) Collection[T] {
	return withSide[S, T, T](c, "FilterWithSide", fn, side, filterSideKernel[S, T]{fn}, callerLoc(1))
}

func withSide[S, In, Out any](c Collection[In], kind string, fn any, side Side[S], k kernel.SideNarrow, loc string) Collection[Out] {
	p := c.p
	if p == nil {
		panic("gale: " + kind + " of a zero Collection")
	}
	if side.p == nil {
		p.fail(loc, "%s: the side input is the zero Side; make one with AsSlice, AsMap, AsMultiMap or AsSingleton", kind)
		return addNode[Out](p, &node{Node: planner.Node{Kind: planner.Narrow, Label: kind, Inputs: []int{c.id}, Loc: loc}})
	}
	if side.p != p {
		p.fail(loc, "%s: the side input belongs to another pipeline", kind)
		return addNode[Out](p, &node{Node: planner.Node{Kind: planner.Narrow, Label: kind, Inputs: []int{c.id}, Loc: loc}})
	}
	// The reader may have to start a stage of its own: when its side
	// input is computed from the same data (decided now), or when stages
	// fused from unrelated transforms would read each other's side inputs
	// (decided by Run, see Pipeline.reshuffles).
	if err := coder.Check[In](); err == nil {
		var rs *reshuffleNodes
		c, rs = reshuffle(c, loc)
		if p.waitsForItself(rs.input, side.node) {
			rs.activate(p.nodes)
		} else {
			p.reshuffles = append(p.reshuffles, rs)
		}
	} else if p.waitsForItself(c.id, side.node) {
		p.fail(loc, "%s: the side input is computed from the same data as the main input, which Gale must then "+
			"redistribute through a shuffle first, but its elements cannot be encoded: %v", kind, err)
	}
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "%s: %v", kind, err)
		name = fmt.Sprintf("invalid-%d", len(p.nodes))
	}
	kname := fmt.Sprintf("%s:%s(%s,%s)%s", kind, name, coder.TypeName[S](), coder.TypeName[In](), coder.TypeName[Out]())
	p.reg.Put(kname, k)
	return addNode[Out](p, &node{Node: planner.Node{
		Kind: planner.Narrow, Label: kind + "(" + displayName(name) + ")", Kernel: kname,
		Inputs: []int{c.id}, Loc: loc, Sides: []int{side.node},
	}})
}

// waitsForItself reports whether a transform of main's output reading
// side input node side would sit in a stage that the side's own
// computation waits for: the input of one of main's stages (a source or a
// shuffle, reached through narrow transforms and flattens) is among the
// side's ancestors, side inputs included.
func (p *Pipeline) waitsForItself(main, side int) bool {
	anc := map[int]bool{}
	var up func(id int)
	up = func(id int) {
		if anc[id] {
			return
		}
		anc[id] = true
		for _, in := range p.nodes[id].Inputs {
			up(in)
		}
		for _, sd := range p.nodes[id].Sides {
			up(sd)
		}
	}
	up(side)
	seen := map[int]bool{}
	var found func(id int) bool
	found = func(id int) bool {
		if seen[id] {
			return false
		}
		seen[id] = true
		n := p.nodes[id]
		if n.Kind != planner.Narrow && n.Kind != planner.Flatten {
			return anc[id]
		}
		for _, in := range n.Inputs {
			if found(in) {
				return true
			}
		}
		return false
	}
	return found(main)
}

// reshuffleNodes are the three nodes (key, group, values) that can
// redistribute a side reader's input through a shuffle. Until activated
// they are flattens of one input, which the planner fuses away.
type reshuffleNodes struct {
	input  int // the node whose output is redistributed
	ids    [3]int
	active [3]planner.Node
}

// activate turns the pass-throughs into the reshuffle in nodes (the
// pipeline's or a copy of its logical graph).
func (r *reshuffleNodes) activate(nodes any) {
	for i, id := range r.ids {
		switch ns := nodes.(type) {
		case []*node:
			ns[id].Node = r.active[i]
		case []planner.Node:
			ns[id] = r.active[i]
		}
	}
}

// reshuffle returns c through three pass-through nodes that activate
// turns into a redistribution through a shuffle, which starts a new
// stage.
func reshuffle[T any](c Collection[T], loc string) (Collection[T], *reshuffleNodes) {
	p := c.p
	keyed := narrowNamed[T, KV[uint32, T]](c, "Reshuffle", "gale.spreadKey", spreadKernel[T]{}, loc)
	grouped := GroupByKey(keyed)
	p.nodes[grouped.id].Loc = loc
	out := narrowNamed[KV[uint32, []T], T](grouped, "Reshuffle.Values", "gale.groupValues",
		flatMapKernel[KV[uint32, []T], T]{groupValues[uint32, T]}, loc)
	rs := &reshuffleNodes{input: c.id, ids: [3]int{keyed.id, grouped.id, out.id}}
	elem := p.nodes[c.id].Elem
	for i, id := range rs.ids {
		n := &p.nodes[id].Node
		rs.active[i] = *n
		rs.active[i].Inputs = append([]int(nil), n.Inputs...)
		*n = planner.Node{ID: n.ID, Kind: planner.Flatten, Label: "Flatten", Elem: elem, Inputs: n.Inputs, Loc: loc}
	}
	return out, rs
}

// spreadKeys is how many keys a reshuffle spreads elements over.
const spreadKeys = 1024

// spreadKernel keys elements round robin over spreadKeys keys.
type spreadKernel[T any] struct{}

func (spreadKernel[T]) Build(next any) (any, error) {
	emit, ok := next.(func(KV[uint32, T]))
	if !ok {
		return nil, fmt.Errorf("gale: reshuffle output feeds %T", next)
	}
	var i uint32
	return func(v T) {
		i++
		emit(KV[uint32, T]{i % spreadKeys, v})
	}, nil
}

func groupValues[K, V any](kv KV[K, []V], emit func(V)) {
	for _, v := range kv.Value {
		emit(v)
	}
}

// Side views.

// decodeAll calls fn with every record of T in data.
func decodeAll[T any](data [][]byte, fn func(T) error) error {
	c := coder.For[T]()
	for _, d := range data {
		for len(d) > 0 {
			v, n, err := c.Decode(d)
			if err != nil {
				return fmt.Errorf("decoding %s: %w", coder.TypeName[T](), err)
			}
			d = d[n:]
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

type sliceView[T any] struct{}

func (sliceView[T]) Materialize(data [][]byte) (any, error) {
	out := []T{}
	err := decodeAll(data, func(v T) error { out = append(out, v); return nil })
	return out, err
}

type mapView[K comparable, V any] struct{}

func (mapView[K, V]) Materialize(data [][]byte) (any, error) {
	out := map[K]V{}
	err := decodeAll(data, func(kv KV[K, V]) error {
		if _, dup := out[kv.Key]; dup {
			return fmt.Errorf("AsMap: key %v appears more than once; use AsMultiMap to read every value of a key", kv.Key)
		}
		out[kv.Key] = kv.Value
		return nil
	})
	return out, err
}

type multiMapView[K comparable, V any] struct{}

func (multiMapView[K, V]) Materialize(data [][]byte) (any, error) {
	out := map[K][]V{}
	err := decodeAll(data, func(kv KV[K, V]) error { out[kv.Key] = append(out[kv.Key], kv.Value); return nil })
	return out, err
}

type singletonView[T any] struct{}

func (singletonView[T]) Materialize(data [][]byte) (any, error) {
	var out T
	n := 0
	err := decodeAll(data, func(v T) error { out = v; n++; return nil })
	if err == nil && n != 1 {
		err = fmt.Errorf("AsSingleton: the collection holds %d elements, want exactly 1 "+
			"(Min, Max and Mean of an empty collection hold none; use AsSlice to accept any number)", n)
	}
	return out, err
}

// Kernels of the transforms with a side input.

// sideValue returns the one side value as an S.
func sideValue[S any](sides []any) (S, error) {
	var zero S
	if len(sides) != 1 {
		return zero, fmt.Errorf("gale: %d side inputs, want 1", len(sides))
	}
	s, ok := sides[0].(S)
	if !ok {
		return zero, fmt.Errorf("gale: side input is a %T, want %s", sides[0], coder.TypeName[S]())
	}
	return s, nil
}

type mapSideKernel[S, In, Out any] struct{ fn func(S, In) Out }

func (k mapSideKernel[S, In, Out]) BuildSides(next any, sides []any) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: map output %s feeds %T", coder.TypeName[Out](), next)
	}
	side, err := sideValue[S](sides)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v In) { emit(fn(side, v)) }, nil
}

type flatMapSideKernel[S, In, Out any] struct{ fn func(S, In, func(Out)) }

func (k flatMapSideKernel[S, In, Out]) BuildSides(next any, sides []any) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: flat map output %s feeds %T", coder.TypeName[Out](), next)
	}
	side, err := sideValue[S](sides)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v In) { fn(side, v, emit) }, nil
}

type filterSideKernel[S, T any] struct{ fn func(S, T) bool }

func (k filterSideKernel[S, T]) BuildSides(next any, sides []any) (any, error) {
	emit, ok := next.(func(T))
	if !ok {
		return nil, fmt.Errorf("gale: filter output %s feeds %T", coder.TypeName[T](), next)
	}
	side, err := sideValue[S](sides)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v T) {
		if fn(side, v) {
			emit(v)
		}
	}, nil
}

var (
	_ kernel.SideNarrow = mapSideKernel[int, int, int]{}
	_ kernel.SideView   = mapView[int, int]{}
)
