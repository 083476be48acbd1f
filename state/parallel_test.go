package state

import (
	"context"
	"sync"
	"testing"
)

// Parker's Hold method blocks until the test releases it. (Real methods
// must not block; this one stands in for a long computation.)
type Parker struct{ N int }

var parkers = struct {
	sync.Mutex
	entered chan struct{}
	release chan struct{}
}{}

func (p *Parker) Hold() int {
	parkers.Lock()
	entered, release := parkers.entered, parkers.release
	parkers.Unlock()
	entered <- struct{}{}
	<-release
	p.N++
	return p.N
}

func (p *Parker) Bump() int { p.N++; return p.N }

// TestDisjointObjectsRunInParallel holds a call on one user object open and
// shows that, on the same connection, a call on another object of the same
// type and built-in calls complete meanwhile, while a second call on the
// held object waits for the first.
func TestDisjointObjectsRunInParallel(t *testing.T) {
	parkers.Lock()
	parkers.entered, parkers.release = make(chan struct{}, 1), make(chan struct{})
	parkers.Unlock()
	reg := NewRegistry()
	RegisterType[Parker](reg, "Parker")
	s := startServer(t, ServerConfig{Registry: reg})
	c := dial(t, s.Addr())
	ctx := context.Background()

	held := make(chan int, 1)
	go func() { n, _ := Call[int](ctx, c.Object("Parker", "a"), "Hold"); held <- n }()
	<-parkers.entered // Hold is running on object a

	if n, err := Call[int](ctx, c.Object("Parker", "b"), "Bump"); err != nil || n != 1 {
		t.Fatalf("call on another object while a is busy: %d %v", n, err)
	}
	if _, err := c.AtomicLong("x").IncrementAndGet(ctx); err != nil {
		t.Fatal(err)
	}
	second := make(chan int, 1)
	go func() { n, _ := Call[int](ctx, c.Object("Parker", "a"), "Bump"); second <- n }()
	close(parkers.release)
	first := <-held
	if first != 1 || <-second != 2 {
		t.Fatalf("calls on one object interleaved: Hold saw %d", first)
	}
}
