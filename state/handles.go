package state

import (
	"context"
	"fmt"

	"github.com/galeproject/gale/state/internal/wire"
)

// ref names one shared object; the typed handles embed it. Handles are
// small values, safe for concurrent use, and cost nothing to create: the
// object is created on the server by its first call.
type ref struct {
	c        *Client
	typ, key string
	flags    uint8
	init     []byte
}

func (r ref) call(ctx context.Context, method string, args ...[]byte) ([]byte, error) {
	return r.c.do(ctx, &request{typ: r.typ, key: r.key, method: method, flags: r.flags, init: r.init, args: args})
}

// Key returns the object's key.
func (r ref) Key() string { return r.key }

// Type returns the object's type name.
func (r ref) Type() string { return r.typ }

func decodeI64(b []byte, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	v, ok := decI64(b)
	if !ok {
		return 0, fmt.Errorf("state: malformed integer result (%d bytes)", len(b))
	}
	return v, nil
}

func decodeBool(b []byte, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	v, ok := decBool(b)
	if !ok {
		return false, fmt.Errorf("state: malformed boolean result")
	}
	return v, nil
}

func decodeOpt(b []byte, err error) ([]byte, bool, error) {
	if err != nil {
		return nil, false, err
	}
	v, ok, valid := decOpt(b)
	if !valid {
		return nil, false, fmt.Errorf("state: malformed optional result")
	}
	return v, ok, nil
}

// AtomicLong is a handle to a shared 64-bit integer.
type AtomicLong struct{ ref }

// AtomicLong returns a handle to the AtomicLong named key (initially 0).
func (c *Client) AtomicLong(key string) AtomicLong {
	return AtomicLong{ref{c: c, typ: TypeAtomicLong, key: key}}
}

// Persistent returns a handle whose calls create the object persistent
// (written through to the server's DataDir). Its calls fail with
// ErrMismatch if the object already exists as an ephemeral one.
func (a AtomicLong) Persistent() AtomicLong { a.flags |= wire.FlagPersistent; return a }

// Get returns the value.
func (a AtomicLong) Get(ctx context.Context) (int64, error) { return decodeI64(a.call(ctx, "Get")) }

// Set stores v.
func (a AtomicLong) Set(ctx context.Context, v int64) error {
	_, err := a.call(ctx, "Set", encI64(v))
	return err
}

// GetAndSet stores v and returns the previous value.
func (a AtomicLong) GetAndSet(ctx context.Context, v int64) (int64, error) {
	return decodeI64(a.call(ctx, "GetAndSet", encI64(v)))
}

// AddAndGet adds d and returns the new value.
func (a AtomicLong) AddAndGet(ctx context.Context, d int64) (int64, error) {
	return decodeI64(a.call(ctx, "AddAndGet", encI64(d)))
}

// GetAndAdd adds d and returns the previous value.
func (a AtomicLong) GetAndAdd(ctx context.Context, d int64) (int64, error) {
	return decodeI64(a.call(ctx, "GetAndAdd", encI64(d)))
}

// IncrementAndGet adds one and returns the new value.
func (a AtomicLong) IncrementAndGet(ctx context.Context) (int64, error) {
	return decodeI64(a.call(ctx, "IncrementAndGet"))
}

// DecrementAndGet subtracts one and returns the new value.
func (a AtomicLong) DecrementAndGet(ctx context.Context) (int64, error) {
	return decodeI64(a.call(ctx, "DecrementAndGet"))
}

// CompareAndSet stores update if the value is expect, and reports whether
// it did.
func (a AtomicLong) CompareAndSet(ctx context.Context, expect, update int64) (bool, error) {
	return decodeBool(a.call(ctx, "CompareAndSet", encI64(expect), encI64(update)))
}

// AtomicInt is a handle to a shared 32-bit integer; arithmetic wraps as
// Go's int32 does.
type AtomicInt struct{ ref }

// AtomicInt returns a handle to the AtomicInt named key (initially 0).
func (c *Client) AtomicInt(key string) AtomicInt {
	return AtomicInt{ref{c: c, typ: TypeAtomicInt, key: key}}
}

