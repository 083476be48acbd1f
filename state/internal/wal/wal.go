package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	segMagic       = "GALEWAL1"
	snapMagic      = "GALESNP1"
	segHeaderSize  = 8 + 8 + 4
	recHeaderSize  = 4 + 8 + 4 + 4
	snapHeaderSize = 8 + 8 + 8 + 4 + 4

	lockName      = "LOCK"
	snapName      = "snapshot"
	snapTmpName   = "snapshot.tmp"
	segPrefix     = "wal-"
	segSuffix     = ".log"
	damagedSuffix = ".damaged"

	// DefaultMaxRecord is the largest record body accepted by default.
	DefaultMaxRecord = 256 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Point names a step of the append or rotation sequence, for tests that
// stop a Log there (Options.Hook).
type Point string

// The steps at which Options.Hook is called, in the order they happen.
const (
	// PointAppended: a record was written (not yet fsynced).
	PointAppended Point = "appended"
	// PointSegmentCreated: Rotate wrote the new segment's header.
	PointSegmentCreated Point = "segment-created"
	// PointSegmentSynced: the new segment and the directory are fsynced.
	PointSegmentSynced Point = "segment-synced"
	// PointSnapshotWritten: snapshot.tmp is written, not fsynced.
	PointSnapshotWritten Point = "snapshot-written"
	// PointSnapshotSynced: snapshot.tmp is fsynced.
	PointSnapshotSynced Point = "snapshot-synced"
	// PointSnapshotRenamed: snapshot.tmp was renamed over snapshot.
	PointSnapshotRenamed Point = "snapshot-renamed"
	// PointSnapshotInstalled: the directory was fsynced after the rename.
	PointSnapshotInstalled Point = "snapshot-installed"
	// PointSegmentRemoved: one covered segment was removed (called once
	// per segment).
	PointSegmentRemoved Point = "segment-removed"
	// PointRotated: the covered segments are gone and the directory is
	// fsynced.
	PointRotated Point = "rotated"
)

// Points lists every Point in sequence order.
var Points = []Point{PointAppended, PointSegmentCreated, PointSegmentSynced, PointSnapshotWritten,
	PointSnapshotSynced, PointSnapshotRenamed, PointSnapshotInstalled, PointSegmentRemoved, PointRotated}

// Options configures a Log.
type Options struct {
	// Sync makes every Append fsync before it returns, so an appended
	// record survives a machine crash, not only a process crash.
	Sync bool
	// MaxRecord bounds a record's body; a longer Append is refused and a
	// longer length read back is damage. Default DefaultMaxRecord.
	MaxRecord int
	// Hook, if set, is called at each Point. An error stops the operation
	// there and breaks the Log (every later call fails), as a crash at that
	// point would; tests use it to crash between any two steps.
	Hook func(Point) error
}

// ErrBroken is returned by every call on a Log after a write failed or a
// Hook stopped it: what is on disk is no longer known to match the Log.
var ErrBroken = errors.New("wal: log is broken by an earlier failure; reopen it")

// ErrLocked means another process (or Log) holds the directory.
var ErrLocked = errors.New("wal: data directory is in use by another process")

// CorruptError reports damage that Open will not read past.
type CorruptError struct {
	// Dir is the data directory; File the damaged file's name in it.
	Dir, File string
	// Offset is the byte offset in File where the damage starts.
	Offset int64
	// Seq is the sequence number the damaged record should have had.
	Seq uint64
	// Kept is the number of intact records before the damage (after the
	// snapshot).
	Kept int
	// Reason says what check failed.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s is damaged at byte %d (record seq %d: %s); the %d records before it are intact",
		filepath.Join(e.Dir, e.File), e.Offset, e.Seq, e.Reason, e.Kept)
}

// Log is an open data directory.
type Log struct {
	dir  string
	opts Options
	lock *os.File

	snapSeq  uint64
	snapData []byte
	torn     int64 // bytes of a torn tail truncated by Open

	// isBroken mirrors broken != nil for steps run without mu (the
	// snapshot file's): after a failure nothing more is written.
	isBroken atomic.Bool

	mu      sync.Mutex
	broken  error
	closed  bool
	segs    []segment // sorted by first; the last is open for appends
	f       *os.File  // the last segment
	size    int64     // bytes in f
	lastSeq uint64    // seq of the last record appended (or covered)
	buf     []byte
}

