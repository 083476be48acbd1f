package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/galeproject/gale/state/internal/wire"
)

// Persistence: a snapshot file holds every persistent object's state; an
// append-only log holds the creations and mutating calls since. A log
// record is
//
//	uint32 length, uint32 CRC-32C of the body, body = wire.Call encoding
//
// where an empty Method records a creation. On start the snapshot is
// loaded, the log replayed (a torn final record, from a crash mid-write, is
// dropped), and a fresh snapshot written with an empty log. Close writes a
// snapshot too. Calls are logged under the object's lock, so the log order
// of one object's calls is their execution order; replaying assumes the
// methods of persistent objects are deterministic (built-ins are).
//
// Snapshots are written to a temporary file, fsynced and renamed over the
// old one, so a crash leaves either the old or the new snapshot.

const (
	snapshotFile = "objects.snap"
	logFile      = "objects.log"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type store struct {
	dir  string
	sync bool

	mu  sync.Mutex
	log *os.File
	buf []byte
}

func openStore(dir string, syncWrites bool) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state: DataDir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state: opening log in DataDir %s: %w", dir, err)
	}
	return &store{dir: dir, sync: syncWrites, log: f}, nil
}

func (st *store) close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.log == nil {
		return nil
	}
	err := st.log.Close()
	st.log = nil
	return err
}

func (st *store) append(c *wire.Call) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.log == nil {
		return ErrClosed
	}
	b := append(st.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	b = wire.AppendCall(b, c)
	binary.BigEndian.PutUint32(b[0:], uint32(len(b)-8))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crcTable))
	st.buf = b
	if _, err := st.log.Write(b); err != nil {
		return err
	}
	if st.sync {
		return st.log.Sync()
	}
	return nil
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

// recover loads the snapshot and replays the log into s.objects, then
// checkpoints.
func (s *Server) recover() error {
	path := filepath.Join(s.store.dir, snapshotFile)
	if b, err := os.ReadFile(path); err == nil {
		var recs []snapRecord
		if err := gobLoad(b, &recs); err != nil {
			return fmt.Errorf("state: snapshot %s is corrupt: %w", path, err)
		}
		for _, r := range recs {
			obj, st := s.newObject(r.Type, r.Init, true)
			if st != nil {
				return fmt.Errorf("state: snapshot %s: object %s %q: %s", path, r.Type, r.Key, st.msg)
			}
			if err := obj.unmarshal(r.State); err != nil {
				return fmt.Errorf("state: snapshot %s: object %s %q: %w", path, r.Type, r.Key, err)
			}
			s.objects[objectID(r.Type, r.Key)] = &entry{typ: r.Type, key: r.Key, init: r.Init, persistent: true, obj: obj}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: reading snapshot: %w", err)
	}
	if _, err := s.store.log.Seek(0, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(s.store.log)
	for n := 0; ; n++ {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break // end of log, or a torn header
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:4]))
		if _, err := io.ReadFull(br, body); err != nil || crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
			break // torn or corrupt tail
		}
		c, err := wire.DecodeCall(body)
		if err != nil {
			return fmt.Errorf("state: log record %d: %w", n, err)
		}
		id := objectID(c.Type, c.Key)
		e := s.objects[id]
		if c.Method == "" {
			if e == nil {
				obj, st := s.newObject(c.Type, c.Init, true)
				if st != nil {
					return fmt.Errorf("state: log record %d: %s", n, st.msg)
				}
				s.objects[id] = &entry{typ: c.Type, key: c.Key, init: append([]byte(nil), c.Init...), persistent: true, obj: obj}
			}
			continue
		}
		if e == nil {
			return fmt.Errorf("state: log record %d: call on %s %q before its creation", n, c.Type, c.Key)
		}
		if _, st, _ := e.obj.invoke(c.Method, c.Args, nil); st != nil && st.code == wire.CodeInternal {
			return fmt.Errorf("state: replaying log record %d: %s", n, st.msg)
		}
	}
	return s.checkpoint()
}

// checkpoint writes a snapshot of every persistent object and empties the
// log. Callers ensure no call runs concurrently (start-up, or Close after
// every connection has stopped).
func (s *Server) checkpoint() error {
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
			return fmt.Errorf("state: snapshot of %s %q: %w", e.typ, e.key, err)
		}
		recs = append(recs, snapRecord{Type: e.typ, Key: e.key, Init: e.init, State: b})
	}
	s.mu.RUnlock()
	b, err := gobBytes(recs)
	if err != nil {
		return fmt.Errorf("state: encoding snapshot: %w", err)
	}
	path := filepath.Join(s.store.dir, snapshotFile)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("state: writing snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("state: installing snapshot: %w", err)
	}
	if d, err := os.Open(s.store.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if s.store.log == nil {
		return nil
	}
	if err := s.store.log.Truncate(0); err != nil {
		return fmt.Errorf("state: truncating log: %w", err)
	}
	_, err = s.store.log.Seek(0, io.SeekStart)
	return err
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
