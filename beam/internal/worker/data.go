package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/galeproject/gale/shuffle"
)

// Shuffle records are fields framed by package shuffle (AppendField): a
// group edge's record is the encoded key, one encoded window and the
// encoded value; a keyed edge's record is the encoded key, an empty window
// and the whole windowed element; a redistribute or side edge's record is
// one whole windowed element. Group and keyed edges partition by
// shuffle.HashPartition of the encoded key, as Gale's own keyed shuffles.

// groupRecord is one record of a group edge, split into its fields: id
// is the encoded key and window together, the group the record files into.
type groupRecord struct {
	key, win, id, val []byte
}

// readGroupRecord splits the group edge record at the start of b and
// returns it and the bytes after it.
func readGroupRecord(b []byte) (r groupRecord, rest []byte, err error) {
	if r.key, rest, err = shuffle.ReadField(b); err != nil {
		return r, nil, err
	}
	if r.win, rest, err = shuffle.ReadField(rest); err != nil {
		return r, nil, err
	}
	r.id = b[:len(b)-len(rest)]
	r.val, rest, err = shuffle.ReadField(rest)
	return r, rest, err
}

// captureReader records the bytes decoders read through it, so the
// encoded form of each decoded part is kept byte for byte.
type captureReader struct {
	r   *bufio.Reader
	buf []byte
}

func (c *captureReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.buf = append(c.buf, p[:n]...)
	return n, err
}

func (c *captureReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.buf = append(c.buf, b)
	}
	return b, err
}

// sinkWriter is the io.WriteCloser a DataSink writes encoded windowed
// elements to. A decoder goroutine, owned by the writer and joined by
// Close or abort, splits the stream into elements and files each into its
// partition.
//
// A sink with a combiner (a group edge written by a lifted combine's
// precombine) holds its records and merges them with the combiner before
// partitioning them (see combiner).
type sinkWriter struct {
	out     Output
	pw      *io.PipeWriter
	bw      *bufio.Writer
	done    chan error
	closed  bool
	parts   [][]byte
	records int64 // records written to parts
	err     error

	ctx     context.Context
	coder   *coder.Coder
	comb    *combiner
	layout  valueLayout // of a group edge's record values
	pending []byte      // records waiting for comb
	// flushBytes is how many bytes of records wait for comb before it
	// merges them: combineFlushBytes but in tests.
	flushBytes int
	// decodeBundle, on a sink whose records carry epochs, decodes one
	// bundle's stream when the bundle closes (no decoder goroutine), so
	// every record gets the epoch of the bundle that wrote it; bundle
	// holds the stream until then.
	decodeBundle func(r io.Reader) error
	bundle       bytes.Buffer
}

func newSinkWriter(ctx context.Context, out Output, c *coder.Coder, seed int, comb *combiner) (*sinkWriter, error) {
	if !coder.IsW(c) {
		return nil, fmt.Errorf("worker: DataSink %s has unwindowed coder %v", out.Transform, c)
	}
	parts := out.Partitions
	if parts < 1 {
		parts = 1
	}
	pr, pw := io.Pipe()
	s := &sinkWriter{out: out, pw: pw, bw: bufio.NewWriterSize(pw, 64<<10), done: make(chan error, 1), parts: make([][]byte, parts),
		ctx: ctx, coder: c, comb: comb, flushBytes: combineFlushBytes, layout: valueLayout{merging: out.Merging, timestamps: out.Timestamps}}
	elem := coder.SkipW(c)
	winDec := exec.MakeWindowDecoder(c.Window)
	winEnc := exec.MakeWindowEncoder(c.Window)
	var keyDec, valDec, elemDec exec.ElementDecoder
	if out.Kind == EdgeGroup || out.Kind == EdgeKeyed {
		if !coder.IsKV(elem) {
			return nil, fmt.Errorf("worker: GroupByKey input %s is not a KV: %v", out.Transform, elem)
		}
		keyDec, valDec = exec.MakeElementDecoder(elem.Components[0]), exec.MakeElementDecoder(elem.Components[1])
	} else {
		elemDec = exec.MakeElementDecoder(elem)
	}
	if out.Epochs && out.Kind == EdgeGroup {
		s.layout.epochs, s.layout.timestamps = true, true
		s.pw, s.bw = nil, bufio.NewWriterSize(&s.bundle, 64<<10)
		s.decodeBundle = func(r io.Reader) error { return s.decode(r, winDec, winEnc, keyDec, valDec, elemDec, seed) }
		return s, nil
	}
	go func() {
		err := s.decode(pr, winDec, winEnc, keyDec, valDec, elemDec, seed)
		pr.CloseWithError(err) // unblock the writer if decoding stopped early
		s.done <- err
	}()
	return s, nil
}

