package state

import (
	"errors"
	"fmt"
	"sync"

	"github.com/galeproject/gale/state/internal/wal"
	"github.com/galeproject/gale/state/internal/wire"
)

// Persistence keeps persistent objects in a write-ahead log and snapshot
// (state/internal/wal). Each creation and each mutating call of a
// persistent object is a log record (the call's wire encoding; an empty
// Method records a creation), appended under the object's lock before the
// reply, so one object's records are in execution order. Records carry
// consecutive sequence numbers and checksums; a snapshot records the last
// sequence number it holds, so start-up applies exactly the records after
// it, whatever step of a checkpoint a crash interrupted.
//
// A checkpoint rotates the log and writes a snapshot of every persistent
// object at that cut: with persistMu held for writing (every persistent
// call holds it for reading around its execution and append) the log is
// rotated and the objects are marshalled; the snapshot is then written,
// fsynced and renamed into place, and the covered segments removed, while
// calls go on. The server checkpoints at start-up, when the log passes
// CheckpointBytes, and at Close.

// ErrDamaged means the data directory failed a checksum or sequence check
// at start-up. The error names the file, the byte offset and the command
// that keeps every record before the damage (RepairDataDir).
var ErrDamaged = errors.New("state: data directory is damaged")

// ErrDataDirLocked means another server holds the data directory.
var ErrDataDirLocked = errors.New("state: data directory in use")

type store struct {
	dir string
	log *wal.Log

	// ckMu serializes checkpoints.
	ckMu sync.Mutex
	// checkpointBytes is the log size that triggers a checkpoint.
	checkpointBytes int64
	kick            chan struct{} // cap 1: a checkpoint is due

	buf sync.Pool
}

func openStore(cfg *ServerConfig) (*store, error) {
	l, err := wal.Open(cfg.DataDir, wal.Options{Sync: cfg.SyncWrites, Hook: cfg.walHook})
	if err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	return &store{dir: cfg.DataDir, log: l, checkpointBytes: cfg.CheckpointBytes, kick: make(chan struct{}, 1),
		buf: sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}}, nil
}

func dataDirError(dir string, err error) error {
	var ce *wal.CorruptError
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("%w: %v. Start-up refused so that nothing after it is lost silently. "+
			"To keep those %d records and set the rest aside in a .damaged file, run: gale dso repair --data-dir %s",
			ErrDamaged, err, ce.Kept, dir)
	case errors.Is(err, wal.ErrLocked):
		return fmt.Errorf("%w: %v", ErrDataDirLocked, err)
	}
	return fmt.Errorf("state: DataDir %s: %w", dir, err)
}

// RepairReport says what RepairDataDir did.
type RepairReport struct {
	// Damaged describes the damage found; empty if there was none.
	Damaged string
	// Kept is the number of log records kept after the snapshot.
	Kept int
	// SetAside lists the files in the data directory that now hold the
	// bytes from the damage on.
	SetAside []string
}

// RepairDataDir makes a damaged data directory usable again: it keeps
// every log record before the first damaged one and moves the rest into
// .damaged files (nothing is deleted). It refuses to run while a server
// holds the directory.
func RepairDataDir(dir string) (RepairReport, error) {
	r, err := wal.Repair(dir)
	rep := RepairReport{Kept: r.Kept, SetAside: r.SetAside}
	if r.Damage != nil {
		rep.Damaged = r.Damage.Error()
	}
	if err != nil {
		return rep, dataDirError(dir, err)
	}
	return rep, nil
}

func (st *store) close() error { return st.log.Close() }

