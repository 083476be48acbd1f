package state

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBuiltinsBasic(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, s.Addr())
	ctx := context.Background()

	a := c.AtomicLong("a")
	if v, err := a.AddAndGet(ctx, 5); err != nil || v != 5 {
		t.Fatalf("AddAndGet = %d, %v", v, err)
	}
	if ok, _ := a.CompareAndSet(ctx, 4, 9); ok {
		t.Fatal("CAS with wrong expect succeeded")
	}
	if ok, _ := a.CompareAndSet(ctx, 5, 9); !ok {
		t.Fatal("CAS failed")
	}
	if v, _ := a.GetAndAdd(ctx, 1); v != 9 {
		t.Fatalf("GetAndAdd = %d", v)
	}
	if v, _ := a.Get(ctx); v != 10 {
		t.Fatalf("Get = %d", v)
	}
	ai := c.AtomicInt("i")
	_ = ai.Set(ctx, 2147483647)
	if v, _ := ai.AddAndGet(ctx, 1); v != -2147483648 {
		t.Fatalf("AtomicInt did not wrap: %d", v)
	}
	ab := c.AtomicBoolean("b")
	if ok, _ := ab.CompareAndSet(ctx, false, true); !ok {
		t.Fatal("bool CAS")
	}
	if v, _ := ab.Get(ctx); !v {
		t.Fatal("bool Get")
	}
	cn := c.Counter("c")
	_, _ = cn.Add(ctx, 3)
	if v, _ := cn.Increment(ctx); v != 4 {
		t.Fatalf("Counter = %d", v)
	}
	arr := c.AtomicByteArray("arr", 8)
	_ = arr.SetRange(ctx, 2, []byte{1, 2, 3})
	if v, _ := arr.AddAndGet(ctx, 3, 10); v != 12 {
		t.Fatalf("byte AddAndGet = %d", v)
	}
	if all, _ := arr.GetAll(ctx); !bytes.Equal(all, []byte{0, 0, 1, 12, 3, 0, 0, 0}) {
		t.Fatalf("GetAll = %v", all)
	}
	if err := arr.SetRange(ctx, 7, []byte{1, 2}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("SetRange out of range: %v", err)
	}
	if _, err := c.AtomicByteArray("arr", 9).Length(ctx); !errors.Is(err, ErrMismatch) {
		t.Fatalf("length mismatch: %v", err)
	}

	m := c.Map("m")
	if _, had, _ := m.Put(ctx, "k", []byte("v1")); had {
		t.Fatal("Put reported a previous value")
	}
	if prev, had, _ := m.Put(ctx, "k", []byte("v2")); !had || string(prev) != "v1" {
		t.Fatalf("Put prev = %q %v", prev, had)
	}
	if v, had, _ := m.PutIfAbsent(ctx, "k", []byte("x")); !had || string(v) != "v2" {
		t.Fatalf("PutIfAbsent = %q %v", v, had)
	}
	_, _, _ = m.PutIfAbsent(ctx, "j", []byte("y"))
	if keys, _ := m.Keys(ctx); len(keys) != 2 || keys[0] != "j" || keys[1] != "k" {
		t.Fatalf("Keys = %v", keys)
	}
	if _, had, _ := m.Delete(ctx, "k"); !had {
		t.Fatal("Delete")
	}
	if n, _ := m.Size(ctx); n != 1 {
		t.Fatalf("Size = %d", n)
	}

	l := c.List("l")
	for i := 0; i < 5; i++ {
		_, _ = l.Append(ctx, []byte{byte(i)})
	}
	if r, _ := l.Range(ctx, 1, 10); len(r) != 4 || r[0][0] != 1 || r[3][0] != 4 {
		t.Fatalf("Range = %v", r)
	}
	if _, err := l.Get(ctx, 5); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Get(5): %v", err)
	}
	bl := c.Blob("blob")
	_ = bl.Set(ctx, []byte("hello "))
	_, _ = bl.Append(ctx, []byte("world"))
	if v, _ := bl.Get(ctx); string(v) != "hello world" {
		t.Fatalf("Blob = %q", v)
	}

	// Objects of different types under one key are different objects.
	if v, _ := c.Counter("a").Get(ctx); v != 0 {
		t.Fatalf("Counter a = %d", v)
	}
}

func TestBadCallsAreCallersOnly(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, s.Addr())
	ctx := context.Background()
	_, err := c.Object("NoSuchType", "x").call(ctx, "Get")
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	_, err = c.AtomicLong("x").call(ctx, "Put", []byte("k"), []byte("v"))
	if !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("unknown method: %v", err)
	}
	_, err = c.AtomicLong("x").call(ctx, "AddAndGet", []byte("abc"))
	if !errors.Is(err, ErrBadArgs) {
		t.Fatalf("bad args: %v", err)
	}
	// The connection and the server still serve.
	if v, err := c.AtomicLong("x").AddAndGet(ctx, 1); err != nil || v != 1 {
		t.Fatalf("after bad calls: %d %v", v, err)
	}
}

func TestFuturesAndLatch(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, s.Addr())
	ctx := context.Background()
	f := c.Future("f")
	var wg sync.WaitGroup
	got := make([][]byte, 5)
	errs := make([]error, 5)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = f.Get(ctx) }()
	}
	if err := f.Set(ctx, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	if err := f.Set(ctx, []byte("again")); !errors.Is(err, ErrAlreadySet) {
		t.Fatalf("second Set: %v", err)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || string(got[i]) != "answer" {
			t.Fatalf("Get %d = %q %v", i, got[i], errs[i])
		}
	}
	l := c.CountDownLatch("l", 3)
	done := make(chan error, 1)
	go func() { done <- l.Await(ctx) }()
	for i := 0; i < 3; i++ {
		if _, err := l.CountDown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.CountDownLatch("l", 4).Count(ctx); !errors.Is(err, ErrMismatch) {
		t.Fatalf("latch mismatch: %v", err)
	}
}

func TestSemaphore(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, s.Addr())
	ctx := context.Background()
	sem := c.Semaphore("s", 2)
	if err := sem.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if ok, _ := sem.TryAcquire(ctx, 1); ok {
		t.Fatal("TryAcquire succeeded with no permits")
	}
	acquired := make(chan error, 1)
	go func() { acquired <- sem.Acquire(ctx, 1) }()
	// Wait until the acquirer is parked (observable, not timed).
	for {
		if n, _ := c.Semaphore("s", 2).Available(ctx); n == 0 {
			break
		}
	}
	if err := sem.Release(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	if n, _ := sem.Available(ctx); n != 1 {
		t.Fatalf("Available = %d, want 1", n)
	}
	_ = time.Second
}
