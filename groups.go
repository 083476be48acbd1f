package gale

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/shuffle/extsort"
)

// Grouping under a memory budget. A GroupByKey or join reduce task does not
// hold its partition in a hash table: it feeds the partition's records to
// an external sorter (shuffle/extsort, the sort's), which keeps at most half
// the task's budget in memory and spills sorted runs to local disk beyond
// it, then walks the records in key order. Only one key's values are
// decoded at a time; a join holds only one side of a key (the right) and
// streams the other, and spills that side too when it alone exceeds its
// share of the budget. The stable sort keeps each key's values in arrival
// order and the keys in the order of their encodings, so the output is the
// same as the in-memory grouping's was.

// sortedRecords reads the shuffle records of segments, sorts them by their
// encoded key followed by the first tag bytes of their value, and calls fn
// with each record's key and value in that order (ties in arrival order).
// The slices passed to fn are valid only during the call.
func sortedRecords(ctx context.Context, segments []io.Reader, cfg kernel.SortConfig, tag int, fn func(key, val []byte) error) (int64, error) {
	// The sorter's heap stays below about 1.5x its buffer budget plus its
	// I/O buffers; half the task's budget keeps the task within it and
	// leaves room for a key's decoded values.
	budget := cfg.MemoryBytes / 2
	if budget <= 0 {
		budget = engineDefaultMemory / 2
	}
	keyOf := func(rec []byte) []byte {
		kl, n := binary.Uvarint(rec)
		return rec[n : n+int(kl)+tag]
	}
	s, err := extsort.New(extsort.Config{MemoryBytes: max(budget, 64<<10), TempDir: cfg.TempDir}, keyOf)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var n int64
	var rec []byte
	for si, seg := range segments {
		br := bufio.NewReaderSize(seg, 64<<10)
		for {
			_, err := readFramed(br, &rec, cfg.MemoryBytes)
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, fmt.Errorf("gale: shuffle segment %d: %w", si, err)
			}
			// rec is now uvarint(len key) key; the value follows
			// without its length (it runs to the record's end).
			start := len(rec)
			val, err := readFramed(br, &rec, cfg.MemoryBytes)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, fmt.Errorf("gale: shuffle segment %d: record %d: value: %w", si, n, err)
			}
			rec = append(rec[:start], val...)
			if len(val) < tag {
				return n, fmt.Errorf("gale: shuffle segment %d: record %d: %w: value of %d bytes has no side tag", si, n, coder.ErrCorrupt, len(val))
			}
			if err := s.Add(rec); err != nil {
				return n, spillErr(err)
			}
			n++
			if n&4095 == 0 && ctx.Err() != nil {
				return n, ctx.Err()
			}
			rec = rec[:0]
		}
	}
	err = s.Sort(ctx, func(r []byte) error {
		kl, k := binary.Uvarint(r)
		return fn(r[k:k+int(kl)], r[k+int(kl):])
	})
	if cfg.Stats != nil {
		st := s.Stats()
		cfg.Stats(st.RunsSpilled, st.BytesSpilled)
	}
	return n, spillErr(err)
}

// engineDefaultMemory is the task budget when a kernel is called without
// one.
const engineDefaultMemory = engine.DefaultWorkerMemory

func spillErr(err error) error {
	var se *extsort.SpillError
	if errors.As(err, &se) {
		return fmt.Errorf("gale: grouping a partition that does not fit in memory: %w", err)
	}
	return err
}

// readFramed reads one length-prefixed byte string from br, appending its
// prefix and bytes to *buf, and returns the string (aliasing *buf). A
// string longer than limit (plus 1 MiB) is refused as corrupt or too large.
func readFramed(br *bufio.Reader, buf *[]byte, limit int64) ([]byte, error) {
	l, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if limit > 0 && l > uint64(limit)+(1<<20) {
		return nil, fmt.Errorf("a %d-byte field, larger than the worker memory budget", l)
	}
	b := binary.AppendUvarint(*buf, l)
	start := len(b)
	b = slices.Grow(b, int(l))[:start+int(l)]
	if _, err := io.ReadFull(br, b[start:]); err != nil {
		return nil, fmt.Errorf("truncated record: %w", io.ErrUnexpectedEOF)
	}
	*buf = b
	return b[start:], nil
}

