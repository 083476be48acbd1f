package worker

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/galeproject/gale/shuffle/extsort"
)

// A group partition is grouped by hash (grouper) while its records fit a
// memory budget, and by an external sort past it: the records held so far
// and every later one go to a shuffle/extsort Sorter keyed by the record's
// (encoded key, encoded window) identity, which spills sorted runs to
// local disk and merges them back; each group is then a run of equal
// identities in the merged stream, and its values stream into the plan's
// input as a chunked iterable without the partition ever being held.
//
// Order. The hash path emits groups in order of first appearance; the
// spill path in order of their encoded identity (length-prefixed key, then
// length-prefixed window, compared as bytes). In both, a group's values
// keep their arrival order (the segments are read in the driver's fixed
// order and extsort's sort and merge are stable), so a task's output is a
// function of its input and its budget alone.

// Accounted costs of the hash path beyond the segments themselves: a
// 32-byte valNode per record and a 64-byte group entry per group, each
// doubled for the slack and the old copy of a growing slice, and per group
// a map entry (the identity string's header, the value and the map's own
// overhead, estimated; the identity's bytes are counted apart).
// BenchmarkGrouping's hash case peaks at 170-240 MiB of heap for 48 MiB of
// records, 1 M of them in about 100 K groups, which this estimate puts at
// 133 MiB; the rest is garbage the collector has not reclaimed yet.
const (
	hashRecordCost = 64
	hashGroupCost  = 192
)

// groupLimits bounds the grouping of one partition.
type groupLimits struct {
	// memory is what the hash path may hold (segments, nodes, index)
	// before the partition is grouped by sorting; the sorter's buffer is
	// half of it. Zero means half of DefaultMemoryBytes.
	memory int64
	// dir is where the sorter's spill directory goes ("" is os.TempDir).
	dir string
	// chunk is how many bytes of values a spilled group's element
	// collects per iterable chunk; 0 means groupChunkBytes.
	chunk int
	// files takes the values of a spilled group past large bytes (0
	// means a quarter of memory) as a state-backed iterable; nil keeps
	// every group whole in its element.
	files *iterableFiles
	large int64
}

// groupStats describes how a partition was grouped.
type groupStats struct {
	records    int64
	spilled    bool // grouped by sorting
	spillRuns  int64
	spillBytes int64
	// largeGroups counts groups whose values went partly to a file.
	largeGroups int64
}

// partitionGrouper groups one partition's records: in a grouper while they
// fit lim.memory, then in an extsort Sorter. Add segments, then call feed
// once, then close (always, to remove spill files).
type partitionGrouper struct {
	lim    groupLimits
	g      *grouper
	held   [][]byte // segments the grouper's records point into
	used   int64    // accounted bytes of the hash path
	sorter *extsort.Sorter
	stats  groupStats
}

func newPartitionGrouper(lim groupLimits) *partitionGrouper {
	if lim.memory <= 0 {
		lim.memory = DefaultMemoryBytes / 2
	}
	return &partitionGrouper{lim: lim, g: newGrouper()}
}

// identityOf returns a group record's identity: its key and window fields
// as encoded. It is the sorter's key function; records are checked before
// they are added, so a malformed one cannot reach it.
func identityOf(rec []byte) []byte {
	r, _, err := readGroupRecord(rec)
	if err != nil {
		return rec
	}
	return r.id
}

// add files every record of one segment. The segment must stay unchanged
// until each returns.
func (p *partitionGrouper) add(seg []byte) error {
	if p.sorter == nil && p.used+int64(len(seg)) > p.lim.memory && p.g.records() > 0 {
		if err := p.spill(); err != nil {
			return err
		}
	}
	if p.sorter != nil {
		return p.sortSegment(seg)
	}
	groups, records := len(p.g.groups), p.g.records()
	if err := p.g.addSegment(seg); err != nil {
		return err
	}
	p.held = append(p.held, seg)
	p.used += int64(len(seg)) + (p.g.records()-records)*hashRecordCost
	for _, gr := range p.g.groups[groups:] {
		p.used += hashGroupCost + int64(len(gr.key)+len(gr.win)) + 4 // the map's copy of the identity
	}
	if p.used > p.lim.memory {
		return p.spill()
	}
	return nil
}

