package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// RepairReport says what Repair did.
type RepairReport struct {
	// Damage is the damage found, nil if the log was intact.
	Damage *CorruptError
	// Kept is the number of records kept after the snapshot; LastSeq the
	// seq of the last one (or of the snapshot).
	Kept    int
	LastSeq uint64
	// SetAside lists the files (in the data directory) that now hold the
	// bytes from the damage on.
	SetAside []string
}

// Repair makes a damaged directory openable again while keeping every
// record before the damage: the damaged segment's bytes from the damage on
// are copied to a .damaged file and cut off, and every later segment is
// renamed to .damaged. Nothing is deleted. It holds the directory's lock,
// so it refuses to run beside a server using it.
func Repair(dir string) (RepairReport, error) {
	var rep RepairReport
	lf, err := lockDir(dir)
	if err != nil {
		return rep, err
	}
	defer unlockDir(lf)
	for round := 0; ; round++ {
		l := &Log{dir: dir, opts: Options{MaxRecord: DefaultMaxRecord}}
		err := l.load()
		if l.f != nil {
			_ = l.f.Close()
		}
		var ce *CorruptError
		if err == nil {
			rep.LastSeq = l.lastSeq
			rep.Kept = int(l.lastSeq - l.snapSeq)
			return rep, nil
		}
		if !errors.As(err, &ce) || round > 0 {
			return rep, err
		}
		rep.Damage = ce
		aside, err := setAside(dir, ce)
		rep.SetAside = aside
		if err != nil {
			return rep, err
		}
	}
}

func setAside(dir string, ce *CorruptError) ([]string, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var aside []string
	for _, s := range segs {
		path := filepath.Join(dir, s.name)
		switch {
		case s.name == ce.File && ce.Offset > segHeaderSize:
			name, err := copyTail(dir, s.name, ce.Offset)
			if err != nil {
				return aside, err
			}
			aside = append(aside, name)
			if err := truncateSync(path, ce.Offset); err != nil {
				return aside, err
			}
		case s.name >= ce.File: // the damaged segment from its header on, and every later one
			name := freeName(dir, s.name+damagedSuffix)
			if err := os.Rename(path, filepath.Join(dir, name)); err != nil {
				return aside, fmt.Errorf("wal: setting %s aside: %w", s.name, err)
			}
			aside = append(aside, name)
		}
	}
	return aside, syncDir(dir)
}

func copyTail(dir, name string, off int64) (string, error) {
	src, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("wal: %w", err)
	}
	defer src.Close()
	out := freeName(dir, name+damagedSuffix)
	dst, err := os.OpenFile(filepath.Join(dir, out), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("wal: %w", err)
	}
	_, err = io.Copy(dst, io.NewSectionReader(src, off, 1<<62))
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("wal: copying the damaged bytes of %s: %w", name, err)
	}
	return out, nil
}

// freeName returns name, or name.N for the first N that does not exist.
func freeName(dir, name string) string {
	cand := name
	for i := 1; ; i++ {
		if _, err := os.Lstat(filepath.Join(dir, cand)); errors.Is(err, os.ErrNotExist) {
			return cand
		}
		cand = fmt.Sprintf("%s.%d", name, i)
	}
}
