package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// model is a state machine made of records: each record appends its body
// to a list, so a record applied twice or lost shows.
type model struct{ items []string }

func (m *model) encode() []byte { return []byte(strings.Join(m.items, "\n")) }

func decode(b []byte) *model {
	if len(b) == 0 {
		return &model{}
	}
	return &model{items: strings.Split(string(b), "\n")}
}

// recoverModel opens dir and rebuilds the model from snapshot and log.
func recoverModel(t *testing.T, dir string, opts Options) (*Log, *model) {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, data := l.Snapshot()
	m := decode(data)
	last := uint64(0)
	if err := l.Replay(func(seq uint64, body []byte) error {
		if last != 0 && seq != last+1 {
			t.Fatalf("replay gave seq %d after %d", seq, last)
		}
		last = seq
		m.items = append(m.items, string(body))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return l, m
}

func appendN(t *testing.T, l *Log, m *model, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		body := fmt.Sprintf("r%d", i)
		if _, err := l.Append([]byte(body)); err != nil {
			t.Fatal(err)
		}
		m.items = append(m.items, body)
	}
}

func checkModel(t *testing.T, got *model, n int) {
	t.Helper()
	if len(got.items) != n {
		t.Fatalf("recovered %d records, want %d (%v)", len(got.items), n, got.items)
	}
	for i, it := range got.items {
		if it != fmt.Sprintf("r%d", i) {
			t.Fatalf("record %d is %q, want r%d (a record was replayed twice or lost)", i, it, i)
		}
	}
}

func TestAppendReplayRotate(t *testing.T) {
	dir := t.TempDir()
	l, m := recoverModel(t, dir, Options{})
	appendN(t, l, m, 0, 10)
	seq, err := l.Rotate()
	if err != nil || seq != 10 {
		t.Fatalf("Rotate = %d, %v", seq, err)
	}
	appendN(t, l, m, 10, 5)
	if err := l.InstallSnapshot(seq, (&model{items: m.items[:10]}).encode()); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, m, 15, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) != 1 || segs[0].first != 11 {
		t.Errorf("segments after rotation: %v, want one starting at 11", segs)
	}
	l, got := recoverModel(t, dir, Options{})
	defer l.Close()
	checkModel(t, got, 20)
	if l.LastSeq() != 20 {
		t.Errorf("LastSeq = %d", l.LastSeq())
	}
}

var errCrash = errors.New("crash")

// TestCrashAtEveryRotationStep stops the log at each step of append,
// segment creation, snapshot installation and segment removal (the n-th
// time the step is reached, for several n), reopens the directory as a
// restarted process would, and checks that every record is there exactly
// once. A log whose snapshot covers records it then replays again, or
// whose truncation is lost, fails here.
func TestCrashAtEveryRotationStep(t *testing.T) {
	for _, p := range Points {
		for nth := 1; nth <= 3; nth++ {
			t.Run(fmt.Sprintf("%s#%d", p, nth), func(t *testing.T) {
				dir := t.TempDir()
				hits := 0
				crashed := false
				opts := Options{Hook: func(at Point) error {
					if at == p {
						hits++
						if hits == nth {
							crashed = true
							return errCrash
						}
					}
					return nil
				}}
				l, err := Open(dir, opts)
				if err != nil {
					if !errors.Is(err, errCrash) {
						t.Fatal(err)
					}
					l, err = Open(dir, Options{})
					if err != nil {
						t.Fatal(err)
					}
				}
				m := &model{}
				acked := 0
				// Three rounds of appends, each ended by a rotation, until
				// the hook crashes the log.
			rounds:
				for round := 0; round < 3; round++ {
					for i := 0; i < 4; i++ {
						body := fmt.Sprintf("r%d", acked)
						if _, err := l.Append([]byte(body)); err != nil {
							if !errors.Is(err, errCrash) {
								t.Fatal(err)
							}
							// The record was written before the crash; it
							// may or may not be recovered, never twice.
							m.items = append(m.items, body)
							break rounds
						}
						m.items = append(m.items, body)
						acked++
					}
					seq, err := l.Rotate()
					if err != nil {
						if !errors.Is(err, errCrash) {
							t.Fatal(err)
						}
						break
					}
					if err := l.InstallSnapshot(seq, m.encode()); err != nil {
						if !errors.Is(err, errCrash) {
							t.Fatal(err)
						}
						break
					}
				}
				_ = l.Close()
				if !crashed {
					t.Fatalf("step %s was never reached", p)
				}
				l2, got := recoverModel(t, dir, Options{})
				if n := len(got.items); n != acked && n != len(m.items) {
					t.Fatalf("recovered %d records, want %d (acknowledged) or %d", n, acked, len(m.items))
				}
				checkModel(t, got, len(got.items))
				// The log goes on from there.
				appendN(t, l2, got, len(got.items), 3)
				want := len(got.items)
				_ = l2.Close()
				l3, again := recoverModel(t, dir, Options{})
				defer l3.Close()
				checkModel(t, again, want)
			})
		}
	}
}

func writeLog(t *testing.T, dir string, n int) []int64 {
	t.Helper()
	l, m := recoverModel(t, dir, Options{})
	var offs []int64
	for i := 0; i < n; i++ {
		offs = append(offs, l.Size())
		appendN(t, l, m, i, 1)
	}
	offs = append(offs, l.Size())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return offs
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	return filepath.Join(dir, segs[0].name)
}

