package gale

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/galeproject/gale/internal/coder"
)

// Sample is a uniform random sample of n elements of c, without
// replacement (all of c, in random order, if it holds fewer): one element,
// an empty slice for an empty input. Every subset of n elements is equally
// likely. It is a tree aggregation like Largest: each element draws a
// random priority, each map task keeps the n elements of lowest priority,
// and one reduce task merges them. A retried task draws again, so two runs
// give different samples.
func Sample[T any](c Collection[T], n int) Collection[[]T] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "Sample: need n >= 1, got %d", n)
	}
	return globally(c, Combiner[T, []prioritized[T], []T](sampleCombiner[T]{N: n}), "Sample", loc,
		func(Combiner[T, []prioritized[T], []T]) ([]T, bool) { return []T{}, true })
}

// SamplePerKey is Sample of each key's values.
func SamplePerKey[K comparable, V any](c Collection[KV[K, V]], n int) Collection[KV[K, []V]] {
	loc := callerLoc(1)
	if n < 1 {
		c.p.fail(loc, "SamplePerKey: need n >= 1, got %d", n)
	}
	return combinePerKey(c, Combiner[V, []prioritized[V], []V](sampleCombiner[V]{N: n}), "SamplePerKey", loc)
}

// prioritized is an element with its random priority.
type prioritized[T any] struct {
	P uint64
	V T
}

// sampleCombiner keeps the N elements of lowest priority, in priority
// order: a bottom-N sketch, whose merge is again the N lowest of both.
type sampleCombiner[T any] struct{ N int }

func (s sampleCombiner[T]) combinerID() (string, error) {
	return fmt.Sprintf("sample:%s:n=%d", coder.TypeName[T](), s.N), nil
}

func (sampleCombiner[T]) Create() []prioritized[T] { return nil }

func byPriority[T any](a, b prioritized[T]) int { return cmp.Compare(a.P, b.P) }

func (s sampleCombiner[T]) Add(acc []prioritized[T], v T) []prioritized[T] {
	e := prioritized[T]{P: rand.Uint64(), V: v}
	if len(acc) == s.N && e.P >= acc[len(acc)-1].P {
		return acc
	}
	i, _ := slices.BinarySearchFunc(acc, e, byPriority[T])
	acc = slices.Insert(acc, i, e)
	if len(acc) > s.N {
		acc = acc[:s.N]
	}
	return acc
}

func (s sampleCombiner[T]) Merge(a, b []prioritized[T]) []prioritized[T] {
	out := make([]prioritized[T], 0, min(len(a)+len(b), s.N))
	for len(out) < s.N && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].P <= b[0].P) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

func (sampleCombiner[T]) Extract(acc []prioritized[T]) []T {
	out := make([]T, len(acc))
	for i, e := range acc {
		out[i] = e.V
	}
	return out
}
