package glider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Built-in action type names.
const (
	// ActionMerge combines records by key as writers stream them in, with
	// the combine function named by option "combine" (default
	// "int64-sum"); reading returns one record per key, sorted by key.
	// With option "format" = "text", writers stream lines "key value"
	// with decimal int64 values instead (for the int64 combiners), and
	// reading returns such lines. Option "order" = "none" returns the keys
	// in no particular order, skipping the sort (for readers that group by
	// hash anyway, as Gale's reduce tasks do). Option "writer-ids" =
	// "true" (format records) expects every write stream to start with a
	// WriterKey record naming its writer, and keeps only the first stream
	// of each writer that ends cleanly: a later stream of the same writer
	// (a retried or duplicated task whose earlier attempt already
	// delivered) is read and discarded, so every writer's data counts
	// exactly once.
	ActionMerge = "merge"
	// ActionSort collects records (option "format": "records", the
	// default, or "lines"), sorts them by key once the writers are done,
	// and streams them sorted on read. With option "writers" = N it sorts
	// as soon as N write streams have ended, and with option "output" it
	// then also writes the sorted stream to that file. With "output" and
	// option "commit" = "read", a read stream instead sorts, writes the
	// output file (replacing one left by an earlier read) and returns
	// only "records bytes\n" (ParseSortSummary), so the data goes from
	// the action to storage without crossing back to the reader. Option
	// "values" = "true" writes only each record's value to the output,
	// followed by option "terminator" (e.g. "\n"), the layout of a
	// job's output part file. Option "value-key" = N sorts records whose
	// key is empty by the first N bytes of their value (0: the whole
	// value), so records need not carry a copy of their key. Option
	// "writer-ids" = "true" expects every write stream to start with a
	// WriterKey record naming its writer: a writer's later stream
	// replaces its earlier one (a retried task), and equal keys come out
	// in writer order, then stream order.
	ActionSort = "sort"
	// ActionFilter reads the file (or every file of the directory, in
	// name order) named by option "input" and streams only the lines
	// matching the predicate named by option "predicate" (default
	// "substring") built from option "arg". With options "offset" and
	// "length" (bytes) it reads only the lines of one file that start in
	// that byte range (a line belongs to the range its first byte is in,
	// so consecutive ranges split a file's lines exactly), and hands the
	// predicate each line without its "\n" or "\r\n", as Gale's text
	// input does.
	ActionFilter = "filter"
	// ActionCount counts what writers stream in (option "mode": "lines",
	// the default, "records" or "bytes"); reading returns the count as
	// decimal text and a newline.
	ActionCount = "count"
)

// Built-in combiner names. A combine function must be associative, and
// values and accumulators share one encoding (like a Gale combiner's
// MergeAccumulators): merge actions fold each stream into a staging map and
// then fold that into their state. Their values are int64s encoded as zig-zag
// varints (binary.AppendVarint, the encoding Gale's coder uses for int64).
const (
	CombineInt64Sum = "int64-sum"
	CombineInt64Min = "int64-min"
	CombineInt64Max = "int64-max"
	// CombineLast keeps the last value written for a key.
	CombineLast = "last"
)

// Built-in predicate names.
const (
	PredSubstring = "substring"
	PredPrefix    = "prefix"
	PredRegexp    = "regexp"
)

func registerBuiltins(r *Registry) {
	r.Register(ActionMerge, func() Action { return &mergeAction{} })
	r.Register(ActionSort, func() Action { return &sortAction{} })
	r.Register(ActionFilter, func() Action { return &filterAction{} })
	r.Register(ActionCount, func() Action { return &countAction{} })

	for name, f := range map[string]func(a, b int64) int64{
		CombineInt64Sum: func(a, b int64) int64 { return a + b },
		CombineInt64Min: func(a, b int64) int64 { return min(a, b) },
		CombineInt64Max: func(a, b int64) int64 { return max(a, b) },
	} {
		r.RegisterCombiner(name, int64Combiner(f))
		r.int64Folds[name] = f
	}
	r.RegisterCombiner(CombineLast, func(acc, v []byte) ([]byte, error) { return append(acc[:0], v...), nil })

	r.RegisterPredicate(PredSubstring, func(arg string) (func([]byte) bool, error) {
		a := []byte(arg)
		return func(l []byte) bool { return bytes.Contains(l, a) }, nil
	})
	r.RegisterPredicate(PredPrefix, func(arg string) (func([]byte) bool, error) {
		a := []byte(arg)
		return func(l []byte) bool { return bytes.HasPrefix(l, a) }, nil
	})
	r.RegisterPredicate(PredRegexp, func(arg string) (func([]byte) bool, error) {
		re, err := regexp.Compile(arg)
		if err != nil {
			return nil, err
		}
		return re.Match, nil
	})
}

