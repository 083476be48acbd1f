package gale

import (
	"context"
	"fmt"
	"slices"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/internal/strtab"
)

// A shuffle record is the length-prefixed encoding of the key followed by
// the encoding of the value (or of the partial aggregate).

// partitions accumulates encoded records per partition.
type partitions struct {
	parts [][]byte
}

func newPartitions(n int) *partitions { return &partitions{parts: make([][]byte, n)} }

// key appends the encoded key k to its partition and returns the partition
// index; the caller appends the value to p.parts[i].
func (p *partitions) key(k []byte) int {
	i := 0
	if len(p.parts) > 1 {
		i = int(xxhash.Sum64(k) % uint64(len(p.parts)))
	}
	p.parts[i] = coder.AppendBytes(p.parts[i], k)
	return i
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
	w := &combineWriter[K, V, A, O]{c: k.c, out: newPartitions(parts), kc: coder.For[K](),
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
	kbuf    []byte
	n       int64
}

func (w *combineWriter[K, V, A, O]) Emit() any {
	if !w.combine {
		return func(kv KV[K, V]) {
			w.n++
			w.kbuf = w.kc.Append(w.kbuf[:0], kv.Key)
			i := w.out.key(w.kbuf)
			w.out.parts[i] = w.vc.Append(w.out.parts[i], kv.Value)
		}
	}
	return func(kv KV[K, V]) {
		w.n++
		acc, ok := w.table[kv.Key]
		if !ok {
			if len(w.table) >= maxCombineEntries {
				w.flush()
			}
			acc = w.c.Create()
		}
		w.table[kv.Key] = w.c.Add(acc, kv.Value)
	}
}

func (w *combineWriter[K, V, A, O]) flush() {
	for key, acc := range w.table {
		w.kbuf = w.kc.Append(w.kbuf[:0], key)
		i := w.out.key(w.kbuf)
		w.out.parts[i] = w.ac.Append(w.out.parts[i], acc)
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

// countKernel is the keyed kernel of CountPerElement: the word count hot
// path, specialised so that the map side is one hash-table increment per
// element.
type countKernel[T comparable] struct{}

func (countKernel[T]) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	w := &countWriter[T]{out: newPartitions(parts), kc: coder.For[T](), combine: combine, table: map[T]int64{}}
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
	n       int64
}

func (w *countWriter[T]) Emit() any {
	if !w.combine {
		return func(v T) {
			w.n++
			w.kbuf = w.kc.Append(w.kbuf[:0], v)
			i := w.out.key(w.kbuf)
			w.out.parts[i] = append(w.out.parts[i], 2) // the varint encoding of 1
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
			i := w.out.key(w.kbuf)
			w.out.parts[i] = ic.Append(w.out.parts[i], n)
		})
		t.Reset()
		return
	}
	for key, n := range w.table {
		w.kbuf = w.kc.Append(w.kbuf[:0], key)
		i := w.out.key(w.kbuf)
		w.out.parts[i] = ic.Append(w.out.parts[i], n)
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
	return &combineWriter[K, V, []V, []V]{out: newPartitions(parts), kc: coder.For[K](), vc: coder.For[V]()}, nil
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
// at the front of val and returns its length.
func forRecords(ctx context.Context, segments [][]byte, fn func(key, val []byte) (int, error)) error {
	for si, seg := range segments {
		if err := ctx.Err(); err != nil {
			return err
		}
		for off := 0; off < len(seg); {
			key, n, err := coder.ReadBytes(seg[off:])
			if err != nil {
				return fmt.Errorf("gale: shuffle segment %d at byte %d: %w", si, off, err)
			}
			off += n
			m, err := fn(key, seg[off:])
			if err != nil {
				return fmt.Errorf("gale: shuffle segment %d at byte %d: %w", si, off, err)
			}
			off += m
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