type segment struct {
	first uint64
	name  string
}

func segName(first uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// Open locks dir (creating it if needed), loads the snapshot, checks every
// segment the snapshot does not cover, truncates a torn tail, finishes an
// interrupted rotation and opens the last segment for appends. A damaged
// log gives a *CorruptError; another holder of the directory ErrLocked.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxRecord <= 0 {
		opts.MaxRecord = DefaultMaxRecord
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lf, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, lock: lf}
	if err := l.load(); err != nil {
		unlockDir(lf)
		return nil, err
	}
	return l, nil
}

func (l *Log) load() error {
	if err := os.Remove(filepath.Join(l.dir, snapTmpName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: removing an unfinished snapshot: %w", err)
	}
	seq, data, err := readSnapshot(l.dir)
	if err != nil {
		return err
	}
	l.snapSeq, l.snapData, l.lastSeq = seq, data, seq
	segs, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	// Segments wholly covered by the snapshot are left over from a
	// rotation a crash interrupted: remove them unread.
	for len(segs) > 1 && segs[1].first <= l.snapSeq+1 {
		if err := os.Remove(filepath.Join(l.dir, segs[0].name)); err != nil {
			return fmt.Errorf("wal: removing covered segment: %w", err)
		}
		segs = segs[1:]
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	if len(segs) > 0 && segs[0].first > l.snapSeq+1 {
		return &CorruptError{Dir: l.dir, File: segs[0].name, Seq: l.snapSeq + 1,
			Reason: fmt.Sprintf("records %d to %d are missing (the snapshot covers up to %d)", l.snapSeq+1, segs[0].first-1, l.snapSeq)}
	}
	kept := 0
	next := uint64(0) // expected seq of the next record
	for i, s := range segs {
		last := i == len(segs)-1
		if i > 0 && s.first != next {
			return &CorruptError{Dir: l.dir, File: s.name, Seq: next, Kept: kept,
				Reason: fmt.Sprintf("segment starts at record %d, the previous one ended before %d", s.first, next)}
		}
		res, err := scanSegment(l.dir, s, l.opts.MaxRecord, last, nil)
		kept += res.records
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				ce.Kept = kept
			}
			return err
		}
		next = res.next
		if !res.headerTorn {
			l.size = res.end
		}
		if last {
			if res.headerTorn {
				// Rotate crashed while writing the header: no record was
				// ever appended to this segment.
				if err := os.Remove(filepath.Join(l.dir, s.name)); err != nil {
					return fmt.Errorf("wal: removing a torn segment: %w", err)
				}
				segs = segs[:i]
				break
			}
			if res.end < res.fileSize {
				l.torn = res.fileSize - res.end
				if err := truncateSync(filepath.Join(l.dir, s.name), res.end); err != nil {
					return err
				}
			}
		}
	}
	if next > 0 && next-1 > l.lastSeq {
		l.lastSeq = next - 1
	}
	if len(segs) == 0 {
		return l.createSegment(l.lastSeq+1, &segs)
	}
	l.segs = segs
	f, err := os.OpenFile(filepath.Join(l.dir, segs[len(segs)-1].name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	l.f = f
	return nil
}

// createSegment creates, fills and fsyncs the header of a new segment and
// makes it the append target; used by load and Rotate.
func (l *Log) createSegment(first uint64, segs *[]segment) error {
	name := segName(first)
	path := filepath.Join(l.dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("wal: creating segment: %w", err)
	}
	hdr := make([]byte, 0, segHeaderSize)
	hdr = append(hdr, segMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, first)
	hdr = binary.BigEndian.AppendUint32(hdr, crc32.Checksum(hdr, crcTable))
	if _, err := f.Write(hdr); err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: writing segment header: %w", err)
	}
	if err := l.hook(PointSegmentCreated); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		_ = f.Close()
		return err
	}
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			_ = f.Close()
			return fmt.Errorf("wal: %w", err)
		}
	}
	*segs = append(*segs, segment{first: first, name: name})
	l.segs = *segs
	l.f = f
	l.size = segHeaderSize
	return l.hook(PointSegmentSynced)
}