func (st *store) append(c *wire.Call) error {
	bp := st.buf.Get().(*[]byte)
	b := wire.AppendCall((*bp)[:0], c)
	_, err := st.log.Append(b)
	*bp = b
	st.buf.Put(bp)
	if err == nil && st.checkpointBytes > 0 && st.log.Size() >= st.checkpointBytes {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
	return err
}

func (st *store) appendCreate(e *entry) error {
	return st.append(&wire.Call{Type: e.typ, Key: e.key, Init: e.init, Flags: wire.FlagPersistent})
}

func (st *store) appendCall(e *entry, method string, args [][]byte) error {
	return st.append(&wire.Call{Type: e.typ, Key: e.key, Method: method, Args: args})
}

// snapRecord is one object in a snapshot.
type snapRecord struct {
	Type, Key string
	Init      []byte
	State     []byte
}

// recover loads the snapshot and applies the log records after it into
// s.objects, then checkpoints.
func (s *Server) recover() error {
	dir := s.store.dir
	if _, b := s.store.log.Snapshot(); len(b) > 0 {
		var recs []snapRecord
		if err := gobLoad(b, &recs); err != nil {
			return fmt.Errorf("state: snapshot in %s does not decode: %w", dir, err)
		}
		for _, r := range recs {
			obj, st := s.newObject(r.Type, r.Init, true)
			if st != nil {
				return fmt.Errorf("state: snapshot in %s: object %s %q: %s", dir, r.Type, r.Key, st.msg)
			}
			if err := obj.unmarshal(r.State); err != nil {
				return fmt.Errorf("state: snapshot in %s: object %s %q: %w", dir, r.Type, r.Key, err)
			}
			s.objects[objectID(r.Type, r.Key)] = &entry{typ: r.Type, key: r.Key, init: r.Init, persistent: true, obj: obj}
		}
	}
	err := s.store.log.Replay(func(seq uint64, body []byte) error {
		c, err := wire.DecodeCall(body)
		if err != nil {
			return fmt.Errorf("state: log record %d in %s: %w", seq, dir, err)
		}
		id := objectID(c.Type, c.Key)
		e := s.objects[id]
		if c.Method == "" {
			if e == nil {
				obj, st := s.newObject(c.Type, c.Init, true)
				if st != nil {
					return fmt.Errorf("state: log record %d in %s: %s", seq, dir, st.msg)
				}
				s.objects[id] = &entry{typ: c.Type, key: c.Key, init: append([]byte(nil), c.Init...), persistent: true, obj: obj}
			}
			return nil
		}
		if e == nil {
			return fmt.Errorf("state: log record %d in %s: call on %s %q before its creation", seq, dir, c.Type, c.Key)
		}
		if _, st, _ := e.obj.invoke(c.Method, c.Args, nil); st != nil && st.code == wire.CodeInternal {
			return fmt.Errorf("state: replaying log record %d in %s: %s", seq, dir, st.msg)
		}
		return nil
	})
	if err != nil {
		var ce *wal.CorruptError
		if errors.As(err, &ce) {
			return dataDirError(dir, err)
		}
		return err
	}
	return s.checkpoint()
}

// checkpoint writes a snapshot of every persistent object and removes the
// log records it covers. Calls may run meanwhile: they wait only while the
// log is rotated and the objects are marshalled.
func (s *Server) checkpoint() error {
	s.store.ckMu.Lock()
	defer s.store.ckMu.Unlock()
	s.persistMu.Lock()
	seq, err := s.store.log.Rotate()
	if err != nil {
		s.persistMu.Unlock()
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	s.mu.RLock()
	var recs []snapRecord
	for _, e := range s.objects {
		if !e.persistent {
			continue
		}
		e.mu.Lock()
		b, err := e.obj.marshal()
		e.mu.Unlock()
		if err != nil {
			s.mu.RUnlock()
			s.persistMu.Unlock()
			return fmt.Errorf("state: snapshot of %s %q: %w", e.typ, e.key, err)
		}
		recs = append(recs, snapRecord{Type: e.typ, Key: e.key, Init: e.init, State: b})
	}
	s.mu.RUnlock()
	s.persistMu.Unlock()
	b, err := gobBytes(recs)
	if err != nil {
		return fmt.Errorf("state: encoding snapshot: %w", err)
	}
	if err := s.store.log.InstallSnapshot(seq, b); err != nil {
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	return nil
}

// checkpointLoop checkpoints whenever the log passes CheckpointBytes,
// until the server closes. Serve runs it; the server's WaitGroup owns it.
func (s *Server) checkpointLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.store.kick:
		}
		if err := s.checkpoint(); err != nil {
			// Calls keep failing with ErrPersist once the log is broken;
			// the checkpoint is retried at the next kick or at Close.
			s.logf("state: %v", err)
		}
	}
}