// segmentReaders wraps in-memory segments as readers, for the Reduce
// fallback of a StreamReducer.
func segmentReaders(segments [][]byte) []io.Reader {
	rs := make([]io.Reader, len(segments))
	for i, s := range segments {
		rs[i] = bytes.NewReader(s)
	}
	return rs
}

// ReduceStream groups the partition's values by key under cfg's budget
// (kernel.StreamReducer): one key's values are decoded at a time.
func (groupKernel[K, V]) ReduceStream(ctx context.Context, segments []io.Reader, cfg kernel.SortConfig, next any) (int64, error) {
	emit, ok := next.(func(KV[K, []V]))
	if !ok {
		return 0, fmt.Errorf("gale: group output %s feeds %T", coder.TypeName[KV[K, []V]](), next)
	}
	kc, vc := coder.For[K](), coder.For[V]()
	var cur []byte
	var vals []V
	have := false
	flush := func() error {
		if !have {
			return nil
		}
		k, _, err := kc.Decode(cur)
		if err != nil {
			return err
		}
		emit(KV[K, []V]{k, vals})
		vals = nil
		return nil
	}
	n, err := sortedRecords(ctx, segments, cfg, 0, func(key, val []byte) error {
		if !have || !bytes.Equal(key, cur) {
			if err := flush(); err != nil {
				return err
			}
			cur, have = append(cur[:0], key...), true
		}
		v, used, err := vc.Decode(val)
		if err == nil && used != len(val) {
			err = fmt.Errorf("%w: value of %d bytes decoded from %d", coder.ErrCorrupt, used, len(val))
		}
		if err != nil {
			return err
		}
		vals = append(vals, v)
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

var _ kernel.StreamReducer = groupKernel[int, int]{}

// joinKernel is the keyed kernel of Join, LeftJoin and OuterJoin: the
// shuffle carries sided values (the right side's sort first within a key),
// and the reduce pairs each left value with the key's right values as it
// streams, holding only the right values.
type joinKernel[K comparable, A, B any] struct {
	jk joinKind
}

func (joinKernel[K, A, B]) Writer(parts int, combine bool) (kernel.ShuffleWriter, error) {
	return &combineWriter[K, sided[A, B], []sided[A, B], []sided[A, B]]{out: newPartitions(parts), kc: coder.KeyFor[K](), vc: coder.For[sided[A, B]]()}, nil
}

func (j joinKernel[K, A, B]) Reduce(ctx context.Context, segments [][]byte, combined bool, next any) (int64, error) {
	return j.ReduceStream(ctx, segmentReaders(segments), kernel.SortConfig{}, next)
}

// joinRightShare is the fraction of the task budget one key's right values
// may take in memory before they spill to a file that is read again for
// each left value.
const joinRightShare = 4

func (j joinKernel[K, A, B]) ReduceStream(ctx context.Context, segments []io.Reader, cfg kernel.SortConfig, next any) (int64, error) {
	emit, ok := next.(func(KV[K, Joined[A, B]]))
	if !ok {
		return 0, fmt.Errorf("gale: join output %s feeds %T", coder.TypeName[KV[K, Joined[A, B]]](), next)
	}
	ac, bc, kc := coder.For[A](), coder.For[B](), coder.For[K]()
	budget := cfg.MemoryBytes
	if budget <= 0 {
		budget = engineDefaultMemory
	}
	rights := &rightValues[B]{bc: bc, limit: budget / joinRightShare, dir: cfg.TempDir}
	defer rights.close()
	var cur []byte
	var key K
	have, lefts := false, false
	// finish ends the current key: an OuterJoin emits its right values
	// alone when it had no left value.
	finish := func() error {
		if have && !lefts && j.jk.keepRight {
			return rights.each(func(r B) {
				emit(KV[K, Joined[A, B]]{key, Joined[A, B]{Right: r, HasRight: true}})
			})
		}
		return nil
	}
	n, err := sortedRecords(ctx, segments, cfg, 1, func(k, val []byte) error {
		if !have || !bytes.Equal(k, cur) {
			if err := finish(); err != nil {
				return err
			}
			var err error
			if key, _, err = kc.Decode(k); err != nil {
				return err
			}
			cur, have, lefts = append(cur[:0], k...), true, false
			if err := rights.reset(); err != nil {
				return err
			}
		}
		if val[0] == sideRightTag {
			return rights.add(val[1:])
		}
		lefts = true
		l, used, err := ac.Decode(val[1:])
		if err == nil && used != len(val)-1 {
			err = fmt.Errorf("%w: value of %d bytes decoded from %d", coder.ErrCorrupt, used, len(val)-1)
		}
		if err != nil {
			return err
		}
		if rights.n == 0 {
			if j.jk.keepLeft {
				emit(KV[K, Joined[A, B]]{key, Joined[A, B]{Left: l, HasLeft: true}})
			}
			return nil
		}
		return rights.each(func(r B) {
			emit(KV[K, Joined[A, B]]{key, Joined[A, B]{Left: l, Right: r, HasLeft: true, HasRight: true}})
		})
	})
	if err == nil {
		err = finish()
	}
	return n, err
}

var _ kernel.StreamReducer = joinKernel[int, int, int]{}

// rightValues holds one key's right values: decoded in memory up to limit
// encoded bytes, then all of them encoded in a spill file, read again for
// every left value (the key's output is that large anyway). All right
// values of a key arrive before its first left value.
type rightValues[B any] struct {
	bc      coder.Coder[B]
	limit   int64
	dir     string
	vals    []B
	bytes   int64
	n       int64
	spilled bool
	file    *os.File
	w       *bufio.Writer
	buf     []byte
}

func (r *rightValues[B]) reset() error {
	clear(r.vals)
	r.vals, r.bytes, r.n = r.vals[:0], 0, 0
	if r.spilled {
		r.spilled = false
		if err := r.file.Truncate(0); err != nil {
			return fmt.Errorf("gale: join spill file: %w", err)
		}
		if _, err := r.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("gale: join spill file: %w", err)
		}
		r.w.Reset(r.file)
	}
	return nil
}

func (r *rightValues[B]) add(enc []byte) error {
	r.n++
	if r.spilled {
		r.buf = coder.AppendBytes(r.buf[:0], enc)
		_, err := r.w.Write(r.buf)
		return err
	}
	v, used, err := r.bc.Decode(enc)
	if err == nil && used != len(enc) {
		err = fmt.Errorf("%w: value of %d bytes decoded from %d", coder.ErrCorrupt, used, len(enc))
	}
	if err != nil {
		return err
	}
	r.vals = append(r.vals, v)
	r.bytes += int64(len(enc))
	if r.bytes <= r.limit {
		return nil
	}
	if r.file == nil {
		// A directory named as the sorter's spill directories, so a
		// killed process's file is removed by the next job and gale gc.
		d, err := os.MkdirTemp(r.dir, extsort.SpillDirPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return fmt.Errorf("gale: a join key's right values exceed the memory budget and cannot spill: %w", err)
		}
		f, err := os.Create(filepath.Join(d, "right"))
		if err != nil {
			os.RemoveAll(d)
			return fmt.Errorf("gale: a join key's right values exceed the memory budget and cannot spill: %w", err)
		}
		r.file, r.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	r.spilled = true
	for _, v := range r.vals {
		r.buf = coder.AppendBytes(r.buf[:0], r.bc.Append(nil, v))
		if _, err := r.w.Write(r.buf); err != nil {
			return fmt.Errorf("gale: join spill file: %w", err)
		}
	}
	clear(r.vals)
	r.vals = r.vals[:0]
	return nil
}

// each calls fn with every right value in arrival order.
func (r *rightValues[B]) each(fn func(B)) error {
	if !r.spilled {
		for _, v := range r.vals {
			fn(v)
		}
		return nil
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("gale: join spill file: %w", err)
	}
	if _, err := r.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("gale: join spill file: %w", err)
	}
	br := bufio.NewReaderSize(r.file, 64<<10)
	var rec []byte
	for i := int64(0); i < r.n; i++ {
		rec = rec[:0]
		enc, err := readFramed(br, &rec, 0)
		if err != nil {
			return fmt.Errorf("gale: join spill file %s: value %d of %d: %w", r.file.Name(), i, r.n, err)
		}
		v, _, err := r.bc.Decode(enc)
		if err != nil {
			return fmt.Errorf("gale: join spill file %s: %w", r.file.Name(), err)
		}
		fn(v)
	}
	if _, err := r.file.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("gale: join spill file: %w", err)
	}
	return nil
}

func (r *rightValues[B]) close() {
	if r.file != nil {
		r.file.Close()
		os.RemoveAll(filepath.Dir(r.file.Name()))
	}
}
