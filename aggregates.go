package gale

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
)

// Global aggregates reduce a whole collection to one element without a
// constant key in the user's code. Each is a tree aggregation: every map
// task folds the elements it sees into one partial result (combiner
// lifting), and one reduce task merges the partial results. The shuffle has
// exactly one partition whatever the backend's width.

// globally aggregates all of c with comb. With empty set, an empty input
// gives the element empty returns for the combiner (Count's 0); otherwise
// it gives none.
func globally[T, A, O any](c Collection[T], comb Combiner[T, A, O], label, loc string, empty func(Combiner[T, A, O]) (O, bool)) Collection[O] {
	p := c.p
	if p == nil {
		panic("gale: " + label + " of a zero Collection")
	}
	keyed := narrowNamed[T, KV[bool, T]](c, label+".Key", "gale.unitKey", mapKernel[T, KV[bool, T]]{unitKey[T]}, loc)
	combined := combinePerKey(keyed, comb, label, loc)
	n := p.nodes[combined.id]
	n.Keys, n.Partitions = 1, 1 // one constant key: one partition, one reduce task
	if empty != nil && comb != nil {
		// The one reduce task emits the empty result when no partial
		// result arrived. The wrapper is a family over the combine
		// kernel's names, so a worker wraps the kernel the driver named.
		reg, inner := p.reg, n.Kernel
		wrap := func(config string) (any, error) {
			ck, err := kernel.Lookup[*combineKernel[bool, T, A, O]](reg, inner[:len(inner)-len(config)]+config)
			if err != nil {
				return nil, err
			}
			return &globalKernel[T, A, O]{combineKernel: ck, empty: func() (O, bool) { return empty(ck.c) }}, nil
		}
		config := ""
		if _, ok := any(comb).(identified); !ok {
			// A user combiner's kernel name ends with its JSON encoding.
			prefix := fmt.Sprintf("combine:%s:%s:", typeString(reflect.TypeOf(comb)), coder.TypeName[bool]())
			config = strings.TrimPrefix(inner, prefix)
		}
		p.reg.PutFamily("global:"+inner[:len(inner)-len(config)], wrap)
		n.Kernel = "global:" + inner
	}
	return narrowNamed[KV[bool, O], O](combined, label+".Value", "gale.kvValue", mapKernel[KV[bool, O], O]{kvValue[bool, O]}, loc)
}

// globalKernel is the keyed kernel of a global aggregate with a result for
// an empty input.
type globalKernel[T, A, O any] struct {
	*combineKernel[bool, T, A, O]
	empty func() (O, bool)
}

func (k *globalKernel[T, A, O]) Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error) {
	emit, ok := next.(func(KV[bool, O]))
	if !ok {
		return 0, fmt.Errorf("gale: global aggregate output %s feeds %T", coder.TypeName[KV[bool, O]](), next)
	}
	emitted := false
	n, err := k.combineKernel.Reduce(ctx, segments, combined, func(kv KV[bool, O]) { emitted = true; emit(kv) })
	if err == nil && !emitted {
		if v, ok := k.empty(); ok {
			emit(KV[bool, O]{true, v})
		}
	}
	return n, err
}

var _ kernel.Keyed = (*globalKernel[int, int, int])(nil)

// Combine combines all elements of c with comb into one element (for an
// empty input, comb's Extract of Create). Like CombinePerKey, the combiner
// is lifted: each map task sends one partial accumulator to a single
// reduce task.
func Combine[T, A, O any](c Collection[T], comb Combiner[T, A, O]) Collection[O] {
	return globally(c, comb, "Combine", callerLoc(1), func(c Combiner[T, A, O]) (O, bool) { return c.Extract(c.Create()), true })
}

// Count counts the elements of c: one element, 0 for an empty input.
func Count[T any](c Collection[T]) Collection[int64] {
	return globally(c, Combiner[T, int64, int64](countCombiner[T]{}), "Count", callerLoc(1), func(Combiner[T, int64, int64]) (int64, bool) { return 0, true })
}

