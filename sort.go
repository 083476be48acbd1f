package gale

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"unsafe"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/shuffle"
	"github.com/galeproject/gale/shuffle/extsort"
)

// SortKey is the constraint of sort keys: byte strings order by their
// bytes (the order of LC_ALL=C sort), numbers numerically.
type SortKey interface {
	~string | ~[]byte | ~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// SortOption configures a sort.
type SortOption func(*sortOptions)

type sortOptions struct {
	descending bool
	prefix     int
	partitions int
}

// Descending sorts from the largest key to the smallest.
func Descending() SortOption { return func(o *sortOptions) { o.descending = true } }

// KeyPrefix makes Sort compare only the first n bytes of each element (the
// 10-byte key of sort-benchmark records); elements with equal prefixes keep
// a deterministic order. SortBy refuses it.
func KeyPrefix(n int) SortOption { return func(o *sortOptions) { o.prefix = n } }

// SortPartitions fixes the number of sorted partitions (output parts).
func SortPartitions(n int) SortOption { return func(o *sortOptions) { o.partitions = n } }

// SortBy orders c globally by key. Gale samples the keys, range-partitions
// the elements by the sample's quantiles and sorts every partition within
// the worker memory budget (spilling sorted runs to local disk and merging
// them when a partition does not fit), so the output's part files, read in
// order, are sorted. Elements with equal keys come out in a deterministic
// order for a given plan.
func SortBy[T any, K SortKey](c Collection[T], key func(T) K, opts ...SortOption) Collection[T] {
	loc := callerLoc(1)
	name, err := funcName(key)
	if err != nil {
		c.p.fail(loc, "SortBy: %v", err)
	}
	o := sortOpts(opts)
	if o.prefix != 0 {
		c.p.fail(loc, "SortBy: KeyPrefix applies to Sort's byte keys only; SortBy orders by the whole key its function returns")
	}
	checkCoder[T](c.p, loc, "SortBy element")
	enc := keyEncoder[K](o.descending)
	k := &rangeKernel[T]{
		c: coder.For[T](),
		key: func(dst []byte, v T) []byte {
			return enc(dst, key(v))
		},
	}
	kname := fmt.Sprintf("sortby:%s(%s)%s:desc=%v", name, coder.TypeName[T](), coder.TypeName[K](), o.descending)
	return sortNode(c, k, kname, "SortBy("+displayName(name)+")", o, loc)
}

// Sort orders a collection of strings or byte slices by their bytes (or by
// their first n bytes with KeyPrefix(n)). Unlike SortBy it ships each
// element once, since its key can be read back from it.
func Sort[T ~string | ~[]byte](c Collection[T], opts ...SortOption) Collection[T] {
	loc := callerLoc(1)
	o := sortOpts(opts)
	if o.prefix < 0 {
		c.p.fail(loc, "Sort: negative KeyPrefix %d", o.prefix)
	}
	raw := rawBytes[T]()
	k := &rangeKernel[T]{c: coder.For[T](), prefix: o.prefix, fromRaw: raw.from}
	if o.descending {
		enc := descendingBytes
		k.key = func(dst []byte, v T) []byte { return enc(dst, prefixOf(raw.to(v), o.prefix)) }
	} else {
		// The key is the element's bytes themselves: records carry only
		// the element.
		k.raw = raw.to
	}
	kname := fmt.Sprintf("sort:%s:prefix=%d:desc=%v", coder.TypeName[T](), o.prefix, o.descending)
	return sortNode(c, k, kname, "Sort", o, loc)
}

func sortOpts(opts []SortOption) sortOptions {
	var o sortOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

func sortNode[T any](c Collection[T], k *rangeKernel[T], kname, label string, o sortOptions, loc string) Collection[T] {
	c.p.reg.Put(kname, k)
	if o.descending {
		label += " descending"
	}
	col := addNode[T](c.p, &node{Node: planner.Node{Kind: planner.Sort, Label: label, Kernel: kname,
		Inputs: []int{c.id}, Loc: loc, Partitions: o.partitions}})
	return col
}

func prefixOf(b []byte, n int) []byte {
	if n > 0 && len(b) > n {
		return b[:n]
	}
	return b
}

// rawConv converts between T (string or []byte kinds) and its bytes without
// copying. The unsafe conversions are checked by kind at construction.
type rawConv[T any] struct {
	to   func(T) []byte
	from func([]byte) T // copies
}

func rawBytes[T any]() rawConv[T] {
	if reflect.TypeFor[T]().Kind() == reflect.String {
		return rawConv[T]{
			to: func(v T) []byte {
				s := *(*string)(unsafe.Pointer(&v))
				return unsafe.Slice(unsafe.StringData(s), len(s))
			},
			from: func(b []byte) T {
				s := string(b)
				return *(*T)(unsafe.Pointer(&s))
			},
		}
	}
	return rawConv[T]{
		to: func(v T) []byte { return *(*[]byte)(unsafe.Pointer(&v)) },
		from: func(b []byte) T {
			c := append([]byte{}, b...)
			return *(*T)(unsafe.Pointer(&c))
		},
	}
}

// keyEncoder returns an order-preserving encoding of K: comparing encodings
// with bytes.Compare orders keys as K's natural order (or its reverse).
func keyEncoder[K SortKey](descending bool) func([]byte, K) []byte {
	var asc func([]byte, K) []byte
	fixed := true
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String:
		fixed = false
		asc = func(dst []byte, k K) []byte { return append(dst, *(*string)(unsafe.Pointer(&k))...) }
	case reflect.Slice:
		fixed = false
		asc = func(dst []byte, k K) []byte { return append(dst, *(*[]byte)(unsafe.Pointer(&k))...) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		asc = signedEncoder[K]()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		asc = unsignedEncoder[K]()
	case reflect.Float32, reflect.Float64:
		asc = floatEncoder[K]()
	}
	if !descending {
		return asc
	}
	if fixed {
		return func(dst []byte, k K) []byte {
			n := len(dst)
			dst = asc(dst, k)
			for i := n; i < len(dst); i++ {
				dst[i] = ^dst[i]
			}
			return dst
		}
	}
	return func(dst []byte, k K) []byte {
		var tmp [64]byte
		return descendingBytes(dst, asc(tmp[:0], k))
	}
}

// descendingBytes appends an encoding of b that orders byte strings in
// reverse: bytes are escaped (0x00 becomes 0x00 0xFF) and terminated with
// 0x00 0x00, which keeps order and makes no encoding a prefix of another,
// then complemented, which reverses the order of prefix-free strings.
func descendingBytes(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, ^byte(0), ^byte(0xFF))
		} else {
			dst = append(dst, ^c)
		}
	}
	return append(dst, ^byte(0), ^byte(0))
}

