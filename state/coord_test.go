package state

import (
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/state/internal/wire"
)

// TestBarrierGenerationsUnderChurn runs parties goroutines through many
// generations of one barrier, each on its own client (connection), while a
// churn party on another connection keeps arriving and giving up at once.
// A churn call either is withdrawn (and told so) or took part in a
// generation (and got its index): every generation must hold exactly
// parties arrivals with the indexes 0..parties-1, the generations must be
// consecutive, and nobody may be left waiting.
func TestBarrierGenerationsUnderChurn(t *testing.T) {
	s := startServer(t, ServerConfig{})
	const parties, rounds = 6, 40
	ctx := context.Background()
	var mu sync.Mutex
	byGen := map[int64][]int{}
	arrived := func(idx int, gen int64) {
		mu.Lock()
		byGen[gen] = append(byGen[gen], idx)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	var finished atomic.Int32
	for p := 0; p < parties; p++ {
		c := dial(t, s.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			b := c.CyclicBarrier("b", parties)
			for r := 0; r < rounds; r++ {
				idx, gen, err := b.Await(ctx)
				if err != nil {
					t.Errorf("Await: %v", err)
					return
				}
				arrived(idx, gen)
			}
		}()
	}
	churn := dial(t, s.Addr())
	stop := make(chan struct{})
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		b := churn.CyclicBarrier("b", parties)
		for {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithCancel(ctx)
			type res struct {
				idx int
				gen int64
				err error
			}
			done := make(chan res, 1)
			go func() { i, g, err := b.Await(cctx); done <- res{i, g, err} }()
			cancel()
			switch r := <-done; {
			case r.err == nil:
				// It arrived before its cancel reached the server: it took
				// part in a generation, and it was told so.
				arrived(r.idx, r.gen)
			case !errors.Is(r.err, context.Canceled):
				t.Errorf("churn Await: %v", r.err)
				return
			}
		}
	}()
	// Churn parties that took part shift the real parties' rounds across
	// generations, so the last real parties may wait for arrivals that
	// will never come. Once one real party is done, stop the churn; then,
	// whenever every unfinished party is parked, complete their generation
	// with filler parties (recorded like the others).
	for finished.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	cwg.Wait()
	filler := dial(t, s.Addr()).CyclicBarrier("b", parties)
	for finished.Load() < parties {
		f := int(finished.Load())
		n := parkedCalls(t, s, TypeCyclicBarrier, "b")
		if n == 0 || f+n != parties {
			time.Sleep(time.Millisecond)
			continue
		}
		var fwg sync.WaitGroup
		for k := 0; k < parties-n; k++ {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				idx, gen, err := filler.Await(ctx)
				if err != nil {
					t.Errorf("filler Await: %v", err)
					return
				}
				arrived(idx, gen)
			}()
		}
		fwg.Wait()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	obs := dial(t, s.Addr()).CyclicBarrier("b", parties)
	if n, err := obs.Waiting(ctx); err != nil || n != 0 {
		t.Fatalf("%d parties left waiting (%v)", n, err)
	}
	gens, err := obs.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(byGen)) != gens {
		t.Fatalf("arrivals reported in %d generations, the barrier completed %d", len(byGen), gens)
	}
	for g := int64(0); g < gens; g++ {
		idxs := byGen[g]
		sort.Ints(idxs)
		for i, x := range append(idxs, make([]int, parties-min(parties, len(idxs)))...) {
			if x != i || len(idxs) != parties {
				t.Fatalf("generation %d released arrivals with indexes %v, want 0..%d", g, idxs, parties-1)
			}
		}
	}
	if _, err := dial(t, s.Addr()).CyclicBarrier("b", parties+1).Waiting(ctx); !errors.Is(err, ErrMismatch) {
		t.Fatalf("parties mismatch: %v", err)
	}
}