// Persistent returns a handle that creates the object persistent.
func (a AtomicInt) Persistent() AtomicInt { a.flags |= wire.FlagPersistent; return a }

func i32(v int64, err error) (int32, error) { return int32(v), err }

// Get returns the value.
func (a AtomicInt) Get(ctx context.Context) (int32, error) { return i32(decodeI64(a.call(ctx, "Get"))) }

// Set stores v.
func (a AtomicInt) Set(ctx context.Context, v int32) error {
	_, err := a.call(ctx, "Set", encI64(int64(v)))
	return err
}

// AddAndGet adds d and returns the new value.
func (a AtomicInt) AddAndGet(ctx context.Context, d int32) (int32, error) {
	return i32(decodeI64(a.call(ctx, "AddAndGet", encI64(int64(d)))))
}

// GetAndAdd adds d and returns the previous value.
func (a AtomicInt) GetAndAdd(ctx context.Context, d int32) (int32, error) {
	return i32(decodeI64(a.call(ctx, "GetAndAdd", encI64(int64(d)))))
}

// CompareAndSet stores update if the value is expect, and reports whether
// it did.
func (a AtomicInt) CompareAndSet(ctx context.Context, expect, update int32) (bool, error) {
	return decodeBool(a.call(ctx, "CompareAndSet", encI64(int64(expect)), encI64(int64(update))))
}

// Counter is a handle to a shared counter.
type Counter struct{ ref }

// Counter returns a handle to the Counter named key (initially 0).
func (c *Client) Counter(key string) Counter { return Counter{ref{c: c, typ: TypeCounter, key: key}} }

// Persistent returns a handle that creates the object persistent.
func (a Counter) Persistent() Counter { a.flags |= wire.FlagPersistent; return a }

// Add adds d and returns the new count.
func (a Counter) Add(ctx context.Context, d int64) (int64, error) {
	return decodeI64(a.call(ctx, "Add", encI64(d)))
}

// Increment adds one and returns the new count.
func (a Counter) Increment(ctx context.Context) (int64, error) {
	return decodeI64(a.call(ctx, "Increment"))
}

// Get returns the count.
func (a Counter) Get(ctx context.Context) (int64, error) { return decodeI64(a.call(ctx, "Get")) }

// Reset sets the count to zero and returns the previous count.
func (a Counter) Reset(ctx context.Context) (int64, error) { return decodeI64(a.call(ctx, "Reset")) }

// AtomicBoolean is a handle to a shared boolean.
type AtomicBoolean struct{ ref }

// AtomicBoolean returns a handle to the AtomicBoolean named key (initially
// false).
func (c *Client) AtomicBoolean(key string) AtomicBoolean {
	return AtomicBoolean{ref{c: c, typ: TypeAtomicBoolean, key: key}}
}

// Persistent returns a handle that creates the object persistent.
func (a AtomicBoolean) Persistent() AtomicBoolean { a.flags |= wire.FlagPersistent; return a }

// Get returns the value.
func (a AtomicBoolean) Get(ctx context.Context) (bool, error) { return decodeBool(a.call(ctx, "Get")) }

// Set stores v.
func (a AtomicBoolean) Set(ctx context.Context, v bool) error {
	_, err := a.call(ctx, "Set", encBool(v))
	return err
}

// GetAndSet stores v and returns the previous value.
func (a AtomicBoolean) GetAndSet(ctx context.Context, v bool) (bool, error) {
	return decodeBool(a.call(ctx, "GetAndSet", encBool(v)))
}

// CompareAndSet stores update if the value is expect, and reports whether
// it did.
func (a AtomicBoolean) CompareAndSet(ctx context.Context, expect, update bool) (bool, error) {
	return decodeBool(a.call(ctx, "CompareAndSet", encBool(expect), encBool(update)))
}

// AtomicByteArray is a handle to a shared fixed-length byte array.
type AtomicByteArray struct{ ref }