func (l *Log) hook(p Point) error {
	if l.isBroken.Load() {
		return ErrBroken
	}
	if l.opts.Hook == nil {
		return nil
	}
	if err := l.opts.Hook(p); err != nil {
		return fmt.Errorf("wal: stopped at %s: %w", p, err)
	}
	return nil
}

// Snapshot returns the loaded snapshot: the seq it covers (0 if there is
// none) and its data. The data belongs to the caller.
func (l *Log) Snapshot() (uint64, []byte) { return l.snapSeq, l.snapData }

// TornBytes reports how many bytes of a torn final record Open truncated.
func (l *Log) TornBytes() int64 { return l.torn }

// LastSeq returns the seq of the last record appended (or covered by the
// snapshot).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSeq
}

// Replay calls fn with every record after the snapshot, in seq order. The
// body is only valid during the call. Call it before the first Append.
func (l *Log) Replay(fn func(seq uint64, body []byte) error) error {
	l.mu.Lock()
	segs := append([]segment(nil), l.segs...)
	l.mu.Unlock()
	for i, s := range segs {
		_, err := scanSegment(l.dir, s, l.opts.MaxRecord, i == len(segs)-1, func(seq uint64, body []byte) error {
			if seq <= l.snapSeq {
				return nil
			}
			return fn(seq, body)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Append writes body as the next record and returns its seq. With
// Options.Sync it is fsynced before Append returns.
func (l *Log) Append(body []byte) (uint64, error) {
	if len(body) > l.opts.MaxRecord {
		return 0, fmt.Errorf("wal: record of %d bytes exceeds the %d-byte limit", len(body), l.opts.MaxRecord)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	seq := l.lastSeq + 1
	b := appendRecord(l.buf[:0], seq, body)
	if cap(b) <= 1<<20 {
		l.buf = b
	}
	if _, err := l.f.Write(b); err != nil {
		return 0, l.breakWith(fmt.Errorf("wal: append: %w", err))
	}
	l.size += int64(len(b))
	l.lastSeq = seq
	if err := l.hook(PointAppended); err != nil {
		return 0, l.breakWith(err)
	}
	if l.opts.Sync {
		if err := l.f.Sync(); err != nil {
			return 0, l.breakWith(fmt.Errorf("wal: fsync: %w", err))
		}
	}
	return seq, nil
}

// Sync fsyncs the records appended so far.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return l.breakWith(fmt.Errorf("wal: fsync: %w", err))
	}
	return nil
}

// Size returns the bytes in the segment being appended to.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

func appendRecord(b []byte, seq uint64, body []byte) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, crcTable))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:start+16], crcTable))
	return append(b, body...)
}

func (l *Log) usable() error {
	if l.closed {
		return errors.New("wal: log is closed")
	}
	return l.broken
}

func (l *Log) breakWith(err error) error {
	if l.broken == nil {
		l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		l.isBroken.Store(true)
	}
	return err
}

// Rotate starts a new segment for later appends and returns the seq of the
// last record before it: a snapshot of the state after that record may
// then be installed with InstallSnapshot. The caller must make sure that
// state is what it snapshots (no append may happen between its snapshot's
// cut and Rotate). A Log whose current segment is empty is not rotated.
func (l *Log) Rotate() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	seq := l.lastSeq
	if l.size == segHeaderSize {
		return seq, nil
	}
	// The current segment's records reach the disk before the snapshot
	// that covers them, even without Options.Sync.
	if err := l.f.Sync(); err != nil {
		return 0, l.breakWith(fmt.Errorf("wal: fsync: %w", err))
	}
	segs := l.segs
	if err := l.createSegment(seq+1, &segs); err != nil {
		return 0, l.breakWith(err)
	}
	return seq, nil
}