// int64Combiner lifts f over zig-zag varint values.
func int64Combiner(f func(a, b int64) int64) CombineFunc {
	return func(acc, v []byte) ([]byte, error) {
		x, n := binary.Varint(v)
		if n <= 0 || n != len(v) {
			return nil, fmt.Errorf("value %x is not one zig-zag varint int64", v)
		}
		if acc == nil {
			return binary.AppendVarint(nil, x), nil
		}
		a, _ := binary.Varint(acc)
		return binary.AppendVarint(acc[:0], f(a, x)), nil
	}
}

// mergeAction folds records into one accumulator per key.
type mergeAction struct {
	text      bool
	unordered bool
	// writerIDs: streams start with a WriterKey header; done holds the
	// writers whose stream has been folded in.
	writerIDs bool
	done      map[uint64]bool
	combine   CombineFunc
	m         map[string][]byte
	bytes     int64

	// int64Fold is set for the built-in int64 combiners: values are then
	// kept as int64s in n instead of encoded accumulators in m.
	int64Fold func(a, b int64) int64
	n         map[string]int64
}

func (a *mergeAction) OnCreate(_ context.Context, env *Env) error {
	name := env.Options["combine"]
	if name == "" {
		name = CombineInt64Sum
	}
	f, err := env.Registry().Combiner(name)
	if err != nil {
		return err
	}
	switch fm := env.Options["format"]; fm {
	case "", "records":
	case "text":
		a.text = true
	default:
		return fmt.Errorf("option format=%q: want records or text", fm)
	}
	switch o := env.Options["order"]; o {
	case "", "key":
	case "none":
		a.unordered = true
	default:
		return fmt.Errorf("option order=%q: want key or none", o)
	}
	switch v := env.Options["writer-ids"]; v {
	case "", "false":
	case "true":
		if a.text {
			return fmt.Errorf("option writer-ids needs format records")
		}
		a.writerIDs, a.done = true, map[uint64]bool{}
	default:
		return fmt.Errorf("option writer-ids=%q: want true or false", v)
	}
	a.combine, a.m = f, map[string][]byte{}
	env.Registry().mu.RLock()
	a.int64Fold = env.Registry().int64Folds[name]
	env.Registry().mu.RUnlock()
	if a.int64Fold != nil {
		a.n = map[string]int64{}
	}
	return nil
}

// parseInt64 parses a decimal int64. It is hand-rolled because
// strconv.ParseInt needs a string, and converting every value of a
// multi-gigabyte stream allocates.
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// nextText reads the next "key value" line as a record with a zig-zag
// varint value.
func nextText(sc *bufio.Scanner, line int64, val []byte) (k, v []byte, err error) {
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, nil, err
		}
		return nil, nil, io.EOF
	}
	l := sc.Bytes()
	i := bytes.IndexByte(l, ' ')
	if i < 0 {
		return nil, nil, fmt.Errorf("line %d: %q is not \"key value\"", line, l)
	}
	x, ok := parseInt64(l[i+1:])
	if !ok {
		return nil, nil, fmt.Errorf("line %d: value %q is not a decimal int64", line, l[i+1:])
	}
	return l[:i], binary.AppendVarint(val[:0], x), nil
}

// OnWrite folds the stream into a staging area first and merges that into
// the action's state only at the stream's clean end, so a stream cut
// midway (a failed worker that will be retried) contributes nothing. With
// writer ids, a clean stream of a writer already folded in is discarded.
// The check and the fold run after the stream's last Read, with the
// action lock held, so two streams of one writer cannot both be folded.
func (a *mergeAction) OnWrite(_ context.Context, r io.Reader) error {
	var next func() ([]byte, []byte, error)
	var n int64
	var id uint64
	if a.text {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 256<<10), MaxRecord)
		var val []byte
		next = func() ([]byte, []byte, error) {
			n++
			k, v, err := nextText(sc, n, val)
			val = v
			return k, v, err
		}
	} else {
		rr := NewRecordReader(r)
		if a.writerIDs {
			var err error
			if id, err = readWriterID(rr); err != nil {
				return err
			}
		}
		next = func() ([]byte, []byte, error) { n++; return rr.Next() }
	}
	var st mergeStage
	if err := a.stage(next, &n, &st); err != nil {
		return err
	}
	if a.writerIDs {
		if a.done[id] {
			return nil // this writer's data is already in
		}
		a.done[id] = true
	}
	return a.fold(&st)
}