func signedEncoder[K SortKey]() func([]byte, K) []byte {
	size := reflect.TypeFor[K]().Size()
	return func(dst []byte, k K) []byte {
		var v int64
		switch size {
		case 1:
			v = int64(*(*int8)(unsafe.Pointer(&k)))
		case 2:
			v = int64(*(*int16)(unsafe.Pointer(&k)))
		case 4:
			v = int64(*(*int32)(unsafe.Pointer(&k)))
		default:
			v = *(*int64)(unsafe.Pointer(&k))
		}
		return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
	}
}

func unsignedEncoder[K SortKey]() func([]byte, K) []byte {
	size := reflect.TypeFor[K]().Size()
	return func(dst []byte, k K) []byte {
		var v uint64
		switch size {
		case 1:
			v = uint64(*(*uint8)(unsafe.Pointer(&k)))
		case 2:
			v = uint64(*(*uint16)(unsafe.Pointer(&k)))
		case 4:
			v = uint64(*(*uint32)(unsafe.Pointer(&k)))
		default:
			v = *(*uint64)(unsafe.Pointer(&k))
		}
		return binary.BigEndian.AppendUint64(dst, v)
	}
}

// floatEncoder orders floats numerically: -Inf < negatives < -0 = +0 <
// positives < +Inf < NaN.
func floatEncoder[K SortKey]() func([]byte, K) []byte {
	size := reflect.TypeFor[K]().Size()
	return func(dst []byte, k K) []byte {
		var f float64
		if size == 4 {
			f = float64(*(*float32)(unsafe.Pointer(&k)))
		} else {
			f = *(*float64)(unsafe.Pointer(&k))
		}
		if f == 0 {
			f = 0 // -0 sorts with +0
		}
		b := math.Float64bits(f)
		switch {
		case math.IsNaN(f):
			b = math.MaxUint64
		case b>>63 == 0:
			b ^= 1 << 63
		default:
			b = ^b
		}
		return binary.BigEndian.AppendUint64(dst, b)
	}
}

