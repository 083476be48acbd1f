package gale

import (
	"context"
	"fmt"
	"slices"
	"unsafe"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/internal/strtab"
	"github.com/galeproject/gale/shuffle"
)

// A keyed shuffle's record is shuffle.AppendRecord of the encoded key and
// the encoded value (or partial aggregate), filed by shuffle.HashPartition
// of the encoded key: package shuffle owns both.

// partitions accumulates encoded records per partition.
type partitions struct {
	parts [][]byte
}

func newPartitions(n int) *partitions { return &partitions{parts: make([][]byte, n)} }

// add appends the record (k, v) to the partition of its encoded key k.
func (p *partitions) add(k, v []byte) {
	i := shuffle.HashPartition(k, len(p.parts))
	p.parts[i] = shuffle.AppendRecord(p.parts[i], k, v)
}

// maxCombineEntries bounds the map-side aggregation table; beyond it the
// partial aggregates are flushed into the partitions (the reduce side merges
// them anyway), so a task's memory stays bounded whatever the key count.
const maxCombineEntries = 1 << 20

// combineKernel is the keyed kernel of CombinePerKey.
type combineKernel[K comparable, V, A, O any] struct {
	c Combiner[V, A, O]
}

func (k *combineKernel[K, V, A, O]) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	w := &combineWriter[K, V, A, O]{c: k.c, out: newPartitions(parts), kc: coder.KeyFor[K](),
		vc: coder.For[V](), ac: coder.For[A](), combine: combine}
	if combine {
		w.table = make(map[K]A)
	}
	return w, nil
}

type combineWriter[K comparable, V, A, O any] struct {
	c       Combiner[V, A, O]
	out     *partitions
	kc      coder.Coder[K]
	vc      coder.Coder[V]
	ac      coder.Coder[A]
	combine bool
	table   map[K]A
	// ckey's accumulator cacc is cached outside table while cached.
	cached bool
	ckey   K
	cacc   A
	kbuf   []byte
	vbuf   []byte
	n      int64
}

func (w *combineWriter[K, V, A, O]) Emit() any {
	if !w.combine {
		return func(kv KV[K, V]) {
			w.n++
			w.kbuf = w.kc.Append(w.kbuf[:0], kv.Key)
			w.vbuf = w.vc.Append(w.vbuf[:0], kv.Value)
			w.out.add(w.kbuf, w.vbuf)
		}
	}
	return func(kv KV[K, V]) {
		w.n++
		// The last key's accumulator stays out of the table while its key
		// repeats: a global aggregate's one key, a hot key's run, input
		// sorted by key cost no table access per element.
		if w.cached && kv.Key == w.ckey {
			w.cacc = w.c.Add(w.cacc, kv.Value)
			return
		}
		if w.cached {
			w.table[w.ckey] = w.cacc
		}
		acc, ok := w.table[kv.Key]
		if !ok {
			if len(w.table) >= maxCombineEntries {
				w.flush()
			}
			acc = w.c.Create()
		}
		w.ckey, w.cacc, w.cached = kv.Key, w.c.Add(acc, kv.Value), true
	}
}

func (w *combineWriter[K, V, A, O]) flush() {
	if w.cached {
		w.table[w.ckey] = w.cacc
		var zero A
		w.cacc, w.cached = zero, false
	}
	for key, acc := range w.table {
		w.kbuf = w.kc.Append(w.kbuf[:0], key)
		w.vbuf = w.ac.Append(w.vbuf[:0], acc)
		w.out.add(w.kbuf, w.vbuf)
	}
	clear(w.table)
}

func (w *combineWriter[K, V, A, O]) Finish() ([][]byte, error) {
	if w.combine {
		w.flush()
	}
	return w.out.parts, nil
}

func (w *combineWriter[K, V, A, O]) Records() int64 { return w.n }