// mergeStage is one stream's accumulators before they are folded into the
// action's state. Accumulators live in a slice indexed through the map,
// so a record costs a map lookup without allocating a key string (only a
// new key allocates).
type mergeStage struct {
	index map[string]int
	keys  []string
	accs  [][]byte // encoded accumulators (generic combiners)
	ints  []int64  // native accumulators (the built-in int64 combiners)
}

// stage reads the stream's records into st.
func (a *mergeAction) stage(next func() ([]byte, []byte, error), n *int64, st *mergeStage) error {
	st.index = map[string]int{}
	for {
		k, v, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		i, found := st.index[string(k)]
		if a.int64Fold != nil {
			x, m := binary.Varint(v)
			if m <= 0 || m != len(v) {
				return fmt.Errorf("record %d (key %q): value %x is not one zig-zag varint int64", *n, k, v)
			}
			if found {
				st.ints[i] = a.int64Fold(st.ints[i], x)
				continue
			}
			ks := string(k)
			st.index[ks] = len(st.keys)
			st.keys = append(st.keys, ks)
			st.ints = append(st.ints, x)
			continue
		}
		if !found {
			i = len(st.keys)
			ks := string(k)
			st.index[ks] = i
			st.keys = append(st.keys, ks)
			st.accs = append(st.accs, nil)
		}
		if st.accs[i], err = a.combine(st.accs[i], v); err != nil {
			return fmt.Errorf("record %d (key %q): %w", *n, k, err)
		}
	}
}

// fold merges a clean stream's accumulators into the action's state.
func (a *mergeAction) fold(st *mergeStage) error {
	if a.int64Fold != nil {
		for i, k := range st.keys {
			if old, found := a.n[k]; found {
				a.n[k] = a.int64Fold(old, st.ints[i])
			} else {
				a.n[k] = st.ints[i]
				a.bytes += int64(len(k)) + 8
			}
		}
		return nil
	}
	for i, k := range st.keys {
		acc, found := a.m[k]
		before := len(acc)
		acc, err := a.combine(acc, st.accs[i])
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if !found {
			a.bytes += int64(len(k))
		}
		a.m[k] = acc
		a.bytes += int64(len(acc) - before)
	}
	return nil
}

var errNoWriterID = fmt.Errorf("a write stream to an action with writer ids is empty: it must start with a %q record", WriterKey)

// readWriterID reads the WriterKey header that starts a write stream of an
// action created with writer ids.
func readWriterID(rr *RecordReader) (uint64, error) {
	k, v, err := rr.Next()
	if err == io.EOF {
		return 0, errNoWriterID
	}
	if err != nil {
		return 0, err
	}
	return parseWriterID(k, v)
}

// parseWriterID parses a WriterKey header record.
func parseWriterID(k, v []byte) (uint64, error) {
	var id uint64
	n := 0
	if string(k) == WriterKey {
		id, n = binary.Uvarint(v)
	}
	if n <= 0 || n != len(v) {
		return 0, fmt.Errorf("the first record of a write stream must be (%q, uvarint writer number), got key %q", WriterKey, k)
	}
	return id, nil
}