// rangeKernel is the kernel of a sort. A shuffle record is a
// length-prefixed payload: with raw set, the element's bytes (its key is
// them, or their prefix); otherwise the length-prefixed key followed by the
// encoded element.
type rangeKernel[T any] struct {
	c       coder.Coder[T]
	key     func(dst []byte, v T) []byte // key mode
	raw     func(T) []byte               // raw mode
	fromRaw func([]byte) T
	prefix  int
}

var _ kernel.Ranged = (*rangeKernel[string])(nil)

// payloadKey returns the key of a payload.
func (k *rangeKernel[T]) payloadKey(p []byte) []byte {
	if k.raw != nil {
		return prefixOf(p, k.prefix)
	}
	key, _, err := coder.ReadBytes(p)
	if err != nil {
		return nil // cannot happen for payloads this kernel wrote
	}
	return key
}

func (k *rangeKernel[T]) Sampler(max, maxKey int, seed uint64) kernel.Sampler {
	return &sampler[T]{k: k, max: max, maxKey: maxKey, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

// sampler keeps a uniform reservoir sample of keys (Vitter's algorithm R),
// each cut to maxKey bytes, so it holds at most max*maxKey key bytes
// however long the keys are.
type sampler[T any] struct {
	k      *rangeKernel[T]
	max    int
	maxKey int
	rng    *rand.Rand
	keys   [][]byte
	n      int64
	buf    []byte
}

func (s *sampler[T]) Emit() any {
	return func(v T) {
		s.n++
		if len(s.keys) < s.max {
			s.keys = append(s.keys, s.key(v))
			return
		}
		if j := s.rng.Int64N(s.n); j < int64(s.max) {
			s.keys[j] = s.key(v)
		}
	}
}

// key returns a copy of v's key cut to maxKey bytes.
func (s *sampler[T]) key(v T) []byte {
	if s.k.raw != nil {
		// The key is (a prefix of) the element's bytes: cut before copying.
		b := prefixOf(s.k.raw(v), s.k.prefix)
		return append([]byte(nil), b[:min(len(b), s.maxKey)]...)
	}
	s.buf = s.k.key(s.buf[:0], v)
	return append([]byte(nil), s.buf[:min(len(s.buf), s.maxKey)]...)
}

func (s *sampler[T]) Keys() [][]byte { return s.keys }
func (s *sampler[T]) Records() int64 { return s.n }

// keyOf appends v's key to dst.
func (k *rangeKernel[T]) keyOf(dst []byte, v T) []byte {
	if k.raw != nil {
		return append(dst, prefixOf(k.raw(v), k.prefix)...)
	}
	return k.key(dst, v)
}

func (k *rangeKernel[T]) Writer(partition func([]byte) int, parts int, keyed bool) (kernel.ShuffleWriter, error) {
	return &rangeWriter[T]{k: k, part: partition, parts: make([][]byte, parts), keyed: keyed}, nil
}

type rangeWriter[T any] struct {
	keyed bool // records carry their key separately (Glider sort actions)
	// share is each partition's expected size from the task's input
	// (SizeHint): a partition that has grown to a sixteenth of it grows
	// straight to it instead of doubling its way there.
	share int
	k     *rangeKernel[T]
	part  func(key []byte) int
	parts [][]byte
	n     int64
	kbuf  []byte
	pbuf  []byte
	// With FlushTo (glider sort actions), a partition reaching size bytes
	// is handed to flush.
	size  int
	flush func(part int, data []byte) error
}

var (
	_ engine.PartitionFlusher = (*rangeWriter[string])(nil)
	_ kernel.SizeHinter       = (*rangeWriter[string])(nil)
)

// SizeHint implements kernel.SizeHinter. Doubling a partition's buffer
// up to its final size copies and allocates it about twice over; sizing it
// once its data is seen to arrive avoids that, and a stage that filters
// most elements out never reaches the threshold, so allocates no more than
// it would have.
func (w *rangeWriter[T]) SizeHint(inputBytes int64) {
	// Records carry a length prefix or two: about 2% over the input.
	w.share = int(min(inputBytes/int64(max(len(w.parts), 1))*51/50+4096, 1<<31))
}

// room makes room for n more bytes in partition i, growing it to its
// share when it is on the way there.
func (w *rangeWriter[T]) room(i, n int) {
	p := w.parts[i]
	if len(p)+n <= cap(p) || w.share == 0 || w.flush != nil || len(p) < w.share/16 || len(p)+n > w.share {
		return
	}
	np := make([]byte, len(p), w.share)
	copy(np, p)
	w.parts[i] = np
}

// FlushTo implements engine.PartitionFlusher: the glider strategy streams
// each partition to its sort action one chunk at a time while the task
// runs. After its first chunk, a partition's buffer holds a chunk and the
// record crossing its end without growing.
func (w *rangeWriter[T]) FlushTo(size int, flush func(part int, data []byte) error) {
	w.size, w.flush = size, flush
}

// spill hands partition i's full chunks to flush and keeps the rest.
func (w *rangeWriter[T]) spill(i int) {
	p := w.parts[i]
	off := 0
	for len(p)-off >= w.size {
		if err := w.flush(i, p[off:off+w.size]); err != nil {
			panic(kernel.Abort{Err: err})
		}
		off += w.size
	}
	n := copy(p, p[off:])
	if cap(p) < w.size+64<<10 {
		np := make([]byte, n, w.size+64<<10)
		copy(np, p[:n])
		p = np
	}
	w.parts[i] = p[:n]
}

func (w *rangeWriter[T]) Emit() any {
	k := w.k
	if w.keyed && k.raw != nil {
		// The key is the element's leading bytes: records carry an empty
		// key and the sort actions read it from the value (value-key).
		return func(v T) {
			w.n++
			b := k.raw(v)
			i := w.part(prefixOf(b, k.prefix))
			w.parts[i] = shuffle.AppendRecord(w.parts[i], nil, b)
			if w.flush != nil && len(w.parts[i]) >= w.size {
				w.spill(i)
			}
		}
	}
	if w.keyed {
		return func(v T) {
			w.n++
			w.kbuf = k.keyOf(w.kbuf[:0], v)
			i := w.part(w.kbuf)
			w.pbuf = k.payload(w.pbuf[:0], w.kbuf, v)
			w.parts[i] = shuffle.AppendRecord(w.parts[i], w.kbuf, w.pbuf)
			if w.flush != nil && len(w.parts[i]) >= w.size {
				w.spill(i)
			}
		}
	}
	if k.raw != nil {
		return func(v T) {
			w.n++
			b := k.raw(v)
			i := w.part(prefixOf(b, k.prefix))
			w.room(i, len(b)+binary.MaxVarintLen64)
			w.parts[i] = shuffle.AppendField(w.parts[i], b)
		}
	}
	return func(v T) {
		w.n++
		w.kbuf = k.key(w.kbuf[:0], v)
		w.pbuf = k.payload(w.pbuf[:0], w.kbuf, v)
		i := w.part(w.kbuf)
		w.room(i, len(w.pbuf)+binary.MaxVarintLen64)
		w.parts[i] = shuffle.AppendField(w.parts[i], w.pbuf)
	}
}

// payload appends v's shuffle payload: its bytes in raw mode, else the
// length-prefixed key then the encoded element.
func (k *rangeKernel[T]) payload(dst, key []byte, v T) []byte {
	if k.raw != nil {
		return append(dst, k.raw(v)...)
	}
	return k.c.Append(coder.AppendBytes(dst, key), v)
}

// decodePayload decodes a payload back into its element.
func (k *rangeKernel[T]) decodePayload(p []byte) (T, error) {
	if k.raw != nil {
		return k.fromRaw(p), nil
	}
	_, kn, err := coder.ReadBytes(p)
	if err != nil {
		var zero T
		return zero, err
	}
	v, _, err := k.c.Decode(p[kn:])
	return v, err
}

func (k *rangeKernel[T]) EmitSorted(ctx context.Context, sorted io.Reader, next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: sorted %s feeds %T", coder.TypeName[T](), next)
	}
	br := bufio.NewReaderSize(sorted, 256<<10)
	var n int64
	var buf []byte
	for {
		// Skip the key, keep the payload.
		for field := 0; field < 2; field++ {
			l, err := binary.ReadUvarint(br)
			if err == io.EOF && field == 0 {
				return n, nil
			}
			if err != nil {
				return n, fmt.Errorf("gale: sorted record %d: %w", n, err)
			}
			if uint64(cap(buf)) < l {
				buf = make([]byte, l)
			}
			buf = buf[:l]
			if _, err := io.ReadFull(br, buf); err != nil {
				return n, fmt.Errorf("gale: sorted record %d is truncated: %w", n, err)
			}
		}
		v, err := k.decodePayload(buf)
		if err != nil {
			return n, err
		}
		emit(v)
		n++
		if n&4095 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}

// gliderSinkTerminator reports whether this sort's values, as its keyed
// records carry them to Glider sort actions, each followed by the returned
// terminator, are the part file of a sink of the given format — so the
// sort actions can write the part files themselves. That holds in raw
// mode (the value is the element's bytes): for raw sinks, and for text
// sinks of plain strings or byte slices (the element and a newline).
func (k *rangeKernel[T]) gliderSinkTerminator(format string) (string, bool) {
	if k.raw == nil {
		return "", false
	}
	switch format {
	case "raw":
		return "", true
	case "text":
		var zero T
		switch any(zero).(type) {
		case string, []byte:
			return "\n", true
		}
	}
	return "", false
}

// gliderValueKey reports whether this sort's records to Glider sort
// actions carry an empty key, the key being the first n bytes of the value
// (all of it for 0): true in raw mode.
func (k *rangeKernel[T]) gliderValueKey() (n int, ok bool) {
	return k.prefix, k.raw != nil
}

func (w *rangeWriter[T]) Finish() ([][]byte, error) { return w.parts, nil }
func (w *rangeWriter[T]) Records() int64            { return w.n }

func (k *rangeKernel[T]) Sort(ctx context.Context, segments []io.Reader, cfg kernel.SortConfig, next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: sorted %s feeds %T", coder.TypeName[T](), next)
	}
	// The sorter's heap stays below about 1.5x its buffer budget plus its
	// I/O buffers; half the task's budget keeps the task within it.
	s, err := extsort.New(extsort.Config{MemoryBytes: max(cfg.MemoryBytes/2, 1<<20), TempDir: cfg.TempDir}, k.payloadKey)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var n int64
	var payload []byte
	for si, seg := range segments {
		br := bufio.NewReaderSize(seg, 64<<10)
		for {
			l, err := binary.ReadUvarint(br)
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, fmt.Errorf("gale: sort segment %d: %w", si, err)
			}
			if l > uint64(cfg.MemoryBytes)+(1<<20) {
				return n, fmt.Errorf("gale: sort segment %d holds a %d-byte record, larger than the worker memory budget", si, l)
			}
			if uint64(cap(payload)) < l {
				payload = make([]byte, l)
			}
			payload = payload[:l]
			if _, err := io.ReadFull(br, payload); err != nil {
				return n, fmt.Errorf("gale: sort segment %d: truncated record: %w", si, err)
			}
			if err := s.Add(payload); err != nil {
				return n, err
			}
			n++
			if n&4095 == 0 && ctx.Err() != nil {
				return n, ctx.Err()
			}
		}
	}
	err = s.Sort(ctx, func(p []byte) error {
		v, err := k.decodePayload(p)
		if err != nil {
			return err
		}
		emit(v)
		return nil
	})
	if cfg.Stats != nil {
		st := s.Stats()
		cfg.Stats(int(st.RunsSpilled), st.BytesSpilled)
	}
	if err != nil {
		var se *extsort.SpillError
		if errors.As(err, &se) {
			return n, fmt.Errorf("gale: sorting a partition that does not fit in memory: %w", err)
		}
		return n, err
	}
	return n, nil
}