// InstallSnapshot atomically replaces the snapshot by data, which must hold
// the state after every record up to seq (as returned by Rotate), and then
// removes the segments it covers.
func (l *Log) InstallSnapshot(seq uint64, data []byte) error {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	if seq > l.lastSeq {
		l.mu.Unlock()
		return fmt.Errorf("wal: snapshot at seq %d is past the last record %d", seq, l.lastSeq)
	}
	l.mu.Unlock()
	// Appends go on while the snapshot is written: they go to segments
	// after seq, which this does not touch.
	if err := l.writeSnapshot(seq, data); err != nil {
		l.mu.Lock()
		err = l.breakWith(err)
		l.mu.Unlock()
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if seq > l.snapSeq {
		l.snapSeq = seq
	}
	l.snapData = nil
	removed := false
	for len(l.segs) > 1 && l.segs[1].first <= seq+1 {
		if err := os.Remove(filepath.Join(l.dir, l.segs[0].name)); err != nil {
			return l.breakWith(fmt.Errorf("wal: removing covered segment: %w", err))
		}
		l.segs = l.segs[1:]
		removed = true
		if err := l.hook(PointSegmentRemoved); err != nil {
			return l.breakWith(err)
		}
	}
	if removed {
		if err := syncDir(l.dir); err != nil {
			return l.breakWith(err)
		}
	}
	if err := l.hook(PointRotated); err != nil {
		return l.breakWith(err)
	}
	return nil
}

func (l *Log) writeSnapshot(seq uint64, data []byte) error {
	tmp := filepath.Join(l.dir, snapTmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("wal: writing snapshot: %w", err)
	}
	hdr := make([]byte, 0, snapHeaderSize)
	hdr = append(hdr, snapMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, seq)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(data)))
	hdr = binary.BigEndian.AppendUint32(hdr, crc32.Checksum(data, crcTable))
	hdr = binary.BigEndian.AppendUint32(hdr, crc32.Checksum(hdr, crcTable))
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = w.Write(hdr)
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: writing snapshot: %w", err)
	}
	if err := l.hook(PointSnapshotWritten); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: fsync of snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: writing snapshot: %w", err)
	}
	if err := l.hook(PointSnapshotSynced); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, snapName)); err != nil {
		return fmt.Errorf("wal: installing snapshot: %w", err)
	}
	if err := l.hook(PointSnapshotRenamed); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	return l.hook(PointSnapshotInstalled)
}

// Close closes the segment and releases the directory. It does not write
// a snapshot. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.f != nil {
		if l.broken == nil {
			err = l.f.Sync()
		}
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
	}
	unlockDir(l.lock)
	return err
}

func readSnapshot(dir string) (uint64, []byte, error) {
	path := filepath.Join(dir, snapName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("wal: reading snapshot: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("wal: snapshot %s is damaged (%s); the log segments it covers were removed when it was installed, so restore the directory from a backup", path, why)
	}
	if len(b) < snapHeaderSize || string(b[:8]) != snapMagic {
		return 0, nil, bad("not a snapshot header")
	}
	if crc32.Checksum(b[:snapHeaderSize-4], crcTable) != binary.BigEndian.Uint32(b[snapHeaderSize-4:]) {
		return 0, nil, bad("header checksum mismatch")
	}
	seq := binary.BigEndian.Uint64(b[8:])
	n := binary.BigEndian.Uint64(b[16:])
	data := b[snapHeaderSize:]
	if uint64(len(data)) != n {
		return 0, nil, bad(fmt.Sprintf("%d data bytes, header says %d", len(data), n))
	}
	if crc32.Checksum(data, crcTable) != binary.BigEndian.Uint32(b[24:]) {
		return 0, nil, bad("data checksum mismatch")
	}
	return seq, data, nil
}

func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, segPrefix) || !strings.HasSuffix(n, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, name: n})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

type scanResult struct {
	records    int
	next       uint64 // seq after the last good record
	end        int64  // offset after the last good record
	fileSize   int64
	headerTorn bool
}