func (a *mergeAction) OnRead(_ context.Context, w io.Writer) error {
	ks := make([]string, 0, len(a.m)+len(a.n))
	for k := range a.m {
		ks = append(ks, k)
	}
	for k := range a.n {
		ks = append(ks, k)
	}
	if !a.unordered {
		slices.Sort(ks)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var rec []byte
	for _, k := range ks {
		if a.int64Fold != nil {
			x := a.n[k]
			if a.text {
				rec = append(append(rec[:0], k...), ' ')
				rec = append(strconv.AppendInt(rec, x, 10), '\n')
			} else {
				rec = AppendRecord(rec[:0], []byte(k), binary.AppendVarint(nil, x))
			}
		} else if a.text {
			x, _ := binary.Varint(a.m[k])
			rec = append(append(rec[:0], k...), ' ')
			rec = append(strconv.AppendInt(rec, x, 10), '\n')
		} else {
			rec = AppendRecord(rec[:0], []byte(k), a.m[k])
		}
		if _, err := bw.Write(rec); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (a *mergeAction) StateBytes() int64 { return a.bytes }

// WriterKey is the key of the header record that starts every write
// stream of a merge or sort action created with option "writer-ids" =
// "true"; its value is the writer's number as a uvarint.
const WriterKey = "\x00gale.writer"

// sortAction collects records and sorts them by key. Each clean write
// stream keeps its records in blocks of sortBlock bytes (growing one
// buffer by doubling would copy the data again and again); sorting orders
// references to them stably, so ties keep the order of the streams
// (arrival order, or writer number with writer ids) and, within one, the
// stream's order.
type sortAction struct {
	env     *Env
	lines   bool
	writers int
	ended   int
	output  string
	// onRead: reads write the output and return a summary.
	onRead     bool
	values     bool
	terminator string
	// writerIDs: streams start with a WriterKey header; a writer's
	// later stream replaces its earlier one.
	writerIDs bool
	// valueKey >= 0: a record with an empty key is sorted by the first
	// valueKey bytes of its value (all of it for 0).
	valueKey int

	streams []*sortStream // the streams kept
	writer  []uint64      // writer number per stream (writer ids)
	byID    map[uint64]int
	blocks  [][]byte  // every stream's blocks, in sort order, once sorted
	recs    []sortRec // every record, sorted when sorted is set
	sorted  bool
	records int
}

// sortBlock is the size of the blocks a sort action keeps records in.
const sortBlock = 4 << 20

// sortStream is one write stream's records: blocks of AppendRecord
// encodings and the offsets of the records in each.
type sortStream struct {
	blocks [][]byte
	offs   [][]uint32
	n      int
	bytes  int64
}

// add appends one record.
func (st *sortStream) add(k, v []byte) {
	size := uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	i := len(st.blocks) - 1
	if i < 0 || cap(st.blocks[i])-len(st.blocks[i]) < size {
		st.blocks = append(st.blocks, make([]byte, 0, max(sortBlock, size)))
		st.offs = append(st.offs, nil)
		i++
	}
	st.offs[i] = append(st.offs[i], uint32(len(st.blocks[i])))
	st.blocks[i] = AppendRecord(st.blocks[i], k, v)
	st.n++
	st.bytes += int64(size)
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// sortRec locates one record in block a — its value at vo (vl bytes) and
// its sort key at ko (kl bytes) — and caches what sorting compares: the
// first 8 key bytes as a big-endian number, and the record's arrival
// position (seq), which breaks ties so that an unstable sort gives the
// stable order.
type sortRec struct {
	pre         uint64
	a, vo, vl   uint32
	ko, kl, seq uint32
}

func (a *sortAction) OnCreate(_ context.Context, env *Env) error {
	a.env = env
	switch f := env.Options["format"]; f {
	case "", "records":
	case "lines":
		a.lines = true
	default:
		return fmt.Errorf("option format=%q: want records or lines", f)
	}
	if s := env.Options["writers"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("option writers=%q: want a positive number of write streams", s)
		}
		a.writers = n
	}
	a.output = env.Options["output"]
	if a.output != "" {
		if _, err := splitPath(a.output); err != nil {
			return fmt.Errorf("option output: %w", err)
		}
	}
	switch cm := env.Options["commit"]; cm {
	case "":
	case "read":
		if a.output == "" {
			return fmt.Errorf("option commit=read needs option output (the file to write)")
		}
		a.onRead = true
	default:
		return fmt.Errorf("option commit=%q: want read or nothing", cm)
	}
	for _, o := range []struct {
		name string
		dst  *bool
	}{{"values", &a.values}, {"writer-ids", &a.writerIDs}} {
		switch v := env.Options[o.name]; v {
		case "", "false":
		case "true":
			*o.dst = true
		default:
			return fmt.Errorf("option %s=%q: want true or false", o.name, v)
		}
	}
	if a.writerIDs && a.lines {
		return fmt.Errorf("option writer-ids needs format records")
	}
	a.terminator = env.Options["terminator"]
	a.byID = map[uint64]int{}
	a.valueKey = -1
	if v := env.Options["value-key"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("option value-key=%q: want the number of leading value bytes that make the key (0: all)", v)
		}
		a.valueKey = n
	}
	return nil
}

// decode returns the key and value of the record at offset off of a
// block.
func decode(block []byte, off uint32) (k, v []byte) {
	b := block[off:]
	kl, n := binary.Uvarint(b)
	k = b[n : n+int(kl)]
	b = b[n+int(kl):]
	vl, n := binary.Uvarint(b)
	return k, b[n : n+int(vl)]
}

// rec returns a sorted record's key as written (empty with value-key) and
// its value.
func (a *sortAction) rec(r sortRec) (k, v []byte) {
	b := a.blocks[r.a]
	v = b[r.vo : r.vo+r.vl]
	if a.valueKey >= 0 && r.ko == r.vo {
		return nil, v // value-key: the record's own key is empty
	}
	return b[r.ko : r.ko+r.kl], v
}

// OnWrite collects the stream into an arena of its own and keeps it only
// at the stream's clean end: a stream cut midway adds nothing.
func (a *sortAction) OnWrite(ctx context.Context, r io.Reader) error {
	st, id, err := a.collect(r)
	if err != nil {
		return err
	}
	if a.writerIDs {
		if i, ok := a.byID[id]; ok {
			// A retried writer: its new stream replaces the old one.
			a.records += st.n - a.streams[i].n
			a.streams[i] = st
		} else {
			a.byID[id] = len(a.streams)
			a.streams, a.writer = append(a.streams, st), append(a.writer, id)
			a.records += st.n
		}
	} else if st.n > 0 {
		a.streams = append(a.streams, st)
		a.records += st.n
	}
	a.sorted = false
	a.ended++
	if a.writers > 0 && a.ended == a.writers {
		a.sort()
		if a.output != "" && !a.onRead {
			_, err := a.writeOutput(ctx)
			return err
		}
	}
	return nil
}

// collect reads one stream's records; with writer ids it first reads the
// header.
func (a *sortAction) collect(r io.Reader) (st *sortStream, id uint64, err error) {
	st = &sortStream{}
	if a.lines {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), MaxRecord)
		for sc.Scan() {
			st.add(sc.Bytes(), nil)
		}
		return st, 0, sc.Err()
	}
	id, err = a.collectRecords(r, st)
	if err != nil {
		return nil, 0, err
	}
	return st, id, nil
}