// TestTornTailIsDropped cuts the log at every byte of its last record, as a
// crash during the write leaves it: the complete records are recovered,
// the torn one is dropped, and appends continue after them.
func TestTornTailIsDropped(t *testing.T) {
	src := t.TempDir()
	offs := writeLog(t, src, 5)
	full, err := os.ReadFile(onlySegment(t, src))
	if err != nil {
		t.Fatal(err)
	}
	for cut := offs[4]; cut < offs[5]; cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		l, got := recoverModel(t, dir, Options{})
		checkModel(t, got, 4)
		if want := offs[5] - cut; cut > offs[4] && l.TornBytes() != cut-offs[4] {
			t.Errorf("cut at %d: TornBytes = %d, want %d", cut, l.TornBytes(), want)
		}
		appendN(t, l, got, 4, 2)
		_ = l.Close()
		l, got = recoverModel(t, dir, Options{})
		checkModel(t, got, 6)
		_ = l.Close()
	}
	// Zeros after the last record (blocks allocated, never written) are a
	// torn tail too.
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, segName(1)), append(append([]byte(nil), full...), make([]byte, 4096)...), 0o644)
	l, got := recoverModel(t, dir, Options{})
	checkModel(t, got, 5)
	_ = l.Close()
}

// TestFlippedByteRefusesStartAndRepairKeepsThePrefix flips each byte of a
// record in the middle of the log, and of the last record: Open refuses,
// naming the file and the record's offset, and Repair keeps every record
// before it and sets the rest aside. A log that skipped the damaged record
// and everything after it (and then emptied itself) fails here.
func TestFlippedByteRefusesStartAndRepairKeepsThePrefix(t *testing.T) {
	src := t.TempDir()
	const n = 6
	offs := writeLog(t, src, n)
	full, err := os.ReadFile(onlySegment(t, src))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []int{2, n - 1} {
		for pos := offs[rec]; pos < offs[rec+1]; pos++ {
			dir := t.TempDir()
			b := append([]byte(nil), full...)
			b[pos] ^= 0x10
			path := filepath.Join(dir, segName(1))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, Options{})
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("record %d, byte %d flipped: Open = %v, want a CorruptError", rec, pos, err)
			}
			if ce.Offset != offs[rec] || ce.File != segName(1) || ce.Kept != rec || ce.Seq != uint64(rec+1) {
				t.Fatalf("record %d, byte %d flipped: %+v, want offset %d, %d kept", rec, pos, ce, offs[rec], rec)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("byte %d", offs[rec])) {
				t.Errorf("message does not name the offset: %v", err)
			}
			rep, err := Repair(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Damage == nil || rep.Kept != rec || len(rep.SetAside) != 1 {
				t.Fatalf("Repair = %+v", rep)
			}
			aside, _ := os.ReadFile(filepath.Join(dir, rep.SetAside[0]))
			if string(aside) != string(b[offs[rec]:]) {
				t.Errorf("set-aside file does not hold the damaged bytes")
			}
			l, got := recoverModel(t, dir, Options{})
			checkModel(t, got, rec)
			appendN(t, l, got, rec, 1)
			_ = l.Close()
			if rep, err := Repair(dir); err != nil || rep.Damage != nil || rep.Kept != rec+1 {
				t.Errorf("second Repair = %+v, %v, want nothing to do", rep, err)
			}
		}
	}
}

// TestDamageInEarlierSegment: a torn-looking end is damage unless it is in
// the last segment.
func TestDamageInEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	l, m := recoverModel(t, dir, Options{})
	appendN(t, l, m, 0, 3)
	if _, err := l.Rotate(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, m, 3, 3)
	_ = l.Close()
	first := filepath.Join(dir, segName(1))
	st, _ := os.Stat(first)
	if err := os.Truncate(first, st.Size()-3); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != segName(1) || ce.Kept != 2 {
		t.Fatalf("Open = %v", err)
	}
	rep, err := Repair(dir)
	if err != nil || rep.Kept != 2 || len(rep.SetAside) != 2 {
		t.Fatalf("Repair = %+v, %v", rep, err)
	}
	l, got := recoverModel(t, dir, Options{})
	defer l.Close()
	checkModel(t, got, 2)
}

func TestSnapshotDamageIsRefused(t *testing.T) {
	dir := t.TempDir()
	l, m := recoverModel(t, dir, Options{})
	appendN(t, l, m, 0, 3)
	seq, _ := l.Rotate()
	if err := l.InstallSnapshot(seq, m.encode()); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	path := filepath.Join(dir, snapName)
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	_ = os.WriteFile(path, b, 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("Open with a damaged snapshot = %v", err)
	}
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if _, err := Repair(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("Repair beside an open log = %v, want ErrLocked", err)
	}
	_ = l.Close()
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = l.Close()
}

func TestRecordLimits(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{MaxRecord: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(make([]byte, 17)); err == nil {
		t.Fatal("a record over MaxRecord was accepted")
	}
	_ = l.Close()
	// A header that declares a huge length (checksummed, so not a flip)
	// is refused by the reader without allocating it.
	path := filepath.Join(dir, segName(1))
	b := appendRecord(nil, 1, []byte("x"))
	binary.BigEndian.PutUint32(b[0:], 1<<31)
	hdrCRC := crcOf(b[:16])
	binary.BigEndian.PutUint32(b[16:], hdrCRC)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write(append(b, make([]byte, 64)...))
	_ = f.Close()
	_, err = Open(dir, Options{MaxRecord: 16})
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "limit") {
		t.Fatalf("Open = %v", err)
	}
}

func crcOf(b []byte) uint32 { return crc32Checksum(b) }
