package gale

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// MapWith applies fn(param, x) to every element x. param travels to the
// workers in the task descriptor, encoded as JSON, so it may be computed at
// run time (this iteration's centroids, a threshold read from a flag): the
// workers need not reproduce it. P must round-trip through encoding/json.
func MapWith[P, In, Out any](c Collection[In], fn func(P, In) Out, param P) Collection[Out] {
	return narrowWith[P, In, Out](c, "MapWith", fn, param, mapWithKernel[P, In, Out]{fn}, callerLoc(1))
}

// FlatMapWith is FlatMap with a parameter, as MapWith.
func FlatMapWith[P, In, Out any](c Collection[In], fn func(P, In, func(Out)), param P) Collection[Out] {
	return narrowWith[P, In, Out](c, "FlatMapWith", fn, param, flatMapWithKernel[P, In, Out]{fn}, callerLoc(1))
}

// FilterWith is Filter with a parameter, as MapWith.
func FilterWith[P, T any](c Collection[T], fn func(P, T) bool, param P) Collection[T] {
	return narrowWith[P, T, T](c, "FilterWith", fn, param, filterWithKernel[P, T]{fn}, callerLoc(1))
}

func narrowWith[P, In, Out any](c Collection[In], kind string, fn any, param P, k kernel.ParamNarrow, loc string) Collection[Out] {
	p := c.p
	if p == nil {
		panic("gale: " + kind + " of a zero Collection")
	}
	params, err := encodeParam(param)
	if err != nil {
		p.fail(loc, "%s: %v", kind, err)
	}
	if params == nil {
		params = []byte("null")
	}
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "%s: %v", kind, err)
		name = fmt.Sprintf("invalid-%d", len(p.nodes))
	}
	kname := fmt.Sprintf("%s:%s(%s,%s)%s", kind, name, coder.TypeName[P](), coder.TypeName[In](), coder.TypeName[Out]())
	p.reg.Put(kname, k)
	return addNode[Out](p, &node{Node: planner.Node{
		Kind: planner.Narrow, Label: kind + "(" + displayName(name) + ")", Kernel: kname,
		Inputs: []int{c.id}, Loc: loc, Params: params,
	}})
}

// encodeParam returns the JSON encoding of param, which workers decode
// into a P, after checking that the decoded value is param itself: a P
// with state JSON does not carry (an unexported field, an interface, a
// func) is refused when the pipeline is built instead of arriving on the
// workers as something else.
func encodeParam[P any](param P) ([]byte, error) {
	t := reflect.TypeFor[P]()
	if err := coder.CheckJSON(t); err != nil {
		return nil, fmt.Errorf("parameter of type %s cannot travel to workers as JSON: %v", t, err)
	}
	enc, err := json.Marshal(param)
	if err != nil {
		return nil, fmt.Errorf("parameter of type %s does not encode as JSON: %v", t, err)
	}
	back, err := decodeParam[P](enc)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(param, back) {
		return nil, fmt.Errorf("parameter of type %s does not survive its JSON encoding %s (workers would see another value): "+
			"keep it in plain exported fields", t, enc)
	}
	return enc, nil
}

func decodeParam[P any](params []byte) (P, error) {
	var v P
	if err := json.Unmarshal(params, &v); err != nil {
		return v, fmt.Errorf("gale: decoding parameter %s: %w", coder.TypeName[P](), err)
	}
	return v, nil
}

type mapWithKernel[P, In, Out any] struct{ fn func(P, In) Out }

func (k mapWithKernel[P, In, Out]) BuildWith(next any, params []byte) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: map output %s feeds %T", coder.TypeName[Out](), next)
	}
	param, err := decodeParam[P](params)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v In) { emit(fn(param, v)) }, nil
}

type flatMapWithKernel[P, In, Out any] struct{ fn func(P, In, func(Out)) }

func (k flatMapWithKernel[P, In, Out]) BuildWith(next any, params []byte) (any, error) {
	emit, ok := next.(func(Out))
	if !ok {
		return nil, fmt.Errorf("gale: flat map output %s feeds %T", coder.TypeName[Out](), next)
	}
	param, err := decodeParam[P](params)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v In) { fn(param, v, emit) }, nil
}

type filterWithKernel[P, T any] struct{ fn func(P, T) bool }

func (k filterWithKernel[P, T]) BuildWith(next any, params []byte) (any, error) {
	emit, ok := next.(func(T))
	if !ok {
		return nil, fmt.Errorf("gale: filter output %s feeds %T", coder.TypeName[T](), next)
	}
	param, err := decodeParam[P](params)
	if err != nil {
		return nil, err
	}
	fn := k.fn
	return func(v T) {
		if fn(param, v) {
			emit(v)
		}
	}, nil
}