// AtomicByteArray returns a handle to the array named key of length n
// (zeroed at creation). Every call checks n against the array's length.
func (c *Client) AtomicByteArray(key string, n int) AtomicByteArray {
	return AtomicByteArray{ref{c: c, typ: TypeAtomicByteArray, key: key, init: encInit(int64(n))}}
}

// Persistent returns a handle that creates the object persistent.
func (a AtomicByteArray) Persistent() AtomicByteArray { a.flags |= wire.FlagPersistent; return a }

// Length returns the array's length.
func (a AtomicByteArray) Length(ctx context.Context) (int, error) {
	v, err := decodeI64(a.call(ctx, "Length"))
	return int(v), err
}

func oneByte(b []byte, err error) (byte, error) {
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, fmt.Errorf("state: malformed byte result")
	}
	return b[0], nil
}

// Get returns the byte at i.
func (a AtomicByteArray) Get(ctx context.Context, i int) (byte, error) {
	return oneByte(a.call(ctx, "Get", encI64(int64(i))))
}

// Set stores v at i.
func (a AtomicByteArray) Set(ctx context.Context, i int, v byte) error {
	_, err := a.call(ctx, "Set", encI64(int64(i)), []byte{v})
	return err
}

// AddAndGet adds d to the byte at i (wrapping) and returns the new byte.
func (a AtomicByteArray) AddAndGet(ctx context.Context, i int, d byte) (byte, error) {
	return oneByte(a.call(ctx, "AddAndGet", encI64(int64(i)), []byte{d}))
}

// CompareAndSet stores update at i if the byte there is expect.
func (a AtomicByteArray) CompareAndSet(ctx context.Context, i int, expect, update byte) (bool, error) {
	return decodeBool(a.call(ctx, "CompareAndSet", encI64(int64(i)), []byte{expect}, []byte{update}))
}

// GetRange returns n bytes from off.
func (a AtomicByteArray) GetRange(ctx context.Context, off, n int) ([]byte, error) {
	return a.call(ctx, "GetRange", encI64(int64(off)), encI64(int64(n)))
}

// SetRange copies data into the array at off, atomically.
func (a AtomicByteArray) SetRange(ctx context.Context, off int, data []byte) error {
	_, err := a.call(ctx, "SetRange", encI64(int64(off)), data)
	return err
}

// GetAll returns a copy of the whole array.
func (a AtomicByteArray) GetAll(ctx context.Context) ([]byte, error) { return a.call(ctx, "GetAll") }

// Map is a handle to a shared map from strings to byte strings.
type Map struct{ ref }

// Map returns a handle to the Map named key (initially empty).
func (c *Client) Map(key string) Map { return Map{ref{c: c, typ: TypeMap, key: key}} }

// Persistent returns a handle that creates the object persistent.
func (m Map) Persistent() Map { m.flags |= wire.FlagPersistent; return m }

// Put stores v under k and returns the previous value, if any.
func (m Map) Put(ctx context.Context, k string, v []byte) (prev []byte, existed bool, err error) {
	return decodeOpt(m.call(ctx, "Put", []byte(k), v))
}

// Get returns the value under k, if any.
func (m Map) Get(ctx context.Context, k string) ([]byte, bool, error) {
	return decodeOpt(m.call(ctx, "Get", []byte(k)))
}

// ContainsKey reports whether k is present.
func (m Map) ContainsKey(ctx context.Context, k string) (bool, error) {
	return decodeBool(m.call(ctx, "ContainsKey", []byte(k)))
}

// Delete removes k and returns its value, if it was present.
func (m Map) Delete(ctx context.Context, k string) ([]byte, bool, error) {
	return decodeOpt(m.call(ctx, "Delete", []byte(k)))
}

// PutIfAbsent stores v under k unless k is present; it returns the value
// already present and true, or nil and false if v was stored.
func (m Map) PutIfAbsent(ctx context.Context, k string, v []byte) ([]byte, bool, error) {
	return decodeOpt(m.call(ctx, "PutIfAbsent", []byte(k), v))
}

// Size returns the number of keys.
func (m Map) Size(ctx context.Context) (int, error) {
	v, err := decodeI64(m.call(ctx, "Size"))
	return int(v), err
}