// endBundle decodes the stream of a bundle of the given epoch (sinks
// whose records carry epochs).
func (s *sinkWriter) endBundle(epoch uint64) error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	s.layout.epoch = epoch
	err := s.decodeBundle(bytes.NewReader(s.bundle.Bytes()))
	s.bundle.Reset()
	return err
}

func (s *sinkWriter) decode(pr io.Reader, winDec exec.WindowDecoder, winEnc exec.WindowEncoder,
	keyDec, valDec, elemDec exec.ElementDecoder, seed int) error {
	cr := &captureReader{r: bufio.NewReaderSize(pr, 64<<10)}
	next := seed
	var rec, packed []byte
	for {
		if _, err := cr.r.Peek(1); err == io.EOF {
			return s.combine()
		} else if err != nil {
			return err
		}
		cr.buf = cr.buf[:0]
		ws, ts, _, err := exec.DecodeWindowedValueHeader(winDec, cr)
		if err != nil {
			return fmt.Errorf("worker: decoding output of %s: %w", s.out.Transform, err)
		}
		if elemDec != nil {
			s.records++
			if _, err := elemDec.Decode(cr); err != nil {
				return fmt.Errorf("worker: decoding output of %s: %w", s.out.Transform, err)
			}
			p := next % len(s.parts)
			next++
			s.parts[p] = shuffle.AppendField(s.parts[p], cr.buf)
			continue
		}
		header := len(cr.buf)
		if _, err := keyDec.Decode(cr); err != nil {
			return fmt.Errorf("worker: decoding key in output of %s: %w", s.out.Transform, err)
		}
		keyEnd := len(cr.buf)
		if _, err := valDec.Decode(cr); err != nil {
			return fmt.Errorf("worker: decoding value in output of %s: %w", s.out.Transform, err)
		}
		key, val := cr.buf[header:keyEnd], cr.buf[keyEnd:]
		p := shuffle.HashPartition(key, len(s.parts))
		if s.out.Kind == EdgeKeyed {
			// The key, no window, the whole element (see keyed.go).
			s.records++
			s.parts[p] = shuffle.AppendField(shuffle.AppendField(shuffle.AppendField(s.parts[p], key), nil), cr.buf)
			continue
		}
		for _, w := range ws {
			wb, err := exec.EncodeWindow(winEnc, w)
			if err != nil {
				return err
			}
			rec = shuffle.AppendField(rec[:0], key)
			if !s.layout.plain() {
				// The value carries its window or timestamp (windows.go).
				packed = s.layout.packValue(packed[:0], wb, ts, val)
				if s.layout.merging {
					wb = nil
				}
				rec = shuffle.AppendField(rec, wb)
				rec = shuffle.AppendField(rec, packed)
			} else {
				rec = shuffle.AppendField(rec, wb)
				rec = shuffle.AppendField(rec, val)
			}
			if s.comb != nil {
				s.pending = append(s.pending, rec...)
				continue
			}
			s.records++
			s.parts[p] = append(s.parts[p], rec...)
		}
		if len(s.pending) >= s.flushBytes {
			if err := s.combine(); err != nil {
				return err
			}
		}
	}
}

// combine merges the pending records with the combiner and files the
// merged ones into their partitions.
func (s *sinkWriter) combine() error {
	if s.comb == nil || len(s.pending) == 0 {
		return nil
	}
	out, err := newSinkWriter(s.ctx, s.out, s.coder, 0, nil)
	if err != nil {
		return err
	}
	g := newGrouper()
	if err := g.addSegment(s.pending); err != nil {
		return err
	}
	if err := s.comb.merge(s.ctx, g, out); err != nil {
		return fmt.Errorf("worker: DataSink %s: %w", s.out.Transform, err)
	}
	for i, p := range out.parts {
		s.parts[i] = append(s.parts[i], p...)
	}
	s.records += out.records
	s.pending = s.pending[:0]
	return nil
}

func (s *sinkWriter) Write(p []byte) (int, error) { return s.bw.Write(p) }

// Close flushes the stream and waits for the decoder.
func (s *sinkWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.decodeBundle != nil {
		s.err = s.endBundle(s.layout.epoch)
		return s.err
	}
	err := s.bw.Flush()
	s.pw.CloseWithError(err)
	if derr := <-s.done; derr != nil && err == nil {
		err = derr
	}
	s.err = err
	return err
}

// abort stops the decoder if the plan never closed the writer.
func (s *sinkWriter) abort() {
	if !s.closed && s.decodeBundle != nil {
		s.closed = true
		return
	}
	if !s.closed {
		s.closed = true
		s.pw.CloseWithError(errors.New("worker: task failed"))
		<-s.done
	}
}