// TestBlockingCallsCancelledByContext checks that each blocking call
// returns promptly with the context's error, that the server withdrew it
// (the barrier's waiting count drops, the semaphore's permit is not lost),
// and that other objects kept working meanwhile.
func TestBlockingCallsCancelledByContext(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, s.Addr())
	ctx := context.Background()
	block := []struct {
		name string
		call func(context.Context) error
	}{
		{"barrier", func(ctx context.Context) error { _, _, err := c.CyclicBarrier("b", 2).Await(ctx); return err }},
		{"semaphore", func(ctx context.Context) error { return c.Semaphore("s", 0).Acquire(ctx, 1) }},
		{"future", func(ctx context.Context) error { _, err := c.Future("f").Get(ctx); return err }},
		{"latch", func(ctx context.Context) error { return c.CountDownLatch("l", 1).Await(ctx) }},
	}
	for _, b := range block {
		t.Run(b.name, func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- b.call(cctx) }()
			// Other objects are served while the call is parked.
			if v, err := c.AtomicLong("other").IncrementAndGet(ctx); err != nil || v < 1 {
				t.Fatalf("other object: %d %v", v, err)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
	// The withdrawn barrier party is gone: the server drops it once the
	// cancel frame arrives, so poll the (observable) waiting count.
	b := c.CyclicBarrier("b", 2)
	for {
		n, err := b.Waiting(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// The withdrawn acquire did not take the permit released now.
	sem := c.Semaphore("s", 0)
	_ = sem.Release(ctx, 1)
	if ok, err := sem.TryAcquire(ctx, 1); err != nil || !ok {
		t.Fatalf("permit lost to a cancelled Acquire: %v %v", ok, err)
	}
	// A deadline works the same way.
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := c.CountDownLatch("l", 1).Await(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

// TestDroppedConnectionWithdrawsParkedCalls closes a client with a parked
// Await; the barrier must not count it.
func TestDroppedConnectionWithdrawsParkedCalls(t *testing.T) {
	s := startServer(t, ServerConfig{})
	ctx := context.Background()
	c1, err := Dial(ctx, ClientConfig{Servers: []string{s.Addr()}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := c1.CyclicBarrier("b", 2).Await(ctx); done <- err }()
	c2 := dial(t, s.Addr())
	for {
		if n, _ := c2.CyclicBarrier("b", 2).Waiting(ctx); n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = c1.Close()
	if err := <-done; !errors.Is(err, ErrConnLost) && !errors.Is(err, ErrClosed) {
		t.Fatalf("parked call on closed client: %v", err)
	}
	for {
		if n, _ := c2.CyclicBarrier("b", 2).Waiting(ctx); n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAuthRefused(t *testing.T) {
	s := startServer(t, ServerConfig{Token: "right"})
	_, err := Dial(context.Background(), ClientConfig{Servers: []string{s.Addr()}, Token: "wrong"})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	// A raw connection that skips the hello and sends a call is refused.
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write(wire.AppendFrame(nil, wire.KindCall, 1, wire.AppendCall(nil, &wire.Call{Type: "AtomicLong", Key: "x", Method: "Get"})))
	buf := make([]byte, 512)
	n, _ := readAll(nc, buf)
	f, err := wire.ParseFrame(buf[4:n])
	if err != nil || f.Kind != wire.KindGoAway {
		t.Fatalf("server answered an unauthenticated call with %v (%v)", f.Kind, err)
	}
	if _, err := Dial(context.Background(), ClientConfig{Servers: []string{s.Addr()}, Token: "right"}); err != nil {
		t.Fatalf("right token refused: %v", err)
	}
}

func readAll(nc net.Conn, buf []byte) (int, error) {
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n := 0
	for n < len(buf) {
		m, err := nc.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestOversizedFrames(t *testing.T) {
	s := startServer(t, ServerConfig{MaxFrameBytes: 4096})
	ctx := context.Background()
	c, err := Dial(ctx, ClientConfig{Servers: []string{s.Addr()}, Token: testToken, MaxFrameBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client refuses to send it, and the connection stays usable.
	if err := c.Blob("b").Set(ctx, make([]byte, 8192)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("client-side limit: %v", err)
	}
	if err := c.Blob("b").Set(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	// A client with a larger limit sends it; the server refuses the frame
	// from its header and closes the connection with a reason.
	big, err := Dial(ctx, ClientConfig{Servers: []string{s.Addr()}, Token: testToken, MaxFrameBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	err = big.Blob("b").Set(ctx, make([]byte, 8192))
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("server-side limit: %v", err)
	}
	// The server keeps serving others, and the client reconnects.
	if v, err := c.Blob("b").Get(ctx); err != nil || string(v) != "ok" {
		t.Fatalf("after refusal: %q %v", v, err)
	}
	if v, err := big.Blob("b").Get(ctx); err != nil || string(v) != "ok" {
		t.Fatalf("reconnect: %q %v", v, err)
	}
}

func TestServerGoneAndReconnect(t *testing.T) {
	ctx := context.Background()
	s, err := NewServer(ServerConfig{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	go func() { _ = s.Serve(ctx) }()
	c := dial(t, addr)
	if _, err := c.AtomicLong("x").IncrementAndGet(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.AtomicLong("x").Get(ctx)
	if !errors.Is(err, ErrConnLost) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server gone: %v", err)
	}
	_, err = c.AtomicLong("x").Get(ctx)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server gone, second call: %v", err)
	}
	// A new server on the same address: the client reconnects by itself.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	s2 := startServer(t, ServerConfig{Listener: ln})
	_ = s2
	if v, err := c.AtomicLong("x").IncrementAndGet(ctx); err != nil || v != 1 {
		t.Fatalf("after reconnect: %d %v", v, err)
	}
}

func TestPlacementAcrossServers(t *testing.T) {
	ctx := context.Background()
	var addrs []string
	servers := map[string]*Server{}
	for i := 0; i < 3; i++ {
		s := startServer(t, ServerConfig{})
		addrs = append(addrs, s.Addr())
		servers[s.Addr()] = s
	}
	c := dial(t, addrs...)
	for i := 0; i < 60; i++ {
		key := string(rune('a' + i%26))
		key += string(rune('0' + i/26))
		if _, err := c.Counter(key).Add(ctx, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every object lives exactly on the server the ring names.
	perServer := map[string]int{}
	for addr, s := range servers {
		s.mu.RLock()
		for _, e := range s.objects {
			if want := c.Locate(e.typ, e.key); want != addr {
				t.Errorf("%s %q on %s, ring says %s", e.typ, e.key, addr, want)
			}
			perServer[addr]++
		}
		s.mu.RUnlock()
	}
	if len(perServer) != 3 {
		t.Fatalf("objects on %d of 3 servers: %v", len(perServer), perServer)
	}
	// A second client with the list in another order agrees.
	c2 := dial(t, addrs[2], addrs[0], addrs[1])
	if v, _ := c2.Counter("a0").Get(ctx); v != 0 {
		t.Fatalf("a0 = %d", v)
	}
	if v, _ := c2.Counter("b0").Get(ctx); v != 1 {
		t.Fatalf("b0 = %d", v)
	}
}