// collectRecords reads a record stream straight into the stream's blocks
// and indexes the records where they landed: the data is copied once,
// from the stream's chunks into the blocks (decoding each record and
// appending it to a block would copy it twice). A record cut by the end
// of a block moves to the next block.
func (a *sortAction) collectRecords(r io.Reader, st *sortStream) (uint64, error) {
	blk := make([]byte, sortBlock)
	var offs []uint32
	var id uint64
	fill, pos := 0, 0
	header := a.writerIDs
	keep := func() {
		if pos > 0 {
			st.blocks = append(st.blocks, blk[:pos])
			st.offs = append(st.offs, offs)
		}
	}
	for {
		n, rerr := r.Read(blk[fill:])
		fill += n
		for {
			size, complete, err := recordSize(blk[pos:fill])
			if err != nil {
				return 0, fmt.Errorf("record %d: %w", st.n, err)
			}
			if !complete {
				break
			}
			if header {
				k, v := decode(blk, uint32(pos))
				if id, err = parseWriterID(k, v); err != nil {
					return 0, err
				}
				header = false
			} else {
				if st.n == 1<<32-1 {
					return 0, fmt.Errorf("one write stream to a sort action holds more than 2^32 records; split it")
				}
				offs = append(offs, uint32(pos))
				st.n++
				st.bytes += int64(size)
			}
			pos += size
		}
		switch {
		case rerr == io.EOF:
			if pos != fill {
				return 0, errf(wire.CodeBadRequest, "glider: record %d is truncated", st.n)
			}
			if header {
				return 0, errNoWriterID
			}
			keep()
			return id, nil
		case rerr != nil:
			return 0, rerr
		case fill < len(blk):
			continue
		}
		// The block is full: keep its whole records and carry the cut
		// one over to a new block, large enough for it.
		size, _, _ := recordSize(blk[pos:fill])
		need := sortBlock
		if pos == 0 {
			need = max(2*len(blk), size)
		}
		nb := make([]byte, max(need, size))
		keep()
		fill = copy(nb, blk[pos:fill])
		blk, offs, pos = nb, nil, 0
	}
}

// recordSize returns the encoded size of the record at the start of b
// (0 while its lengths are not all in b) and whether b holds all of it.
func recordSize(b []byte) (size int, complete bool, err error) {
	klen, n1 := binary.Uvarint(b)
	if n1 < 0 || klen > MaxRecord {
		return 0, false, errf(wire.CodeBadRequest, "glider: a record key exceeds %d bytes (not a record stream?)", MaxRecord)
	}
	if n1 == 0 || uint64(len(b)-n1) < klen {
		return 0, false, nil
	}
	vlen, n2 := binary.Uvarint(b[n1+int(klen):])
	if n2 < 0 || vlen > MaxRecord {
		return 0, false, errf(wire.CodeBadRequest, "glider: a record value exceeds %d bytes (not a record stream?)", MaxRecord)
	}
	if n2 == 0 {
		return 0, false, nil
	}
	size = n1 + int(klen) + n2 + int(vlen)
	return size, size <= len(b), nil
}