// dataManager is the exec.DataManager of one task.
type dataManager struct {
	source string
	feed   func(ctx context.Context, ch chan<- exec.Elements) error
	sinks  map[string]*sinkWriter

	mu      sync.Mutex
	opened  bool
	feedErr chan error
	cancel  context.CancelFunc
	timers  map[timerKey]*bytes.Buffer
	// residuals is the work splittable DoFns deferred in the bundles so
	// far (see resume.go).
	residuals []residual
	// epoch is the TestStream epoch of the running bundle (replay.go).
	epoch uint64
}

func (d *dataManager) OpenElementChan(ctx context.Context, id exec.StreamID, _ []string) (<-chan exec.Elements, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id.PtransformID != d.source || d.opened {
		return nil, fmt.Errorf("worker: unexpected data source %s", id.PtransformID)
	}
	d.opened = true
	ch := make(chan exec.Elements, 4)
	ctx, d.cancel = context.WithCancel(ctx)
	d.feedErr = make(chan error, 1)
	// The feeder is owned by the task: wait stops and joins it.
	go func() {
		defer close(ch)
		d.feedErr <- d.feed(ctx, ch)
	}()
	return ch, nil
}

// wait stops the feeder and returns its error.
func (d *dataManager) wait() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.opened {
		return nil
	}
	d.cancel()
	err := <-d.feedErr
	d.opened = false
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// OpenWrite returns a DataSink's stream for one bundle: closing it ends
// the bundle's writes; the task closes the sink after its last bundle.
func (d *dataManager) OpenWrite(_ context.Context, id exec.StreamID) (io.WriteCloser, error) {
	s, ok := d.sinks[id.PtransformID]
	if !ok {
		return nil, fmt.Errorf("worker: unexpected data sink %s", id.PtransformID)
	}
	return bundleWriter{s, d.epoch}, nil
}

// bundleWriter is a sinkWriter for one bundle.
type bundleWriter struct {
	s     *sinkWriter
	epoch uint64
}

func (b bundleWriter) Write(p []byte) (int, error) { return b.s.Write(p) }

func (b bundleWriter) Close() error {
	if b.s.decodeBundle != nil {
		return b.s.endBundle(b.epoch)
	}
	return b.s.bw.Flush()
}

// timerKey names a stream of timers: the transform that set them and their
// family.
type timerKey struct{ transform, family string }

// OpenTimerWrite collects the timers a bundle sets (see keyed.go).
func (d *dataManager) OpenTimerWrite(_ context.Context, id exec.StreamID, family string) (io.WriteCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := timerKey{id.PtransformID, family}
	if d.timers == nil {
		d.timers = map[timerKey]*bytes.Buffer{}
	}
	b := d.timers[k]
	if b == nil {
		b = &bytes.Buffer{}
		d.timers[k] = b
	}
	return nopWriteCloser{b}, nil
}

