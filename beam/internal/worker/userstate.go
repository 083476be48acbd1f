package worker

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/galeproject/gale/shuffle"
)

// User state. A stateful ParDo's stage reads a keyed edge: each task owns
// the keys of its partition and receives all of a key's elements
// together (stateful.go). It serves the ParDo's state calls from
// userState, keyed by transform, state ID, encoded key and encoded
// window, as the Fn API's state service would, and drops it when the
// batch of keys it belongs to is done (its elements processed and its
// timers fired), so a task holds the state of one batch of keys at a
// time.
//
// Every state kind the Go SDK has comes down to three shapes: bags (value,
// bag and combining state: an append-only byte string of encoded values,
// cleared by a write to the clearer), multimaps (map and set state: a bag
// per map key, plus the keys in insertion order) and ordered lists
// (entries of a sort key and an encoded value, each appended by one Write,
// read by sort-key range, stable for equal keys).
//
// Spilling: the bytes held by every bag (including the bags of map keys)
// count against a limit (a quarter of the task's memory budget); past it,
// the largest bags move to files in the task's private directory, and a
// spilled bag's appends go to its file. The SDK itself reads a key's
// state whole when a DoFn reads it (its state provider caches the values
// for the element), so one key's state must fit in memory on any runner;
// what spilling bounds is the state of many keys, and bags written and
// never read. Ordered lists stay in memory (the SDK reads them whole).

// userState is the user state of one task's current batch of keys. It is
// safe for concurrent use.
type userState struct {
	files *iterableFiles // where spilled bags go
	limit int64          // bytes of bags held in memory before spilling

	mu    sync.Mutex
	bags  map[string]*bag
	maps  map[string]*multimap
	lists map[string]*orderedList
	held  atomic.Int64 // bytes of bags in memory
	// spilled counts bags moved to files and their bytes, for the report.
	spilledBags, spilledBytes int64
}

func newUserState(files *iterableFiles, limit int64) *userState {
	u := &userState{files: files, limit: limit}
	u.clearAll()
	return u
}

// bytes returns the bytes of state held in memory.
func (u *userState) bytes() int64 { return u.held.Load() }

// reset drops every key's state (the batch is done).
func (u *userState) reset() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var err error
	for _, b := range u.bags {
		err = cmp.Or(err, b.drop())
	}
	for _, m := range u.maps {
		for _, b := range m.vals {
			err = cmp.Or(err, b.drop())
		}
	}
	u.clearAll()
	u.held.Store(0)
	return err
}

func (u *userState) clearAll() {
	u.bags, u.maps, u.lists = map[string]*bag{}, map[string]*multimap{}, map[string]*orderedList{}
}

// stateKey names one cell of state: transform, state ID, key and window.
func stateKey(id exec.StreamID, userStateID string, key, w []byte) string {
	var b []byte
	b = shuffle.AppendField(b, []byte(id.PtransformID))
	b = shuffle.AppendField(b, []byte(userStateID))
	b = shuffle.AppendField(b, key)
	b = shuffle.AppendField(b, w)
	return string(b)
}

// bag is an append-only byte string, in memory or, once spilled, in a
// file.
type bag struct {
	mem  []byte
	file *os.File
	fw   *bufio.Writer
	size int64 // bytes in the file
}

func (b *bag) drop() error {
	if b.file == nil {
		return nil
	}
	name := b.file.Name()
	err := b.file.Close()
	b.file, b.fw = nil, nil
	return cmp.Or(err, os.Remove(name))
}

// reader returns the bag's bytes as they are now.
func (b *bag) reader() (io.ReadCloser, error) {
	if b.file == nil {
		return io.NopCloser(bytes.NewReader(b.mem)), nil
	}
	if err := b.fw.Flush(); err != nil {
		return nil, fmt.Errorf("worker: writing spilled user state to %s: %w", b.file.Name(), err)
	}
	f, err := os.Open(b.file.Name())
	if err != nil {
		return nil, fmt.Errorf("worker: reading spilled user state: %w", err)
	}
	return &fileReader{Reader: bufio.NewReaderSize(io.NewSectionReader(f, 0, b.size), 64<<10), f: f}, nil
}

func (u *userState) bag(k string) *bag {
	b := u.bags[k]
	if b == nil {
		b = &bag{}
		u.bags[k] = b
	}
	return b
}

