package gale

import "fmt"

// CoGroupByKey over more than two collections. Go has no variadic type
// parameters, so collections of different value types co-group through
// CoGroupByKey3 and CoGroupByKey4, and any number of collections of one
// value type through CoGroupByKeyN. Each is one shuffle for all inputs.

// CoGrouped3 holds the values three collections have for one key.
type CoGrouped3[A, B, C any] struct {
	First  []A
	Second []B
	Third  []C
}

// CoGrouped4 holds the values four collections have for one key.
type CoGrouped4[A, B, C, D any] struct {
	First  []A
	Second []B
	Third  []C
	Fourth []D
}

// tagged4 is the element of the shuffle behind CoGroupByKey3 and 4: a
// value of input Side (0-based).
type tagged4[A, B, C, D any] struct {
	Side uint8
	A    A
	B    B
	C    C
	D    D
}

func tag1[K, A, B, C, D any](kv KV[K, A]) KV[K, tagged4[A, B, C, D]] {
	return KV[K, tagged4[A, B, C, D]]{kv.Key, tagged4[A, B, C, D]{Side: 0, A: kv.Value}}
}
func tag2[K, A, B, C, D any](kv KV[K, B]) KV[K, tagged4[A, B, C, D]] {
	return KV[K, tagged4[A, B, C, D]]{kv.Key, tagged4[A, B, C, D]{Side: 1, B: kv.Value}}
}
func tag3[K, A, B, C, D any](kv KV[K, C]) KV[K, tagged4[A, B, C, D]] {
	return KV[K, tagged4[A, B, C, D]]{kv.Key, tagged4[A, B, C, D]{Side: 2, C: kv.Value}}
}
func tag4[K, A, B, C, D any](kv KV[K, D]) KV[K, tagged4[A, B, C, D]] {
	return KV[K, tagged4[A, B, C, D]]{kv.Key, tagged4[A, B, C, D]{Side: 3, D: kv.Value}}
}

func split4[K comparable, A, B, C, D any](kv KV[K, []tagged4[A, B, C, D]]) KV[K, CoGrouped4[A, B, C, D]] {
	var g CoGrouped4[A, B, C, D]
	for _, t := range kv.Value {
		switch t.Side {
		case 0:
			g.First = append(g.First, t.A)
		case 1:
			g.Second = append(g.Second, t.B)
		case 2:
			g.Third = append(g.Third, t.C)
		default:
			g.Fourth = append(g.Fourth, t.D)
		}
	}
	return KV[K, CoGrouped4[A, B, C, D]]{kv.Key, g}
}

func three[K comparable, A, B, C any](kv KV[K, CoGrouped4[A, B, C, struct{}]]) KV[K, CoGrouped3[A, B, C]] {
	g := kv.Value
	return KV[K, CoGrouped3[A, B, C]]{kv.Key, CoGrouped3[A, B, C]{g.First, g.Second, g.Third}}
}

// CoGroupByKey3 groups three keyed collections by key: for every key
// present in any, the values each has for it.
func CoGroupByKey3[K comparable, A, B, C any](a Collection[KV[K, A]], b Collection[KV[K, B]], c Collection[KV[K, C]]) Collection[KV[K, CoGrouped3[A, B, C]]] {
	loc := callerLoc(1)
	g := coGroup4[K, A, B, C, struct{}](a, b, c, Collection[KV[K, struct{}]]{}, "CoGroupByKey3", loc)
	return narrowNamed[KV[K, CoGrouped4[A, B, C, struct{}]], KV[K, CoGrouped3[A, B, C]]](g, "CoGroupByKey3.Split", "gale.three",
		mapKernel[KV[K, CoGrouped4[A, B, C, struct{}]], KV[K, CoGrouped3[A, B, C]]]{three[K, A, B, C]}, loc)
}

// CoGroupByKey4 groups four keyed collections by key, as CoGroupByKey3.
func CoGroupByKey4[K comparable, A, B, C, D any](a Collection[KV[K, A]], b Collection[KV[K, B]], c Collection[KV[K, C]], d Collection[KV[K, D]]) Collection[KV[K, CoGrouped4[A, B, C, D]]] {
	return coGroup4(a, b, c, d, "CoGroupByKey4", callerLoc(1))
}