// Sum sums the elements of c: one element, 0 for an empty input.
func Sum[T Number](c Collection[T]) Collection[T] {
	return globally(c, Combiner[T, T, T](sumCombiner[T]{}), "Sum", callerLoc(1), func(Combiner[T, T, T]) (T, bool) { var z T; return z, true })
}

// Min is the smallest element of c, Max the largest; both give no element
// for an empty input. NaNs are ignored by Min and Max of floats unless every
// element is NaN.
func Min[T cmp.Ordered](c Collection[T]) Collection[T] {
	return globally(c, Combiner[T, extremeAcc[T], T](extremeCombiner[T]{}), "Min", callerLoc(1), nil)
}

// Max is the largest element of c; see Min.
func Max[T cmp.Ordered](c Collection[T]) Collection[T] {
	return globally(c, Combiner[T, extremeAcc[T], T](extremeCombiner[T]{Largest: true}), "Max", callerLoc(1), nil)
}

// Mean is the arithmetic mean of c as a float64; no element for an empty
// input.
func Mean[T Number](c Collection[T]) Collection[float64] {
	return globally(c, Combiner[T, meanAcc, float64](meanCombiner[T]{}), "Mean", callerLoc(1), nil)
}

// MinPerKey, MaxPerKey and MeanPerKey are Min, Max and Mean of each key's
// values.
func MinPerKey[K comparable, V cmp.Ordered](c Collection[KV[K, V]]) Collection[KV[K, V]] {
	return combinePerKey(c, Combiner[V, extremeAcc[V], V](extremeCombiner[V]{}), "MinPerKey", callerLoc(1))
}

// MaxPerKey is the largest value of each key.
func MaxPerKey[K comparable, V cmp.Ordered](c Collection[KV[K, V]]) Collection[KV[K, V]] {
	return combinePerKey(c, Combiner[V, extremeAcc[V], V](extremeCombiner[V]{Largest: true}), "MaxPerKey", callerLoc(1))
}

// MeanPerKey is the mean of each key's values.
func MeanPerKey[K comparable, V Number](c Collection[KV[K, V]]) Collection[KV[K, float64]] {
	return combinePerKey(c, Combiner[V, meanAcc, float64](meanCombiner[V]{}), "MeanPerKey", callerLoc(1))
}

// Largest is the n largest elements of c, largest first (fewer if c has
// fewer): one element, an empty slice for an empty input. Each map task
// keeps only its n largest.
func Largest[T cmp.Ordered](c Collection[T], n int) Collection[[]T] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "Largest: need n >= 1, got %d", n)
	}
	return globally(c, Combiner[T, []T, []T](topCombiner[T]{N: n, Largest: true}), "Largest", loc, func(Combiner[T, []T, []T]) ([]T, bool) { return []T{}, true })
}

// Smallest is the n smallest elements of c, smallest first; see Largest.
func Smallest[T cmp.Ordered](c Collection[T], n int) Collection[[]T] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "Smallest: need n >= 1, got %d", n)
	}
	return globally(c, Combiner[T, []T, []T](topCombiner[T]{N: n}), "Smallest", loc, func(Combiner[T, []T, []T]) ([]T, bool) { return []T{}, true })
}

// LargestPerKey is the n largest values of each key, largest first.
func LargestPerKey[K comparable, V cmp.Ordered](c Collection[KV[K, V]], n int) Collection[KV[K, []V]] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "LargestPerKey: need n >= 1, got %d", n)
	}
	return combinePerKey(c, Combiner[V, []V, []V](topCombiner[V]{N: n, Largest: true}), "LargestPerKey", loc)
}

// SmallestPerKey is the n smallest values of each key, smallest first.
func SmallestPerKey[K comparable, V cmp.Ordered](c Collection[KV[K, V]], n int) Collection[KV[K, []V]] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "SmallestPerKey: need n >= 1, got %d", n)
	}
	return combinePerKey(c, Combiner[V, []V, []V](topCombiner[V]{N: n}), "SmallestPerKey", loc)
}