// add appends p to b and spills the largest bags past the limit. u.mu is
// held.
func (u *userState) add(b *bag, p []byte) error {
	if b.file != nil {
		if _, err := b.fw.Write(p); err != nil {
			return fmt.Errorf("worker: writing spilled user state to %s: %w", b.file.Name(), err)
		}
		b.size += int64(len(p))
		return nil
	}
	b.mem = append(b.mem, p...)
	if u.held.Add(int64(len(p))) > u.limit {
		return u.spill()
	}
	return nil
}

// clear empties b. u.mu is held.
func (u *userState) clear(b *bag) error {
	u.held.Add(-int64(len(b.mem)))
	b.mem, b.size = nil, 0
	return b.drop()
}

// spill moves the largest in-memory bags to files until half the limit
// is held. u.mu is held.
func (u *userState) spill() error {
	var all []*bag
	for _, b := range u.bags {
		all = append(all, b)
	}
	for _, m := range u.maps {
		for _, b := range m.vals {
			all = append(all, b)
		}
	}
	slices.SortFunc(all, func(a, b *bag) int { return cmp.Compare(len(b.mem), len(a.mem)) })
	for _, b := range all {
		if u.held.Load() <= u.limit/2 || len(b.mem) == 0 || b.file != nil {
			break
		}
		f, _, err := u.files.create()
		if err != nil {
			return fmt.Errorf("worker: spilling user state: %w", err)
		}
		b.file, b.fw = f, bufio.NewWriterSize(f, 64<<10)
		if _, err := b.fw.Write(b.mem); err != nil {
			return fmt.Errorf("worker: spilling user state to %s: %w", f.Name(), err)
		}
		b.size = int64(len(b.mem))
		u.held.Add(-int64(len(b.mem)))
		u.spilledBags++
		u.spilledBytes += int64(len(b.mem))
		b.mem = nil
	}
	return nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Bags: value, bag and combining state.

func (u *userState) bagReader(k string) (io.ReadCloser, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, ok := u.bags[k]
	if !ok {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return b.reader()
}

func (u *userState) bagAppender(k string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		return len(p), u.add(u.bag(k), p)
	})
}

func (u *userState) bagClearer(k string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if b, ok := u.bags[k]; ok {
			delete(u.bags, k)
			return len(p), u.clear(b)
		}
		return len(p), nil
	})
}

// multimap is map and set state: a bag of values per encoded map key.
type multimap struct {
	keys [][]byte // in insertion order
	vals map[string]*bag
}

func (u *userState) multimap(k string) *multimap {
	m := u.maps[k]
	if m == nil {
		m = &multimap{vals: map[string]*bag{}}
		u.maps[k] = m
	}
	return m
}

func (u *userState) mapReader(k string, mk []byte) (io.ReadCloser, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if m, ok := u.maps[k]; ok {
		if b, ok := m.vals[string(mk)]; ok {
			return b.reader()
		}
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

func (u *userState) mapAppender(k string, mk []byte) io.Writer {
	mk = bytes.Clone(mk)
	return writerFunc(func(p []byte) (int, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		m := u.multimap(k)
		b, ok := m.vals[string(mk)]
		if !ok {
			b = &bag{}
			m.vals[string(mk)] = b
			m.keys = append(m.keys, mk)
		}
		return len(p), u.add(b, p)
	})
}

// mapClearer clears one map key, or every key when mk is nil.
func (u *userState) mapClearer(k string, mk []byte) io.Writer {
	mk = bytes.Clone(mk)
	all := mk == nil
	return writerFunc(func(p []byte) (int, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		m, ok := u.maps[k]
		if !ok {
			return len(p), nil
		}
		var err error
		for i := 0; i < len(m.keys); i++ {
			key := m.keys[i]
			if !all && !bytes.Equal(key, mk) {
				continue
			}
			err = cmp.Or(err, u.clear(m.vals[string(key)]))
			delete(m.vals, string(key))
			m.keys = slices.Delete(m.keys, i, i+1)
			i--
		}
		if len(m.keys) == 0 {
			delete(u.maps, k)
		}
		return len(p), err
	})
}

func (u *userState) mapKeys(k string) io.ReadCloser {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b []byte
	if m, ok := u.maps[k]; ok {
		for _, key := range m.keys {
			b = append(b, key...)
		}
	}
	return io.NopCloser(bytes.NewReader(b))
}

// orderedList is ordered list state: entries kept sorted by sort key,
// equal keys in insertion order.
type orderedList struct {
	entries []listEntry
}

type listEntry struct {
	sortKey int64
	raw     []byte // the entry as written: varint(uint64(sortKey)) and the encoded value
}

var errBadListEntry = errors.New("worker: malformed ordered list state entry")

func (u *userState) listAppender(k string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		// The SDK writes each entry with one Write
		// (exec.encodeOrderedListEntry).
		key, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errBadListEntry
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		l := u.lists[k]
		if l == nil {
			l = &orderedList{}
			u.lists[k] = l
		}
		e := listEntry{sortKey: int64(key), raw: bytes.Clone(p)}
		i := sort.Search(len(l.entries), func(j int) bool { return l.entries[j].sortKey > e.sortKey })
		l.entries = slices.Insert(l.entries, i, e)
		return len(p), nil
	})
}

