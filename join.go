package gale

import (
	"fmt"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/planner"
)

// CoGrouped holds the values two collections have for one key.
type CoGrouped[A, B any] struct {
	Left  []A
	Right []B
}

// Joined is one pair of a join: a value of the left collection and one of
// the right for the same key. In a LeftJoin or OuterJoin a side may be
// missing: HasLeft or HasRight is then false and its field the zero value.
type Joined[A, B any] struct {
	Left     A
	Right    B
	HasLeft  bool
	HasRight bool
}

// sided is the element of the shuffle behind a co-group: a value of one
// side.
type sided[A, B any] struct {
	Right bool
	A     A
	B     B
}

// The encoding of a sided value: a tag byte, then the one value it holds.
// The right side's tag is the smaller, so within a key a join's sorted
// reduce sees every right value before the first left value.
const (
	sideRightTag = 0
	sideLeftTag  = 1
)

// GaleCoder returns the coder of sided[A, B] (coder.Provider): the tag
// and the side's value only, not the other side's zero value.
func (sided[A, B]) GaleCoder() any { return sidedCoder[A, B]{coder.For[A](), coder.For[B]()} }

type sidedCoder[A, B any] struct {
	a coder.Coder[A]
	b coder.Coder[B]
}

func (c sidedCoder[A, B]) Append(buf []byte, v sided[A, B]) []byte {
	if v.Right {
		return c.b.Append(append(buf, sideRightTag), v.B)
	}
	return c.a.Append(append(buf, sideLeftTag), v.A)
}

func (c sidedCoder[A, B]) Decode(b []byte) (sided[A, B], int, error) {
	var v sided[A, B]
	if len(b) == 0 || b[0] > sideLeftTag {
		return v, 0, fmt.Errorf("%w: bad join side tag", coder.ErrCorrupt)
	}
	var n int
	var err error
	if b[0] == sideRightTag {
		v.Right = true
		v.B, n, err = c.b.Decode(b[1:])
	} else {
		v.A, n, err = c.a.Decode(b[1:])
	}
	return v, n + 1, err
}

func tagLeft[K, A, B any](kv KV[K, A]) KV[K, sided[A, B]] {
	return KV[K, sided[A, B]]{kv.Key, sided[A, B]{A: kv.Value}}
}

func tagRight[K, A, B any](kv KV[K, B]) KV[K, sided[A, B]] {
	return KV[K, sided[A, B]]{kv.Key, sided[A, B]{Right: true, B: kv.Value}}
}

func splitSides[K comparable, A, B any](kv KV[K, []sided[A, B]]) KV[K, CoGrouped[A, B]] {
	var g CoGrouped[A, B]
	for _, s := range kv.Value {
		if s.Right {
			g.Right = append(g.Right, s.B)
		} else {
			g.Left = append(g.Left, s.A)
		}
	}
	return KV[K, CoGrouped[A, B]]{kv.Key, g}
}

// CoGroupByKey groups two keyed collections by key: for every key present
// in either, the values each has for it (one shuffle for both). The
// values of a key arrive in a deterministic order for a given plan.
func CoGroupByKey[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]]) Collection[KV[K, CoGrouped[A, B]]] {
	return coGroup(a, b, callerLoc(1))
}

func coGroup[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]], loc string) Collection[KV[K, CoGrouped[A, B]]] {
	if a.p == nil || b.p == nil {
		panic("gale: CoGroupByKey of a zero Collection")
	}
	if a.p != b.p {
		a.p.fail(loc, "CoGroupByKey: the collections belong to different pipelines")
	}
	checkCoder[A](a.p, loc, "CoGroupByKey left value")
	checkCoder[B](a.p, loc, "CoGroupByKey right value")
	left := narrowNamed[KV[K, A], KV[K, sided[A, B]]](a, "CoGroupByKey.Left", "gale.tagLeft", mapKernel[KV[K, A], KV[K, sided[A, B]]]{tagLeft[K, A, B]}, loc)
	right := narrowNamed[KV[K, B], KV[K, sided[A, B]]](b, "CoGroupByKey.Right", "gale.tagRight", mapKernel[KV[K, B], KV[K, sided[A, B]]]{tagRight[K, A, B]}, loc)
	both := Flatten(left, right)
	a.p.nodes[both.id].Loc = loc
	grouped := GroupByKey(both)
	a.p.nodes[grouped.id].Loc = loc
	return narrowNamed[KV[K, []sided[A, B]], KV[K, CoGrouped[A, B]]](grouped, "CoGroupByKey.Split", "gale.splitSides",
		mapKernel[KV[K, []sided[A, B]], KV[K, CoGrouped[A, B]]]{splitSides[K, A, B]}, loc)
}

// joinKind says which unmatched values a join keeps.
type joinKind struct{ keepLeft, keepRight bool }

func join[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]], label string, jk joinKind, loc string) Collection[KV[K, Joined[A, B]]] {
	if a.p == nil || b.p == nil {
		panic("gale: " + label + " of a zero Collection")
	}
	p := a.p
	if b.p != p {
		p.fail(loc, "%s: the collections belong to different pipelines", label)
	}
	checkCoder[K](p, loc, label+" key")
	checkCoder[A](p, loc, label+" left value")
	checkCoder[B](p, loc, label+" right value")
	left := narrowNamed[KV[K, A], KV[K, sided[A, B]]](a, label+".Left", "gale.tagLeft", mapKernel[KV[K, A], KV[K, sided[A, B]]]{tagLeft[K, A, B]}, loc)
	right := narrowNamed[KV[K, B], KV[K, sided[A, B]]](b, label+".Right", "gale.tagRight", mapKernel[KV[K, B], KV[K, sided[A, B]]]{tagRight[K, A, B]}, loc)
	both := Flatten(left, right)
	p.nodes[both.id].Loc = loc
	// One shuffle whose reduce pairs the values as it streams through
	// the key's records (joinKernel, groups.go): no key's group is built.
	kname := fmt.Sprintf("join:left=%v:right=%v:%s:%s:%s", jk.keepLeft, jk.keepRight,
		coder.TypeName[K](), coder.TypeName[A](), coder.TypeName[B]())
	p.reg.Put(kname, joinKernel[K, A, B]{jk: jk})
	return shuffleNode[KV[K, sided[A, B]], KV[K, Joined[A, B]]](both, planner.GroupByKey, label, kname, false, loc)
}

// Join is the inner join of a and b: for every key, every pair of a value
// of a and a value of b (both HasLeft and HasRight set). Its reduce holds
// only one key's values of b at a time (spilling them past a quarter of
// the task's memory budget) and streams a's past them: put the larger
// side, the one with hot keys, first.
func Join[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]]) Collection[KV[K, Joined[A, B]]] {
	return join(a, b, "Join", joinKind{}, callerLoc(1))
}

// LeftJoin is Join plus, for a key b lacks, every value of a alone
// (HasRight false).
func LeftJoin[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]]) Collection[KV[K, Joined[A, B]]] {
	return join(a, b, "LeftJoin", joinKind{keepLeft: true}, callerLoc(1))
}

// OuterJoin is Join plus every value of a key only one side has, alone.
func OuterJoin[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]]) Collection[KV[K, Joined[A, B]]] {
	return join(a, b, "OuterJoin", joinKind{keepLeft: true, keepRight: true}, callerLoc(1))
}