func (k *combineKernel[K, V, A, O]) Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error) {
	emit, ok := next.(func(KV[K, O]))
	if !ok {
		return 0, fmt.Errorf("gale: combine output %s feeds %T", coder.TypeName[KV[K, O]](), next)
	}
	vc, ac := coder.For[V](), coder.For[A]()
	table := map[string]A{}
	var in int64
	err := forRecords(ctx, segments, func(key, val []byte) (int, error) {
		in++
		acc, ok := table[string(key)]
		if combined {
			a, n, err := ac.Decode(val)
			if err != nil {
				return 0, err
			}
			if ok {
				a = k.c.Merge(acc, a)
			}
			table[string(key)] = a
			return n, nil
		}
		v, n, err := vc.Decode(val)
		if err != nil {
			return 0, err
		}
		if !ok {
			acc = k.c.Create()
		}
		table[string(key)] = k.c.Add(acc, v)
		return n, nil
	})
	if err != nil {
		return in, err
	}
	kc := coder.For[K]()
	for _, key := range sortedKeys(table) {
		kv, _, err := kc.Decode([]byte(key))
		if err != nil {
			return in, err
		}
		emit(KV[K, O]{kv, k.c.Extract(table[key])})
	}
	return in, nil
}

// MergeEncoded merges two encoded accumulators (kernel.Merger); a nil a
// means no accumulator yet.
func (k *combineKernel[K, V, A, O]) MergeEncoded(a, b []byte) ([]byte, error) {
	if a == nil {
		return append([]byte(nil), b...), nil
	}
	ac := coder.For[A]()
	x, _, err := ac.Decode(a)
	if err != nil {
		return nil, err
	}
	y, _, err := ac.Decode(b)
	if err != nil {
		return nil, err
	}
	return ac.Append(nil, k.c.Merge(x, y)), nil
}

// MergeEncoded adds two encoded counts (kernel.Merger); a nil a means no
// count yet.
func (countKernel[T]) MergeEncoded(a, b []byte) ([]byte, error) {
	if a == nil {
		return append([]byte(nil), b...), nil
	}
	ic := coder.For[int64]()
	x, _, err := ic.Decode(a)
	if err != nil {
		return nil, err
	}
	y, _, err := ic.Decode(b)
	if err != nil {
		return nil, err
	}
	return ic.Append(nil, x+y), nil
}

// countKernel is the keyed kernel of CountPerElement: the word count hot
// path, specialised so that the map side is one hash-table increment per
// element.
type countKernel[T comparable] struct{}

func (countKernel[T]) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	w := &countWriter[T]{out: newPartitions(parts), kc: coder.KeyFor[T](), combine: combine, table: map[T]int64{}}
	var zero T
	if _, ok := any(zero).(string); ok && combine {
		w.strings = strtab.New()
	}
	return w, nil
}

type countWriter[T comparable] struct {
	strings *strtab.Table // the table when T is string and combining
	out     *partitions
	kc      coder.Coder[T]
	combine bool
	table   map[T]int64
	kbuf    []byte
	vbuf    []byte
	n       int64
}

// varintOne is the encoding of the int64 1, a count of one.
var varintOne = []byte{2}

func (w *countWriter[T]) Emit() any {
	if !w.combine {
		return func(v T) {
			w.n++
			w.kbuf = w.kc.Append(w.kbuf[:0], v)
			w.out.add(w.kbuf, varintOne)
		}
	}
	if t := w.strings; t != nil {
		return func(v T) {
			w.n++
			// T is string here; reinterpreting avoids boxing v.
			t.Add(*(*string)(unsafe.Pointer(&v)), 1)
			if t.Len() > maxCombineEntries {
				w.flush()
			}
		}
	}
	return func(v T) {
		w.n++
		w.table[v]++
		if len(w.table) > maxCombineEntries {
			w.flush()
		}
	}
}