// Distinct keeps one of each distinct element of c, in no particular
// order. Float elements follow the key rules of docs/api.md (-0 is 0, all
// NaNs are one element).
func Distinct[T comparable](c Collection[T]) Collection[T] {
	loc := callerLoc(1)
	counts := CountPerElement(c)
	c.p.nodes[counts.id].Loc = loc
	return narrowNamed[KV[T, int64], T](counts, "Distinct", "gale.kvKey", mapKernel[KV[T, int64], T]{kvKey[T, int64]}, loc)
}

func kvKey[K, V any](kv KV[K, V]) K { return kv.Key }

// Built-in combiners of the aggregates. They are identified by their
// configuration (combinerID), so they need no JSON round trip.

// extremeAcc is Min's and Max's accumulator: a value, once one has been
// seen.
type extremeAcc[T cmp.Ordered] struct {
	Set bool
	V   T
}

type extremeCombiner[T cmp.Ordered] struct{ Largest bool }

func (e extremeCombiner[T]) combinerID() (string, error) {
	return fmt.Sprintf("extreme:%s:largest=%v", coder.TypeName[T](), e.Largest), nil
}
func (extremeCombiner[T]) Create() extremeAcc[T] { return extremeAcc[T]{} }
func (e extremeCombiner[T]) Add(a extremeAcc[T], v T) extremeAcc[T] {
	return e.Merge(a, extremeAcc[T]{true, v})
}
func (e extremeCombiner[T]) Merge(a, b extremeAcc[T]) extremeAcc[T] {
	switch {
	case !a.Set:
		return b
	case !b.Set:
		return a
	case a.V != a.V: // NaN loses to any number
		return b
	case b.V != b.V:
		return a
	}
	if (cmp.Less(b.V, a.V)) != e.Largest {
		return b
	}
	return a
}
func (extremeCombiner[T]) Extract(a extremeAcc[T]) T { return a.V }

// meanAcc is Mean's accumulator.
type meanAcc struct {
	Sum float64
	N   int64
}

type meanCombiner[T Number] struct{}

func (meanCombiner[T]) combinerID() (string, error) { return "mean:" + coder.TypeName[T](), nil }
func (meanCombiner[T]) Create() meanAcc             { return meanAcc{} }
func (meanCombiner[T]) Add(a meanAcc, v T) meanAcc  { return meanAcc{a.Sum + float64(v), a.N + 1} }
func (meanCombiner[T]) Merge(a, b meanAcc) meanAcc  { return meanAcc{a.Sum + b.Sum, a.N + b.N} }
func (meanCombiner[T]) Extract(a meanAcc) float64   { return a.Sum / float64(a.N) }

// topCombiner keeps the N largest (or smallest) values, best first.
type topCombiner[T cmp.Ordered] struct {
	N       int
	Largest bool
}

func (t topCombiner[T]) combinerID() (string, error) {
	return fmt.Sprintf("top:%s:n=%d:largest=%v", coder.TypeName[T](), t.N, t.Largest), nil
}
func (topCombiner[T]) Create() []T { return nil }

// better orders values best first; NaNs come last.
func (t topCombiner[T]) better(a, b T) int {
	if a != a || b != b {
		switch {
		case a != a && b != b:
			return 0
		case a != a:
			return 1
		}
		return -1
	}
	if t.Largest {
		return cmp.Compare(b, a)
	}
	return cmp.Compare(a, b)
}

func (t topCombiner[T]) Add(acc []T, v T) []T {
	if len(acc) == t.N && t.better(v, acc[len(acc)-1]) >= 0 {
		return acc // not better than the worst kept: the common case
	}
	i, _ := slices.BinarySearchFunc(acc, v, t.better)
	if i >= t.N {
		return acc
	}
	acc = slices.Insert(acc, i, v)
	if len(acc) > t.N {
		acc = acc[:t.N]
	}
	return acc
}

func (t topCombiner[T]) Merge(a, b []T) []T {
	out := make([]T, 0, min(len(a)+len(b), t.N))
	for len(out) < t.N && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && t.better(a[0], b[0]) <= 0) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

func (topCombiner[T]) Extract(a []T) []T {
	if a == nil {
		return []T{}
	}
	return a
}