// Keys returns the keys, sorted.
func (m Map) Keys(ctx context.Context) ([]string, error) {
	b, err := m.call(ctx, "Keys")
	if err != nil {
		return nil, err
	}
	items, err := decList(b)
	if err != nil {
		return nil, fmt.Errorf("state: malformed Keys result: %w", err)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return out, nil
}

// Clear removes every key.
func (m Map) Clear(ctx context.Context) error {
	_, err := m.call(ctx, "Clear")
	return err
}

// List is a handle to a shared list of byte strings.
type List struct{ ref }

// List returns a handle to the List named key (initially empty).
func (c *Client) List(key string) List { return List{ref{c: c, typ: TypeList, key: key}} }

// Persistent returns a handle that creates the object persistent.
func (l List) Persistent() List { l.flags |= wire.FlagPersistent; return l }

// Append adds v at the end and returns the new length.
func (l List) Append(ctx context.Context, v []byte) (int, error) {
	n, err := decodeI64(l.call(ctx, "Append", v))
	return int(n), err
}

// Get returns item i.
func (l List) Get(ctx context.Context, i int) ([]byte, error) {
	return l.call(ctx, "Get", encI64(int64(i)))
}

// Set replaces item i.
func (l List) Set(ctx context.Context, i int, v []byte) error {
	_, err := l.call(ctx, "Set", encI64(int64(i)), v)
	return err
}

// Len returns the number of items.
func (l List) Len(ctx context.Context) (int, error) {
	n, err := decodeI64(l.call(ctx, "Len"))
	return int(n), err
}

// Range returns items [from, to); to is clamped to the length.
func (l List) Range(ctx context.Context, from, to int) ([][]byte, error) {
	b, err := l.call(ctx, "Range", encI64(int64(from)), encI64(int64(to)))
	if err != nil {
		return nil, err
	}
	return decList(b)
}

// Clear removes every item.
func (l List) Clear(ctx context.Context) error {
	_, err := l.call(ctx, "Clear")
	return err
}

// Blob is a handle to a shared byte string.
type Blob struct{ ref }

// Blob returns a handle to the Blob named key (initially empty).
func (c *Client) Blob(key string) Blob { return Blob{ref{c: c, typ: TypeBlob, key: key}} }

// Persistent returns a handle that creates the object persistent.
func (b Blob) Persistent() Blob { b.flags |= wire.FlagPersistent; return b }

// Set replaces the contents.
func (b Blob) Set(ctx context.Context, data []byte) error {
	_, err := b.call(ctx, "Set", data)
	return err
}

// Get returns the contents.
func (b Blob) Get(ctx context.Context) ([]byte, error) { return b.call(ctx, "Get") }

// Append adds data at the end and returns the new length.
func (b Blob) Append(ctx context.Context, data []byte) (int, error) {
	n, err := decodeI64(b.call(ctx, "Append", data))
	return int(n), err
}

// Len returns the length.
func (b Blob) Len(ctx context.Context) (int, error) {
	n, err := decodeI64(b.call(ctx, "Len"))
	return int(n), err
}

// CyclicBarrier is a handle to a shared reusable barrier.
type CyclicBarrier struct{ ref }

// CyclicBarrier returns a handle to the barrier named key for parties
// callers. Every call checks parties against the barrier's: a mismatch
// fails with ErrMismatch.
func (c *Client) CyclicBarrier(key string, parties int) CyclicBarrier {
	return CyclicBarrier{ref{c: c, typ: TypeCyclicBarrier, key: key, init: encInit(int64(parties))}}
}

// Await blocks until parties callers have called Await in the current
// generation, then returns this caller's arrival index (0 = first,
// parties-1 = the one that tripped the barrier) and the generation number.
// If ctx ends first, the caller is withdrawn from the generation (which
// then waits for another party) and Await returns ctx's error. If the
// generation tripped before the withdrawal reached the server, the caller
// took part in it and Await returns its index and generation as usual,
// even though ctx has ended.
func (b CyclicBarrier) Await(ctx context.Context) (index int, generation int64, err error) {
	res, err := b.c.do(ctx, &request{typ: b.typ, key: b.key, method: "Await", init: b.init, blocking: true})
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 16 {
		return 0, 0, fmt.Errorf("state: malformed Await result")
	}
	i, _ := decI64(res[:8])
	g, _ := decI64(res[8:])
	return int(i), g, nil
}

// Waiting returns how many callers wait in the current generation.
func (b CyclicBarrier) Waiting(ctx context.Context) (int, error) {
	n, err := decodeI64(b.call(ctx, "Waiting"))
	return int(n), err
}

// Generation returns the number of generations completed.
func (b CyclicBarrier) Generation(ctx context.Context) (int64, error) {
	return decodeI64(b.call(ctx, "Generation"))
}

// Semaphore is a handle to a shared counting semaphore (FIFO).
type Semaphore struct{ ref }

// Semaphore returns a handle to the semaphore named key created with
// permits permits.
func (c *Client) Semaphore(key string, permits int) Semaphore {
	return Semaphore{ref{c: c, typ: TypeSemaphore, key: key, init: encInit(int64(permits))}}
}

// Acquire blocks until n permits are granted. If ctx ends first, the
// request is withdrawn and Acquire returns ctx's error: no permit was
// taken. If the permits were granted before the withdrawal reached the
// server, Acquire returns nil even though ctx has ended: the caller holds
// them and must release them.
func (s Semaphore) Acquire(ctx context.Context, n int) error {
	_, err := s.c.do(ctx, &request{typ: s.typ, key: s.key, method: "Acquire", init: s.init, blocking: true,
		args: [][]byte{encI64(int64(n))}})
	return err
}

// TryAcquire takes n permits if they are available now.
func (s Semaphore) TryAcquire(ctx context.Context, n int) (bool, error) {
	return decodeBool(s.call(ctx, "TryAcquire", encI64(int64(n))))
}

// Release returns n permits.
func (s Semaphore) Release(ctx context.Context, n int) error {
	_, err := s.call(ctx, "Release", encI64(int64(n)))
	return err
}

// Available returns the permits available now.
func (s Semaphore) Available(ctx context.Context) (int, error) {
	n, err := decodeI64(s.call(ctx, "Available"))
	return int(n), err
}

// Future is a handle to a shared write-once value.
type Future struct{ ref }

// Future returns a handle to the future named key.
func (c *Client) Future(key string) Future { return Future{ref{c: c, typ: TypeFuture, key: key}} }

// Set stores v; a second Set fails with ErrAlreadySet.
func (f Future) Set(ctx context.Context, v []byte) error {
	_, err := f.call(ctx, "Set", v)
	return err
}

// Get blocks until the future is set and returns its value.
func (f Future) Get(ctx context.Context) ([]byte, error) {
	return f.c.do(ctx, &request{typ: f.typ, key: f.key, method: "Get", blocking: true})
}

// IsDone reports whether the future is set.
func (f Future) IsDone(ctx context.Context) (bool, error) { return decodeBool(f.call(ctx, "IsDone")) }

// CountDownLatch is a handle to a shared one-shot latch.
type CountDownLatch struct{ ref }

// CountDownLatch returns a handle to the latch named key created with
// count.
func (c *Client) CountDownLatch(key string, count int) CountDownLatch {
	return CountDownLatch{ref{c: c, typ: TypeCountDownLatch, key: key, init: encInit(int64(count))}}
}

// CountDown decrements the count (not below zero) and returns it.
func (l CountDownLatch) CountDown(ctx context.Context) (int, error) {
	n, err := decodeI64(l.call(ctx, "CountDown"))
	return int(n), err
}

// Count returns the count.
func (l CountDownLatch) Count(ctx context.Context) (int, error) {
	n, err := decodeI64(l.call(ctx, "Count"))
	return int(n), err
}

// Await blocks until the count reaches zero.
func (l CountDownLatch) Await(ctx context.Context) error {
	_, err := l.c.do(ctx, &request{typ: l.typ, key: l.key, method: "Await", init: l.init, blocking: true})
	return err
}