// spill moves the hash path's records into a new Sorter, segment by
// segment in arrival order, releasing each.
func (p *partitionGrouper) spill() error {
	s, err := extsort.New(extsort.Config{MemoryBytes: max(p.lim.memory/2, 64<<10), TempDir: p.lim.dir}, identityOf)
	if err != nil {
		return fmt.Errorf("worker: grouping by sorting: %w", err)
	}
	p.sorter = s
	p.stats.spilled = true
	p.g = nil // the segments are the records now
	held := p.held
	p.held = nil
	for i, seg := range held {
		held[i] = nil
		if err := p.sortSegment(seg); err != nil {
			return err
		}
	}
	return nil
}

// sortSegment adds every record of seg to the sorter.
func (p *partitionGrouper) sortSegment(seg []byte) error {
	for len(seg) > 0 {
		rec := seg
		_, rest, err := readGroupRecord(seg)
		if err != nil {
			return err
		}
		seg = rest
		if err := p.sorter.Add(rec[:len(rec)-len(rest)]); err != nil {
			return fmt.Errorf("worker: grouping by sorting: %w", err)
		}
		p.stats.records++
	}
	return nil
}

// records returns how many records were filed.
func (p *partitionGrouper) records() int64 {
	if p.g != nil {
		return p.g.records()
	}
	return p.stats.records
}

// close removes the sorter's spill files, whatever happened.
func (p *partitionGrouper) close() error {
	if p.sorter == nil {
		return nil
	}
	st := p.sorter.Stats()
	p.stats.spillRuns, p.stats.spillBytes = int64(st.RunsSpilled), st.BytesSpilled
	return p.sorter.Close()
}

// feed sends every group to ck as an encoded KV<K, Iterable<V>> in its
// window, stamped at the window's end, or as lay says (windows.go).
func (p *partitionGrouper) feed(ctx context.Context, c *coder.Coder, ck *chunker, lay valueLayout) error {
	switch {
	case lay.merging:
		return p.feedMerged(ctx, c, ck, lay)
	case lay.timestamps:
		return p.feedStamped(ctx, c, ck, lay)
	case p.sorter == nil:
		return feedGroups(ctx, p.g, c, ck)
	}
	st := p.sorter.Stats()
	p.stats.spillRuns, p.stats.spillBytes = int64(st.RunsSpilled), st.BytesSpilled
	gw := newGroupWriter(c, ck, cmp.Or(p.lim.chunk, groupChunkBytes))
	gw.files, gw.large = p.lim.files, cmp.Or(p.lim.large, p.lim.memory/4)
	defer gw.close()
	var cur []byte // identity of the open group
	err := p.sorter.Sort(ctx, func(rec []byte) error {
		r, _, err := readGroupRecord(rec)
		if err != nil {
			return err
		}
		if cur == nil || !bytes.Equal(cur, r.id) {
			if cur != nil {
				if err := gw.end(ctx); err != nil {
					return err
				}
			}
			cur = append(cur[:0:0], r.id...)
			if err := gw.begin(r.key, r.win); err != nil {
				return err
			}
		}
		return gw.value(r.val)
	})
	// Sort has run (or failed): its statistics are final.
	st = p.sorter.Stats()
	p.stats.spillRuns, p.stats.spillBytes = int64(st.RunsSpilled), st.BytesSpilled
	p.stats.largeGroups = gw.largeGroups
	if err != nil {
		return err
	}
	if cur != nil {
		if err := gw.end(ctx); err != nil {
			return err
		}
	}
	return ck.flush(ctx)
}

// groupChunkBytes is how many bytes of values a group element collects
// before it writes them as one chunk of its iterable.
const groupChunkBytes = 64 << 10