func (w *countWriter[T]) flush() {
	ic := coder.For[int64]()
	if t := w.strings; t != nil {
		sc := coder.For[string]()
		t.Range(func(key string, n int64) {
			w.kbuf = sc.Append(w.kbuf[:0], key)
			w.vbuf = ic.Append(w.vbuf[:0], n)
			w.out.add(w.kbuf, w.vbuf)
		})
		t.Reset()
		return
	}
	for key, n := range w.table {
		w.kbuf = w.kc.Append(w.kbuf[:0], key)
		w.vbuf = ic.Append(w.vbuf[:0], n)
		w.out.add(w.kbuf, w.vbuf)
	}
	clear(w.table)
}

func (w *countWriter[T]) Finish() ([][]byte, error) {
	w.flush()
	return w.out.parts, nil
}

func (w *countWriter[T]) Records() int64 { return w.n }

func (countKernel[T]) Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error) {
	emit, ok := next.(func(KV[T, int64]))
	if !ok {
		return 0, fmt.Errorf("gale: count output %s feeds %T", coder.TypeName[KV[T, int64]](), next)
	}
	ic := coder.For[int64]()
	table := map[string]int64{}
	var in int64
	err := forRecords(ctx, segments, func(key, val []byte) (int, error) {
		in++
		n, k, err := ic.Decode(val)
		if err != nil {
			return 0, err
		}
		table[string(key)] += n
		return k, nil
	})
	if err != nil {
		return in, err
	}
	kc := coder.For[T]()
	for _, key := range sortedKeys(table) {
		kv, _, err := kc.Decode([]byte(key))
		if err != nil {
			return in, err
		}
		emit(KV[T, int64]{kv, table[key]})
	}
	return in, nil
}

// groupKernel is the keyed kernel of GroupByKey.
type groupKernel[K comparable, V any] struct{}

func (groupKernel[K, V]) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	return &combineWriter[K, V, []V, []V]{out: newPartitions(parts), kc: coder.KeyFor[K](), vc: coder.For[V]()}, nil
}

func (groupKernel[K, V]) Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error) {
	emit, ok := next.(func(KV[K, []V]))
	if !ok {
		return 0, fmt.Errorf("gale: group output %s feeds %T", coder.TypeName[KV[K, []V]](), next)
	}
	vc := coder.For[V]()
	groups := map[string][]V{}
	var in int64
	err := forRecords(ctx, segments, func(key, val []byte) (int, error) {
		in++
		v, n, err := vc.Decode(val)
		if err != nil {
			return 0, err
		}
		groups[string(key)] = append(groups[string(key)], v)
		return n, nil
	})
	if err != nil {
		return in, err
	}
	kc := coder.For[K]()
	for _, key := range sortedKeys(groups) {
		kv, _, err := kc.Decode([]byte(key))
		if err != nil {
			return in, err
		}
		emit(KV[K, []V]{kv, groups[key]})
	}
	return in, nil
}

// forRecords walks the records of segments in order; fn decodes the value
// val and returns how many bytes the decoding used, which must be all of
// them.
func forRecords(ctx context.Context, segments [][]byte, fn func(key, val []byte) (int, error)) error {
	for si, seg := range segments {
		if err := ctx.Err(); err != nil {
			return err
		}
		for rest := seg; len(rest) > 0; {
			off := len(seg) - len(rest)
			key, val, next, err := shuffle.ReadRecord(rest)
			if err != nil {
				return fmt.Errorf("gale: shuffle segment %d at byte %d: %w", si, off, err)
			}
			used, err := fn(key, val)
			if err == nil && used != len(val) {
				err = fmt.Errorf("%w: value of %d bytes decoded from %d", coder.ErrCorrupt, used, len(val))
			}
			if err != nil {
				return fmt.Errorf("gale: shuffle segment %d at byte %d: %w", si, off, err)
			}
			rest = next
		}
	}
	return nil
}

// sortedKeys returns m's keys in byte order, so reduce output is
// deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