// coGroup4 co-groups a, b, c and, unless it is the zero Collection, d.
func coGroup4[K comparable, A, B, C, D any](a Collection[KV[K, A]], b Collection[KV[K, B]], c Collection[KV[K, C]], d Collection[KV[K, D]], label, loc string) Collection[KV[K, CoGrouped4[A, B, C, D]]] {
	if a.p == nil || b.p == nil || c.p == nil {
		panic("gale: " + label + " of a zero Collection")
	}
	p := a.p
	if b.p != p || c.p != p || (d.p != nil && d.p != p) {
		p.fail(loc, "%s: the collections belong to different pipelines", label)
	}
	checkCoder[A](p, loc, label+" first value")
	checkCoder[B](p, loc, label+" second value")
	checkCoder[C](p, loc, label+" third value")
	checkCoder[D](p, loc, label+" fourth value")
	type T = tagged4[A, B, C, D]
	ins := []Collection[KV[K, T]]{
		narrowNamed[KV[K, A], KV[K, T]](a, label+".First", "gale.tag1", mapKernel[KV[K, A], KV[K, T]]{tag1[K, A, B, C, D]}, loc),
		narrowNamed[KV[K, B], KV[K, T]](b, label+".Second", "gale.tag2", mapKernel[KV[K, B], KV[K, T]]{tag2[K, A, B, C, D]}, loc),
		narrowNamed[KV[K, C], KV[K, T]](c, label+".Third", "gale.tag3", mapKernel[KV[K, C], KV[K, T]]{tag3[K, A, B, C, D]}, loc),
	}
	if d.p != nil {
		ins = append(ins, narrowNamed[KV[K, D], KV[K, T]](d, label+".Fourth", "gale.tag4", mapKernel[KV[K, D], KV[K, T]]{tag4[K, A, B, C, D]}, loc))
	}
	all := Flatten(ins...)
	p.nodes[all.id].Loc = loc
	grouped := GroupByKey(all)
	p.nodes[grouped.id].Loc = loc
	return narrowNamed[KV[K, []T], KV[K, CoGrouped4[A, B, C, D]]](grouped, label+".Split", "gale.split4",
		mapKernel[KV[K, []T], KV[K, CoGrouped4[A, B, C, D]]]{split4[K, A, B, C, D]}, loc)
}

// taggedN is the element of the shuffle behind CoGroupByKeyN.
type taggedN[V any] struct {
	Side int
	V    V
}

// tagKernel tags values with their input's index.
type tagKernel[K, V any] struct{ side int }

func (k tagKernel[K, V]) Build(next any) (any, error) {
	emit, ok := next.(func(KV[K, taggedN[V]]))
	if !ok {
		return nil, fmt.Errorf("gale: co-group input feeds %T", next)
	}
	side := k.side
	return func(kv KV[K, V]) { emit(KV[K, taggedN[V]]{kv.Key, taggedN[V]{side, kv.Value}}) }, nil
}

// splitNKernel splits a key's tagged values into one slice per input.
type splitNKernel[K, V any] struct{ n int }

func (k splitNKernel[K, V]) Build(next any) (any, error) {
	emit, ok := next.(func(KV[K, [][]V]))
	if !ok {
		return nil, fmt.Errorf("gale: co-group output feeds %T", next)
	}
	n := k.n
	return func(kv KV[K, []taggedN[V]]) {
		out := make([][]V, n)
		for _, t := range kv.Value {
			out[t.Side] = append(out[t.Side], t.V)
		}
		emit(KV[K, [][]V]{kv.Key, out})
	}, nil
}

// CoGroupByKeyN groups any number of keyed collections of one value type
// by key: for every key present in any, a slice with one element per
// input (in the order given) holding that input's values for the key.
func CoGroupByKeyN[K comparable, V any](cs ...Collection[KV[K, V]]) Collection[KV[K, [][]V]] {
	loc := callerLoc(1)
	if len(cs) == 0 || cs[0].p == nil {
		panic("gale: CoGroupByKeyN needs at least one collection")
	}
	p := cs[0].p
	checkCoder[V](p, loc, "CoGroupByKeyN value")
	ins := make([]Collection[KV[K, taggedN[V]]], len(cs))
	for i, c := range cs {
		if c.p != p {
			p.fail(loc, "CoGroupByKeyN: input %d belongs to another pipeline", i)
			c.p = p
		}
		// The input's index is part of the kernel's name: each tagging
		// kernel is a distinct registered value.
		ins[i] = narrowNamed[KV[K, V], KV[K, taggedN[V]]](c, fmt.Sprintf("CoGroupByKeyN.Tag%d", i), fmt.Sprintf("gale.tag%d", i),
			tagKernel[K, V]{side: i}, loc)
	}
	all := Flatten(ins...)
	p.nodes[all.id].Loc = loc
	grouped := GroupByKey(all)
	p.nodes[grouped.id].Loc = loc
	return narrowNamed[KV[K, []taggedN[V]], KV[K, [][]V]](grouped, "CoGroupByKeyN.Split", fmt.Sprintf("gale.splitN%d", len(cs)),
		splitNKernel[K, V]{n: len(cs)}, loc)
}