// sort orders every record by key, ties in arena order (writer number with
// writer ids, else arrival) and then stream order.
func (a *sortAction) sort() {
	if a.sorted {
		return
	}
	order := make([]int, len(a.streams))
	for i := range order {
		order[i] = i
	}
	if a.writerIDs {
		slices.SortFunc(order, func(x, y int) int { return cmpUint64(a.writer[x], a.writer[y]) })
	}
	a.recs = make([]sortRec, 0, a.records)
	a.blocks = a.blocks[:0]
	for _, i := range order {
		st := a.streams[i]
		for b, arena := range st.blocks {
			a.blocks = append(a.blocks, arena)
			a.addRecs(uint32(len(a.blocks)-1), arena, st.offs[b])
		}
	}
	// A stable counting sort on the first two key bytes spreads the
	// records over 65,536 buckets in one pass, then pdqsort orders each
	// bucket on the 8-byte prefixes, the whole key only on equal prefixes.
	// Comparing decoded records each time costs several times more.
	cmp := func(x, y sortRec) int {
		if x.pre != y.pre {
			if x.pre < y.pre {
				return -1
			}
			return 1
		}
		if x.kl > 8 || y.kl > 8 || x.kl != y.kl {
			if c := bytes.Compare(a.blocks[x.a][x.ko:x.ko+x.kl], a.blocks[y.a][y.ko:y.ko+y.kl]); c != 0 {
				return c
			}
		}
		return cmpUint64(uint64(x.seq), uint64(y.seq))
	}
	if len(a.recs) < 1<<12 {
		slices.SortFunc(a.recs, cmp)
		a.sorted = true
		return
	}
	a.recs = bucketSort(a.recs)
	for lo := 0; lo < len(a.recs); {
		top := a.recs[lo].pre >> 48
		hi := lo + 1
		for hi < len(a.recs) && a.recs[hi].pre>>48 == top {
			hi++
		}
		if hi-lo > 1 {
			a.quickSort(a.recs[lo:hi], 2*bits.Len(uint(hi-lo)), cmp)
		}
		lo = hi
	}
	a.sorted = true
}

// less is cmp(x, y) < 0 of sort, written out so that the sort of a bucket
// compares without a call through a function value: 8-byte prefixes
// first, whole keys only on equal prefixes, then arrival.
func (a *sortAction) less(x, y *sortRec) bool {
	if x.pre != y.pre {
		return x.pre < y.pre
	}
	if x.kl > 8 || y.kl > 8 || x.kl != y.kl {
		if c := bytes.Compare(a.blocks[x.a][x.ko:x.ko+x.kl], a.blocks[y.a][y.ko:y.ko+y.kl]); c != 0 {
			return c < 0
		}
	}
	return x.seq < y.seq
}