// listRange returns the entries with start <= sort key < end.
func (l *orderedList) rangeOf(start, end int64) (lo, hi int) {
	lo, _ = slices.BinarySearchFunc(l.entries, start, func(x listEntry, t int64) int { return cmp.Compare(x.sortKey, t) })
	hi, _ = slices.BinarySearchFunc(l.entries, end, func(x listEntry, t int64) int { return cmp.Compare(x.sortKey, t) })
	return lo, max(lo, hi)
}

func (u *userState) listReader(k string, start, end int64) io.ReadCloser {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b []byte
	if l, ok := u.lists[k]; ok {
		lo, hi := l.rangeOf(start, end)
		for _, e := range l.entries[lo:hi] {
			b = append(b, e.raw...)
		}
	}
	return io.NopCloser(bytes.NewReader(b))
}

func (u *userState) listClearer(k string, start, end int64) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if l, ok := u.lists[k]; ok {
			lo, hi := l.rangeOf(start, end)
			l.entries = slices.Delete(l.entries, lo, hi)
		}
		return len(p), nil
	})
}

// The StateReader's user-state methods.

func (s *stateReader) user(id exec.StreamID) (*userState, error) {
	if s.state == nil {
		return nil, fmt.Errorf("worker: transform %s uses user state, but its stage does not read a keyed input", id.PtransformID)
	}
	return s.state, nil
}

func (s *stateReader) OpenBagUserStateReader(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.ReadCloser, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.bagReader(stateKey(id, sid, key, w))
}

func (s *stateReader) OpenBagUserStateAppender(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.bagAppender(stateKey(id, sid, key, w)), nil
}

func (s *stateReader) OpenBagUserStateClearer(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.bagClearer(stateKey(id, sid, key, w)), nil
}

func (s *stateReader) OpenMultimapUserStateReader(_ context.Context, id exec.StreamID, sid string, key, w, mk []byte) (io.ReadCloser, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.mapReader(stateKey(id, sid, key, w), mk)
}

func (s *stateReader) OpenMultimapUserStateAppender(_ context.Context, id exec.StreamID, sid string, key, w, mk []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.mapAppender(stateKey(id, sid, key, w), mk), nil
}

func (s *stateReader) OpenMultimapUserStateClearer(_ context.Context, id exec.StreamID, sid string, key, w, mk []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	if mk == nil {
		mk = []byte{} // one key, the empty one; nil clears every key
	}
	return u.mapClearer(stateKey(id, sid, key, w), mk), nil
}

func (s *stateReader) OpenMultimapKeysUserStateReader(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.ReadCloser, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.mapKeys(stateKey(id, sid, key, w)), nil
}

func (s *stateReader) OpenMultimapKeysUserStateClearer(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.mapClearer(stateKey(id, sid, key, w), nil), nil
}

func (s *stateReader) OpenOrderedListUserStateReader(_ context.Context, id exec.StreamID, sid string, key, w []byte, start, end int64) (io.ReadCloser, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.listReader(stateKey(id, sid, key, w), start, end), nil
}

func (s *stateReader) OpenOrderedListUserStateAppender(_ context.Context, id exec.StreamID, sid string, key, w []byte) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.listAppender(stateKey(id, sid, key, w)), nil
}

func (s *stateReader) OpenOrderedListUserStateClearer(_ context.Context, id exec.StreamID, sid string, key, w []byte, start, end int64) (io.Writer, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, err
	}
	return u.listClearer(stateKey(id, sid, key, w), start, end), nil
}
