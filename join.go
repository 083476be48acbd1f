package gale

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

func pairs[K comparable, A, B any](jk joinKind) func(KV[K, CoGrouped[A, B]], func(KV[K, Joined[A, B]])) {
	return func(kv KV[K, CoGrouped[A, B]], emit func(KV[K, Joined[A, B]])) {
		g := kv.Value
		switch {
		case len(g.Left) > 0 && len(g.Right) > 0:
			for _, l := range g.Left {
				for _, r := range g.Right {
					emit(KV[K, Joined[A, B]]{kv.Key, Joined[A, B]{Left: l, Right: r, HasLeft: true, HasRight: true}})
				}
			}
		case len(g.Left) > 0 && jk.keepLeft:
			for _, l := range g.Left {
				emit(KV[K, Joined[A, B]]{kv.Key, Joined[A, B]{Left: l, HasLeft: true}})
			}
		case len(g.Right) > 0 && jk.keepRight:
			for _, r := range g.Right {
				emit(KV[K, Joined[A, B]]{kv.Key, Joined[A, B]{Right: r, HasRight: true}})
			}
		}
	}
}

func join[K comparable, A, B any](a Collection[KV[K, A]], b Collection[KV[K, B]], label string, jk joinKind, loc string) Collection[KV[K, Joined[A, B]]] {
	g := coGroup(a, b, loc)
	name := "gale.innerJoin"
	switch {
	case jk.keepLeft && jk.keepRight:
		name = "gale.outerJoin"
	case jk.keepLeft:
		name = "gale.leftJoin"
	}
	return narrowNamed[KV[K, CoGrouped[A, B]], KV[K, Joined[A, B]]](g, label, name,
		flatMapKernel[KV[K, CoGrouped[A, B]], KV[K, Joined[A, B]]]{pairs[K, A, B](jk)}, loc)
}

// Join is the inner join of a and b: for every key, every pair of a value
// of a and a value of b (both HasLeft and HasRight set).
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