// takeTimers returns the timers written since the last call.
func (d *dataManager) takeTimers() map[timerKey][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[timerKey][]byte{}
	for k, b := range d.timers {
		if b.Len() > 0 {
			out[k] = b.Bytes()
		}
	}
	d.timers = nil
	return out
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// chunker sends encoded elements to a DataSource in chunks of whole
// elements.
type chunker struct {
	ch        chan<- exec.Elements
	transform string
	buf       []byte
}

const chunkBytes = 1 << 20

func (c *chunker) flush(ctx context.Context) error {
	if len(c.buf) == 0 {
		return nil
	}
	select {
	case c.ch <- exec.Elements{Data: c.buf, PtransformID: c.transform}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.buf = nil
	return nil
}

// add appends one whole element and sends the chunk when it is full.
func (c *chunker) add(ctx context.Context, elem []byte) error {
	c.buf = append(c.buf, elem...)
	if len(c.buf) >= chunkBytes {
		return c.flush(ctx)
	}
	return nil
}

// impulseElement is the one element of a Beam Impulse: an empty byte
// string in the global window at the minimum timestamp.
func impulseElement(c *coder.Coder) ([]byte, error) {
	var buf bytes.Buffer
	if err := exec.EncodeWindowedValueHeader(exec.MakeWindowEncoder(c.Window), window.SingleGlobalWindow,
		mtime.MinTimestamp, typex.NoFiringPane(), &buf); err != nil {
		return nil, err
	}
	if err := exec.MakeElementEncoder(coder.SkipW(c)).Encode(&exec.FullValue{Elm: []byte{}}, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// grouper collects the records of a group edge by (encoded key, encoded
// window) in a hash table, keeping each group's values in arrival order
// and the groups in the order they first appear. Grouping by hash instead
// of sorting the partition costs one table lookup per record, and the
// values stay where they are (sub-slices of the shuffle segments): only
// one small node per record and one entry per group are allocated. The
// order of groups and of values within a group is a function of the
// input's order alone, so a task's output is deterministic.
type grouper struct {
	// index maps a record's key and window fields, as encoded in the
	// record (length-prefixed, so unambiguous), to its group.
	index  map[string]int32
	groups []group
	vals   []valNode
}

// group is one (key, window) group; its values are a list through vals.
type group struct {
	key, win    []byte
	first, last int32
	n           int32
}

type valNode struct {
	val  []byte
	next int32
}

func newGrouper() *grouper { return &grouper{index: map[string]int32{}} }

// addSegment files every record of a group edge's segment.
func (g *grouper) addSegment(seg []byte) error {
	for len(seg) > 0 {
		r, rest, err := readGroupRecord(seg)
		if err != nil {
			return err
		}
		seg = rest
		if len(g.vals) >= math.MaxInt32 {
			return errors.New("worker: more than 2^31 records in one group partition; use more partitions")
		}
		v := int32(len(g.vals))
		g.vals = append(g.vals, valNode{val: r.val, next: -1})
		if gi, ok := g.index[string(r.id)]; ok {
			gr := &g.groups[gi]
			g.vals[gr.last].next = v
			gr.last = v
			gr.n++
			continue
		}
		g.index[string(r.id)] = int32(len(g.groups))
		g.groups = append(g.groups, group{key: r.key, win: r.win, first: v, last: v, n: 1})
	}
	return nil
}

// records returns how many records were filed.
func (g *grouper) records() int64 { return int64(len(g.vals)) }

// each calls fn for every group, in the order the groups first appeared,
// with the group's values in arrival order.
func (g *grouper) each(fn func(key, win []byte, vals func(yield func([]byte) bool), n int) error) error {
	for i := range g.groups {
		gr := &g.groups[i]
		vals := func(yield func([]byte) bool) {
			for v := gr.first; v >= 0; v = g.vals[v].next {
				if !yield(g.vals[v].val) {
					return
				}
			}
		}
		if err := fn(gr.key, gr.win, vals, int(gr.n)); err != nil {
			return err
		}
	}
	return nil
}

// feedGrouped groups a partition's records by key and window and sends
// each group as an encoded KV<K, Iterable<V>> in its window, stamped at
// the window's end. read returns the partition's segments one at a time,
// in a fixed order, and nil after the last; past lim.memory the partition
// is grouped by an external sort (see spill.go), whose spill files are
// removed before feedGrouped returns, whatever happened.
func feedGrouped(ctx context.Context, read func() ([]byte, error), c *coder.Coder, ck *chunker, lim groupLimits, lay valueLayout) (st groupStats, err error) {
	p := newPartitionGrouper(lim)
	defer func() {
		cerr := p.close()
		if err == nil && cerr != nil {
			err = fmt.Errorf("worker: %w", cerr)
		}
		st = p.stats
		st.records = p.records()
	}()
	for {
		seg, err := read()
		if err != nil {
			return st, err
		}
		if seg == nil {
			break
		}
		if err := p.add(seg); err != nil {
			return st, err
		}
	}
	return st, p.feed(ctx, c, ck, lay)
}

// groupSource is a grouped partition: grouper, or partitionGrouper on its
// hash path.
type groupSource interface {
	each(fn func(key, win []byte, vals func(yield func([]byte) bool), n int) error) error
}

// feedGroups sends the groups of g.
func feedGroups(ctx context.Context, g groupSource, c *coder.Coder, ck *chunker) error {
	winDec := exec.MakeWindowDecoder(c.Window)
	winEnc := exec.MakeWindowEncoder(c.Window)
	var buf bytes.Buffer
	err := g.each(func(key, win []byte, vals func(func([]byte) bool), n int) error {
		buf.Reset()
		if err := writeGroupHeader(&buf, winDec, winEnc, win); err != nil {
			return err
		}
		buf.Write(key)
		var cnt [4]byte
		binary.BigEndian.PutUint32(cnt[:], uint32(n))
		buf.Write(cnt[:])
		for v := range vals {
			buf.Write(v)
		}
		return ck.add(ctx, buf.Bytes())
	})
	if err != nil {
		return err
	}
	return ck.flush(ctx)
}

// feedElements sends every whole-element record of the segments.
func feedElements(ctx context.Context, segs [][]byte, ck *chunker) (int64, error) {
	var n int64
	for _, seg := range segs {
		for len(seg) > 0 {
			var elem []byte
			var err error
			if elem, seg, err = shuffle.ReadField(seg); err != nil {
				return n, err
			}
			if err := ck.add(ctx, elem); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, ck.flush(ctx)
}