// quickSort sorts s by less: quicksort with a median-of-three pivot and
// insertion sort for short runs, handing over to slices.SortFunc (pdqsort,
// O(n log n) always) once depth partitions did not shrink s enough. It is
// hand-written because the generic sort compares through a function value,
// which took half of the sort's time. No two records compare equal (seq
// breaks ties), which Hoare partitioning relies on.
func (a *sortAction) quickSort(s []sortRec, depth int, cmp func(x, y sortRec) int) {
	for len(s) > 16 {
		if depth == 0 {
			slices.SortFunc(s, cmp)
			return
		}
		depth--
		m, l := len(s)/2, len(s)-1
		if a.less(&s[m], &s[0]) {
			s[m], s[0] = s[0], s[m]
		}
		if a.less(&s[l], &s[m]) {
			s[l], s[m] = s[m], s[l]
			if a.less(&s[m], &s[0]) {
				s[m], s[0] = s[0], s[m]
			}
		}
		p := s[m]
		i, j := 0, l
		for {
			for a.less(&s[i], &p) {
				i++
			}
			for a.less(&p, &s[j]) {
				j--
			}
			if i >= j {
				break
			}
			s[i], s[j] = s[j], s[i]
			i++
			j--
		}
		// s[:j+1] <= p <= s[j+1:]: recurse into the smaller side.
		if j+1 < len(s)-j-1 {
			a.quickSort(s[:j+1], depth, cmp)
			s = s[j+1:]
		} else {
			a.quickSort(s[j+1:], depth, cmp)
			s = s[:j+1]
		}
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && a.less(&s[j], &s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// bucketSort orders recs by the top 16 bits of their prefixes, stably, in
// one counting pass.
func bucketSort(recs []sortRec) []sortRec {
	pos := make([]int, 1<<16+1)
	for _, r := range recs {
		pos[r.pre>>48+1]++
	}
	for i := 1; i < len(pos); i++ {
		pos[i] += pos[i-1]
	}
	out := make([]sortRec, len(recs))
	for _, r := range recs {
		b := r.pre >> 48
		out[pos[b]] = r
		pos[b]++
	}
	return out
}

// addRecs appends the sort references of the records of one block.
func (a *sortAction) addRecs(blk uint32, arena []byte, offs []uint32) {
	for _, off := range offs {
		r := sortRec{a: blk, seq: uint32(len(a.recs))}
		k, v := decode(arena, off)
		r.vo, r.vl = uint32(cap(arena)-cap(v)), uint32(len(v))
		if len(k) == 0 && a.valueKey >= 0 {
			k = v
			if a.valueKey > 0 && len(k) > a.valueKey {
				k = k[:a.valueKey]
			}
		}
		r.ko = uint32(cap(arena) - cap(k))
		r.kl = uint32(len(k))
		var p [8]byte
		copy(p[:], k)
		r.pre = binary.BigEndian.Uint64(p[:])
		a.recs = append(a.recs, r)
	}
}

func cmpUint64(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// writeOutput writes the sorted records to the output file, replacing a
// file an earlier attempt left there, and returns its size.
func (a *sortAction) writeOutput(ctx context.Context) (int64, error) {
	c, err := a.env.Client(ctx)
	if err != nil {
		return 0, err
	}
	fw, err := c.Replace(ctx, a.output, "")
	if err != nil {
		return 0, fmt.Errorf("write sorted output: %w", err)
	}
	if err := a.emit(fw, a.values); err != nil {
		fw.Abort()
		return 0, fmt.Errorf("write sorted output to %s: %w", a.output, err)
	}
	return fw.Size(), fw.Close()
}

// emit writes the sorted records: whole, as lines, or (values) only each
// value followed by the terminator. It gathers them into buffers of
// exactly the writer's chunk size (ChunkSize, when w has one), which a
// FileWriter sends as they are instead of copying them into chunks again.
func (a *sortAction) emit(w io.Writer, values bool) error {
	size := 1 << 20
	if cw, ok := w.(interface{ ChunkSize() int }); ok && cw.ChunkSize() > 0 {
		size = cw.ChunkSize()
	}
	buf := make([]byte, 0, size)
	// put appends b, sending every full buffer; a record may straddle two.
	put := func(b []byte) error {
		for len(b) > 0 {
			n := copy(buf[len(buf):cap(buf)], b)
			buf, b = buf[:len(buf)+n], b[n:]
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}
	term := []byte(a.terminator)
	var rec []byte
	for _, r := range a.recs {
		k, v := a.rec(r)
		switch {
		case values:
			if len(buf)+len(v)+len(term) < cap(buf) {
				buf = append(append(buf, v...), term...)
				continue
			}
			rec = append(append(rec[:0], v...), term...)
		case a.lines:
			rec = append(append(rec[:0], k...), '\n')
		default:
			rec = AppendRecord(rec[:0], k, v)
		}
		if err := put(rec); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

func (a *sortAction) OnRead(ctx context.Context, w io.Writer) error {
	a.sort()
	if a.onRead {
		n, err := a.writeOutput(ctx)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%d %d\n", len(a.recs), n)
		return err
	}
	return a.emit(w, false)
}

// ParseSortSummary parses what reading a sort action with option
// commit=read returns: the records and bytes it wrote to its output.
func ParseSortSummary(b []byte) (records, size int64, err error) {
	if _, err := fmt.Sscanf(string(b), "%d %d\n", &records, &size); err != nil {
		return 0, 0, fmt.Errorf("%w: sort summary %q", ErrBadRequest, b)
	}
	return records, size, nil
}

func (a *sortAction) StateBytes() int64 {
	n := int64(unsafe.Sizeof(sortRec{})) * int64(len(a.recs))
	for _, st := range a.streams {
		n += st.bytes + 4*int64(st.n)
	}
	return n
}

// filterAction streams the matching lines of files next to it.
type filterAction struct {
	env   *Env
	input string
	pred  func([]byte) bool
	// ranged: filter only the lines starting in [off, off+n) of one file.
	ranged bool
	off, n int64
}

func (a *filterAction) OnCreate(_ context.Context, env *Env) error {
	a.env = env
	a.input = env.Options["input"]
	if a.input == "" {
		return fmt.Errorf("option input (the file or directory to filter) is required")
	}
	name := env.Options["predicate"]
	if name == "" {
		name = PredSubstring
	}
	p, err := env.Registry().Predicate(name, env.Options["arg"])
	if err != nil {
		return err
	}
	a.pred = p
	offS, lenS := env.Options["offset"], env.Options["length"]
	if offS != "" || lenS != "" {
		a.ranged = true
		var e1, e2 error
		a.off, e1 = strconv.ParseInt(offS, 10, 64)
		a.n, e2 = strconv.ParseInt(lenS, 10, 64)
		if e1 != nil || e2 != nil || a.off < 0 || a.n < 0 {
			return fmt.Errorf("options offset=%q length=%q: want both, as byte counts", offS, lenS)
		}
	}
	return nil
}

func (a *filterAction) OnRead(ctx context.Context, w io.Writer) error {
	c, err := a.env.Client(ctx)
	if err != nil {
		return err
	}
	n, err := c.Lookup(ctx, a.input)
	if err != nil {
		return err
	}
	if a.ranged {
		if n.Kind != KindFile {
			return fmt.Errorf("%w: input %s is a %v; a byte range needs a file", ErrWrongKind, a.input, n.Kind)
		}
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := a.filterRange(ctx, c, bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	files := []string{a.input}
	if n.Kind == KindDir {
		kids, err := c.List(ctx, a.input)
		if err != nil {
			return err
		}
		files = files[:0]
		for _, k := range kids {
			if k.Kind == KindFile {
				files = append(files, k.Path)
			}
		}
	} else if n.Kind != KindFile {
		return fmt.Errorf("%w: input %s is a %v", ErrWrongKind, a.input, n.Kind)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	for _, f := range files {
		if err := a.filter(ctx, c, f, bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (a *filterAction) filter(ctx context.Context, c *Client, path string, w *bufio.Writer) error {
	r, err := c.Open(ctx, path)
	if err != nil {
		return err
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), MaxRecord)
	for sc.Scan() {
		if l := sc.Bytes(); a.pred(l) {
			if _, err := w.Write(l); err != nil {
				return err
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("filter %s: %w", path, err)
	}
	return nil
}

// filterRange filters the lines starting in [a.off, a.off+a.n) of the
// input file, with the line semantics of Gale's text input.
func (a *filterAction) filterRange(ctx context.Context, c *Client, w *bufio.Writer) error {
	r, err := c.Open(ctx, a.input)
	if err != nil {
		return err
	}
	defer r.Close()
	start := a.off
	if start > 0 {
		start-- // the byte before the range tells whether a line starts at off
	}
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	pos := a.off
	if a.off > 0 {
		prev, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if prev != '\n' {
			for {
				b, err := br.ReadSlice('\n')
				pos += int64(len(b))
				if errors.Is(err, bufio.ErrBufferFull) {
					continue
				}
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				break
			}
		}
	}
	end := a.off + a.n
	var long []byte
	for pos < end {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("filter %s: %w", a.input, err)
		}
		if len(line) == 0 {
			return nil
		}
		pos += int64(len(line))
		// The terminator goes as in the engine's line reader: "\n" or
		// "\r\n", and a last line without "\n" loses a trailing "\r".
		if n := len(line); line[n-1] == '\n' {
			line = line[:n-1]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if a.pred(line) {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			if werr := w.WriteByte('\n'); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
	return nil
}

// countAction counts lines, records or bytes.
type countAction struct {
	mode string
	n    int64
}

func (a *countAction) OnCreate(_ context.Context, env *Env) error {
	switch m := env.Options["mode"]; m {
	case "", "lines":
		a.mode = "lines"
	case "records", "bytes":
		a.mode = m
	default:
		return fmt.Errorf("option mode=%q: want lines, records or bytes", m)
	}
	return nil
}

func (a *countAction) OnWrite(_ context.Context, r io.Reader) error {
	switch a.mode {
	case "records":
		rr := NewRecordReader(r)
		for {
			_, _, err := rr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		a.n += rr.Records()
		return nil
	}
	// Count into a local first: a stream cut midway adds nothing.
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if a.mode == "bytes" {
			n += int64(k)
		} else {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		}
		if err == io.EOF {
			a.n += n
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (a *countAction) OnRead(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, strconv.FormatInt(a.n, 10)+"\n")
	return err
}

// ParseCount parses the output of a count action.
func ParseCount(b []byte) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: count output %q", ErrBadRequest, b)
	}
	return n, nil
}

var _ = wire.CodeOK