// groupWriter writes groups whose size is not known in advance: the
// iterable is Beam's chunked encoding (count -1, then chunks of a varint
// element count and the elements, then a 0), which the SDK's DataSource
// decodes like a counted one. With files set, a group whose element
// passes large bytes ends its element with a state-backed chunk (-1 and a
// token) and writes the rest of its values to the file the token names
// (see iterables.go).
type groupWriter struct {
	winDec exec.WindowDecoder
	winEnc exec.WindowEncoder
	ck     *chunker
	elem   bytes.Buffer // the open group's element
	chunk  []byte       // values of the open chunk
	n      int          // values in chunk
	limit  int          // bytes of values per chunk

	files       *iterableFiles
	large       int64
	file        *os.File      // the open group's value file, if any
	fw          *bufio.Writer // writes file
	largeGroups int64
}

func newGroupWriter(c *coder.Coder, ck *chunker, limit int) *groupWriter {
	return &groupWriter{winDec: exec.MakeWindowDecoder(c.Window), winEnc: exec.MakeWindowEncoder(c.Window), ck: ck, limit: limit}
}

func (w *groupWriter) begin(key, win []byte) error {
	w.elem.Reset()
	if err := writeGroupHeader(&w.elem, w.winDec, w.winEnc, win); err != nil {
		return err
	}
	w.elem.Write(key)
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], 0xFFFFFFFF) // -1: chunked
	w.elem.Write(cnt[:])
	return nil
}

func (w *groupWriter) value(v []byte) error {
	if w.file != nil {
		if _, err := w.fw.Write(v); err != nil {
			return fmt.Errorf("worker: writing a large group's values to %s: %w", w.file.Name(), err)
		}
		return nil
	}
	w.chunk = append(w.chunk, v...)
	w.n++
	if w.files != nil && int64(w.elem.Len()+len(w.chunk)) >= w.large {
		w.flushChunk()
		return w.toFile()
	}
	if len(w.chunk) >= w.limit {
		w.flushChunk()
	}
	return nil
}

// toFile ends the open group's element with a state-backed chunk naming a
// new value file, which takes the group's remaining values.
func (w *groupWriter) toFile() error {
	f, token, err := w.files.create()
	if err != nil {
		return err
	}
	w.file = f
	if w.fw == nil {
		w.fw = bufio.NewWriterSize(f, 64<<10)
	} else {
		w.fw.Reset(f)
	}
	w.largeGroups++
	_ = coder.EncodeVarInt(-1, &w.elem) // a bytes.Buffer does not fail
	_ = coder.EncodeVarInt(int64(len(token)), &w.elem)
	w.elem.Write(token)
	return nil
}

func (w *groupWriter) flushChunk() {
	if w.n == 0 {
		return
	}
	var hdr [binary.MaxVarintLen64]byte
	w.elem.Write(hdr[:binary.PutUvarint(hdr[:], uint64(w.n))])
	w.elem.Write(w.chunk)
	w.chunk, w.n = w.chunk[:0], 0
}

// end closes the open group and hands its element to the chunker.
func (w *groupWriter) end(ctx context.Context) error {
	if w.file != nil {
		err := w.fw.Flush()
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
		name := w.file.Name()
		w.file = nil
		if err != nil {
			return fmt.Errorf("worker: writing a large group's values to %s: %w", name, err)
		}
	} else {
		w.flushChunk()
		w.elem.WriteByte(0)
	}
	return w.ck.add(ctx, w.elem.Bytes())
}

// close closes a value file left open by an error (iterableFiles.remove
// deletes it).
func (w *groupWriter) close() {
	if w.file != nil {
		_ = w.file.Close()
		w.file = nil
	}
}

// writeGroupHeader writes the windowed-value header of a group in the
// encoded window win: the window's end, pane on time, first and last.
func writeGroupHeader(buf *bytes.Buffer, winDec exec.WindowDecoder, winEnc exec.WindowEncoder, win []byte) error {
	w, err := winDec.DecodeSingle(bytes.NewReader(win))
	if err != nil {
		return fmt.Errorf("worker: decoding window: %w", err)
	}
	pane := typex.PaneInfo{Timing: typex.PaneOnTime, IsFirst: true, IsLast: true}
	return exec.EncodeWindowedValueHeader(winEnc, []typex.Window{w}, w.MaxTimestamp(), pane, buf)
}