// scanSegment reads s, checking every record, and calls fn (if non-nil)
// with each. In the last segment a torn tail ends the scan (res.end <
// res.fileSize); anything else that fails a check is a *CorruptError.
func scanSegment(dir string, s segment, maxRecord int, last bool, fn func(uint64, []byte) error) (scanResult, error) {
	path := filepath.Join(dir, s.name)
	f, err := os.Open(path)
	if err != nil {
		return scanResult{}, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return scanResult{}, fmt.Errorf("wal: %w", err)
	}
	res := scanResult{next: s.first, fileSize: st.Size()}
	corrupt := func(off int64, why string) error {
		return &CorruptError{Dir: dir, File: s.name, Offset: off, Seq: res.next, Reason: why}
	}
	br := bufio.NewReaderSize(f, 1<<16)
	var hdr [recHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:segHeaderSize]); err != nil {
		if last && (res.fileSize < segHeaderSize || allZero(f, 0, res.fileSize)) {
			res.headerTorn = true
			return res, nil
		}
		return res, corrupt(0, "segment header is truncated")
	}
	if string(hdr[:8]) != segMagic || crc32.Checksum(hdr[:16], crcTable) != binary.BigEndian.Uint32(hdr[16:20]) {
		if last && allZero(f, 0, res.fileSize) {
			res.headerTorn = true
			return res, nil
		}
		return res, corrupt(0, "segment header checksum mismatch")
	}
	if first := binary.BigEndian.Uint64(hdr[8:16]); first != s.first {
		return res, corrupt(0, fmt.Sprintf("segment header says first record %d, its name %d", first, s.first))
	}
	off := int64(segHeaderSize)
	res.end = off
	var body []byte
	for off < res.fileSize {
		rest := res.fileSize - off
		// torn reports whether what is left of the file can only be an
		// interrupted write: in the last segment, nothing but zeros or an
		// unfinished record.
		torn := func() bool { return last && allZero(f, off, res.fileSize) }
		if rest < recHeaderSize {
			if last {
				return res, nil // a header cut short
			}
			return res, corrupt(off, "record header is truncated")
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return res, fmt.Errorf("wal: reading %s: %w", path, err)
		}
		if crc32.Checksum(hdr[:16], crcTable) != binary.BigEndian.Uint32(hdr[16:20]) {
			if torn() {
				return res, nil
			}
			return res, corrupt(off, "record header checksum mismatch")
		}
		n := int64(binary.BigEndian.Uint32(hdr[0:4]))
		seq := binary.BigEndian.Uint64(hdr[4:12])
		if seq != res.next {
			return res, corrupt(off, fmt.Sprintf("record has seq %d", seq))
		}
		if n > int64(maxRecord) {
			return res, corrupt(off, fmt.Sprintf("record length %d exceeds the %d-byte limit", n, maxRecord))
		}
		if off+recHeaderSize+n > res.fileSize {
			if last {
				return res, nil // the body was never wholly written
			}
			return res, corrupt(off, "record body is truncated")
		}
		if int64(cap(body)) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return res, fmt.Errorf("wal: reading %s: %w", path, err)
		}
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(hdr[12:16]) {
			return res, corrupt(off, "record checksum mismatch")
		}
		if fn != nil {
			if err := fn(seq, body); err != nil {
				return res, err
			}
		}
		off += recHeaderSize + n
		res.end = off
		res.next++
		res.records++
	}
	return res, nil
}

// allZero reports whether f's bytes in [from, to) are all zero (what a
// crash leaves where a write's blocks were allocated but not written).
func allZero(f *os.File, from, to int64) bool {
	buf := make([]byte, 32<<10)
	for from < to {
		n := int64(len(buf))
		if to-from < n {
			n = to - from
		}
		m, err := f.ReadAt(buf[:n], from)
		for _, c := range buf[:m] {
			if c != 0 {
				return false
			}
		}
		if err != nil && m < int(n) {
			return false
		}
		from += int64(m)
	}
	return true
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: truncating a torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: fsync of %s: %w", dir, err)
	}
	return nil
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, crcTable) }
