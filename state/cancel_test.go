package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// holdProxy forwards TCP connections to a server and can hold back the
// bytes a client sends (the client-to-server direction), so a test can
// order a client's Cancel frame after another client's releasing call on
// the server, deterministically. Replies (server to client) always flow,
// unless dropReplies is set.
type holdProxy struct {
	ln     net.Listener
	target string
	hold   sync.RWMutex // write-locked while client bytes are held

	mu          sync.Mutex
	conns       []net.Conn
	dropReplies bool
	wg          sync.WaitGroup
}

func startHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) Addr() string { return p.ln.Addr().String() }

func (p *holdProxy) accept() {
	defer p.wg.Done()
	for {
		cn, err := p.ln.Accept()
		if err != nil {
			return
		}
		sn, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = cn.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, cn, sn)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(sn, cn, true)  // client to server: may be held
		go p.pipe(cn, sn, false) // server to client
	}
}

// pipe copies src to dst; closing either side closes both.
func (p *holdProxy) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient {
				p.hold.RLock()
			}
			p.mu.Lock()
			drop := !fromClient && p.dropReplies
			p.mu.Unlock()
			var werr error
			if !drop {
				_, werr = dst.Write(buf[:n])
			}
			if fromClient {
				p.hold.RUnlock()
			}
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// holdClientBytes holds what clients send until the returned func runs.
func (p *holdProxy) holdClientBytes() (release func()) {
	p.hold.Lock()
	var once sync.Once
	return func() { once.Do(p.hold.Unlock) }
}

func (p *holdProxy) setDropReplies(v bool) {
	p.mu.Lock()
	p.dropReplies = v
	p.mu.Unlock()
}

// cut closes every proxied connection.
func (p *holdProxy) cut() {
	p.mu.Lock()
	cs := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

func (p *holdProxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// parkedCalls returns the number of calls parked on a coordination object,
// read from the server's own state.
func parkedCalls(t *testing.T, s *Server, typ, key string) int {
	t.Helper()
	s.mu.RLock()
	e := s.objects[objectID(typ, key)]
	s.mu.RUnlock()
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch o := e.obj.(type) {
	case *barrierObj:
		return len(o.waiting)
	case *semaphoreObj:
		return len(o.queue)
	case *futureObj:
		return len(o.waiting)
	case *latchObj:
		return len(o.waiting)
	}
	t.Fatalf("%s is not a coordination object", typ)
	return 0
}

func waitParked(t *testing.T, s *Server, typ, key string, n int) {
	t.Helper()
	for parkedCalls(t, s, typ, key) != n {
		time.Sleep(time.Millisecond)
	}
}

// TestCancelCrossingReleaseReportsEffect orders a blocking call's Cancel
// frame after the call that releases it, as happens when a caller gives up
// at the moment the barrier trips or a permit is released: the server
// completes the call and ignores the late cancel, so the caller must get
// the call's result (it took part in the generation, it holds the permit),
// not its context's error.
func TestCancelCrossingReleaseReportsEffect(t *testing.T) {
	s := startServer(t, ServerConfig{})
	ctx := context.Background()
	cases := []struct {
		name, typ, key string
		block          func(ctx context.Context, c *Client) (string, error)
		release        func(c *Client) error
		after          func(t *testing.T, c *Client)
	}{
		{
			name: "barrier", typ: TypeCyclicBarrier, key: "b",
			block: func(ctx context.Context, c *Client) (string, error) {
				i, g, err := c.CyclicBarrier("b", 2).Await(ctx)
				return fmt.Sprint(i, g), err
			},
			release: func(c *Client) error {
				i, g, err := c.CyclicBarrier("b", 2).Await(ctx)
				if err == nil && (i != 1 || g != 0) {
					err = fmt.Errorf("second party got index %d generation %d, want 1 0", i, g)
				}
				return err
			},
			after: func(t *testing.T, c *Client) {
				if g, err := c.CyclicBarrier("b", 2).Generation(ctx); err != nil || g != 1 {
					t.Fatalf("generations %d %v, want 1", g, err)
				}
			},
		},
		{
			name: "semaphore", typ: TypeSemaphore, key: "s",
			block: func(ctx context.Context, c *Client) (string, error) {
				return "acquired", c.Semaphore("s", 0).Acquire(ctx, 1)
			},
			release: func(c *Client) error { return c.Semaphore("s", 0).Release(ctx, 1) },
			after: func(t *testing.T, c *Client) {
				// The caller holds the permit; nothing gave it back.
				if n, err := c.Semaphore("s", 0).Available(ctx); err != nil || n != 0 {
					t.Fatalf("available %d %v, want 0 (the permit is held by the caller)", n, err)
				}
			},
		},
		{
			name: "latch", typ: TypeCountDownLatch, key: "l",
			block: func(ctx context.Context, c *Client) (string, error) {
				return "opened", c.CountDownLatch("l", 1).Await(ctx)
			},
			release: func(c *Client) error { _, err := c.CountDownLatch("l", 1).CountDown(ctx); return err },
		},
		{
			name: "future", typ: TypeFuture, key: "f",
			block: func(ctx context.Context, c *Client) (string, error) {
				v, err := c.Future("f").Get(ctx)
				return string(v), err
			},
			release: func(c *Client) error { return c.Future("f").Set(ctx, []byte("v")) },
		},
	}
	want := map[string]string{"barrier": "0 0", "semaphore": "acquired", "latch": "opened", "future": "v"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startHoldProxy(t, s.Addr())
			a := dial(t, p.Addr())
			b := dial(t, s.Addr())
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			type result struct {
				v   string
				err error
			}
			done := make(chan result, 1)
			go func() { v, err := tc.block(actx, a); done <- result{v, err} }()
			waitParked(t, s, tc.typ, tc.key, 1)
			release := p.holdClientBytes()
			defer release()
			cancel() // the Cancel frame is held in the proxy
			if err := tc.release(b); err != nil {
				t.Fatal(err)
			}
			release() // the server gets the Cancel after it completed the call
			r := <-done
			if r.err != nil || r.v != want[tc.name] {
				t.Fatalf("the call completed on the server, but its caller got %q, %v; want %q, nil", r.v, r.err, want[tc.name])
			}
			if tc.after != nil {
				tc.after(t, b)
			}
		})
	}
}

// TestCancelWithdrawnHasNoEffect: a cancel that reaches the server first
// withdraws the call; the caller gets ctx's error and the object is as if
// the call never came.
func TestCancelWithdrawnHasNoEffect(t *testing.T) {
	s := startServer(t, ServerConfig{})
	ctx := context.Background()
	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, _, err := a.CyclicBarrier("b", 2).Await(actx); done <- err }()
	waitParked(t, s, TypeCyclicBarrier, "b", 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("withdrawn Await: %v, want context.Canceled", err)
	}
	// The server answered the cancel before the caller returned: the party
	// is already gone, no polling needed.
	if n := parkedCalls(t, s, TypeCyclicBarrier, "b"); n != 0 {
		t.Fatalf("%d parties still parked after the caller was told it was withdrawn", n)
	}
	// The next two parties form generation 0 with indexes 0 and 1.
	var wg sync.WaitGroup
	idx := make([]int, 2)
	gen := make([]int64, 2)
	for i, c := range []*Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			idx[i], gen[i], err = c.CyclicBarrier("b", 2).Await(ctx)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if gen[0] != 0 || gen[1] != 0 || idx[0]+idx[1] != 1 {
		t.Fatalf("after a withdrawn party: indexes %v generations %v, want {0,1} in generation 0", idx, gen)
	}
}

// TestCancelWithoutVerdictLosesConnection: a server that does not answer a
// cancel within CancelTimeout gets its connection closed, which withdraws
// the call there; the caller gets ErrConnLost, never a bare "cancelled".
func TestCancelWithoutVerdictLosesConnection(t *testing.T) {
	s := startServer(t, ServerConfig{})
	ctx := context.Background()
	p := startHoldProxy(t, s.Addr())
	a, err := Dial(ctx, ClientConfig{Servers: []string{p.Addr()}, Token: testToken, CancelTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, _, err := a.CyclicBarrier("b", 2).Await(actx); done <- err }()
	waitParked(t, s, TypeCyclicBarrier, "b", 1)
	p.setDropReplies(true) // the verdict never reaches the client
	cancel()
	if err := <-done; !errors.Is(err, ErrConnLost) || errors.Is(err, context.Canceled) {
		t.Fatalf("no verdict: %v, want ErrConnLost", err)
	}
	waitParked(t, s, TypeCyclicBarrier, "b", 0)
}

// The stress tests below run blocking calls from several connections,
// each given up at a random moment (often while a release is on its way),
// and check the histories with porcupine: a call reported as withdrawn
// must have had no effect, one reported as completed must have had it.

// barrierOut is an Await's outcome: withdrawn, or index and generation.
type barrierOut struct {
	withdrawn bool
	idx       int
	gen       int64
}

// barrierState is the model: the current generation and its arrivals.
type barrierState struct {
	gen     int64
	arrived int
}

func TestLinearizableBarrierWithCancellations(t *testing.T) {
	s := startServer(t, ServerConfig{})
	const parties = 3
	cs := clients(t, s.Addr(), 5)
	ctx := context.Background()
	hist := recordCancelling(t, 5, 100, cs, func(c *Client, r *rand.Rand, cctx context.Context) (op, any, error) {
		b := c.CyclicBarrier("b", parties)
		if r.IntN(5) == 0 {
			g, err := b.Generation(ctx)
			return op{kind: "gen"}, barrierOut{gen: g}, err
		}
		i, g, err := b.Await(cctx)
		if err != nil && cctx.Err() != nil && errors.Is(err, cctx.Err()) {
			return op{kind: "await"}, barrierOut{withdrawn: true}, nil
		}
		return op{kind: "await"}, barrierOut{idx: i, gen: g}, err
	})
	checkLinearizable(t, porcupine.Model{
		Init: func() any { return barrierState{} },
		Step: func(st, in, o any) (bool, any) {
			s, i, r := st.(barrierState), in.(op), o.(barrierOut)
			switch {
			case i.kind == "gen":
				return r.gen == s.gen, s
			case r.withdrawn:
				return true, s
			case r.gen != s.gen || r.idx != s.arrived:
				return false, s
			case s.arrived+1 == parties:
				return true, barrierState{gen: s.gen + 1}
			default:
				return true, barrierState{gen: s.gen, arrived: s.arrived + 1}
			}
		},
		DescribeOperation: func(in, o any) string { return fmt.Sprintf("%v -> %+v", in, o) },
	}, hist)
}

func TestLinearizableSemaphoreWithCancellations(t *testing.T) {
	s := startServer(t, ServerConfig{})
	const permits = 2
	cs := clients(t, s.Addr(), 5)
	ctx := context.Background()
	held := make([]int, 5) // permits each client holds (client i uses cs[i])
	hist := recordCancelling(t, 5, 100, cs, func(c *Client, r *rand.Rand, cctx context.Context) (op, any, error) {
		me := 0
		for i := range cs {
			if cs[i] == c {
				me = i
			}
		}
		sem := c.Semaphore("s", permits)
		switch k := r.IntN(4); {
		case k == 0 && held[me] > 0:
			held[me]--
			return op{kind: "release"}, out{}, sem.Release(ctx, 1)
		case k == 1:
			n, err := sem.Available(ctx)
			return op{kind: "avail"}, out{v: int64(n)}, err
		default:
			err := sem.Acquire(cctx, 1)
			if err != nil && cctx.Err() != nil && errors.Is(err, cctx.Err()) {
				return op{kind: "acquire"}, out{}, nil
			}
			if err == nil {
				held[me]++
			}
			return op{kind: "acquire"}, out{ok: true}, err
		}
	})
	checkLinearizable(t, porcupine.Model{
		Init: func() any { return int64(permits) },
		Step: func(st, in, o any) (bool, any) {
			n, i, r := st.(int64), in.(op), o.(out)
			switch i.kind {
			case "acquire":
				if !r.ok {
					return true, n // withdrawn: no effect
				}
				return n > 0, n - 1
			case "release":
				return true, n + 1
			default:
				return r.v == n, n
			}
		},
		DescribeOperation: func(in, o any) string { return fmt.Sprintf("%v -> %+v", in, o) },
	}, hist)
}

// recordCancelling is record for blocking calls: each call gets a context
// that ends after a random pause of up to 2 ms (or at once), so many calls
// are given up while they wait and some just as they are released. Client
// id uses c[id]; one goroutine per client.
func recordCancelling(t *testing.T, clients, n int, c []*Client, do func(c *Client, r *rand.Rand, cctx context.Context) (op, any, error)) []porcupine.Operation {
	t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var hist []porcupine.Operation
	var wg sync.WaitGroup
	for id := 0; id < clients; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(id), 11))
			for i := 0; i < n; i++ {
				cctx, cancel := context.WithCancel(context.Background())
				stop := time.AfterFunc(time.Duration(r.Int64N(int64(2*time.Millisecond))), cancel)
				call := time.Since(start).Nanoseconds()
				in, o, err := do(c[id], r, cctx)
				ret := time.Since(start).Nanoseconds()
				stop.Stop()
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				hist = append(hist, porcupine.Operation{ClientId: id, Input: in, Output: o, Call: call, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return hist
}

// TestLostWaitersAreNotReleased: between a connection closing and the
// server withdrawing its parked calls, another call may release them. A
// caller on a closed connection has been told ErrConnLost and will never
// learn of a grant, so a barrier must not count it in a generation and a
// semaphore must not give it a permit.
func TestLostWaitersAreNotReleased(t *testing.T) {
	s := startServer(t, ServerConfig{})
	conn := func() *serverConn {
		a, b := net.Pipe()
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		return newServerConn(s, a)
	}
	live1, live2, gone := conn(), conn(), conn()
	gone.shutdown(errors.New("client went away"))
	replies := func(c *serverConn) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.out)
	}

	bar := &barrierObj{parties: 2}
	e := &entry{typ: TypeCyclicBarrier, key: "b", obj: bar}
	e.mu.Lock()
	if _, _, parked := bar.invoke("Await", nil, &waiter{c: gone, id: 1, e: e}); !parked {
		t.Fatal("first party not parked")
	}
	if _, _, parked := bar.invoke("Await", nil, &waiter{c: live1, id: 2, e: e}); !parked {
		t.Fatal("a party on a closed connection completed generation 0")
	}
	body, st, parked := bar.invoke("Await", nil, &waiter{c: live2, id: 3, e: e})
	e.mu.Unlock()
	if st != nil || parked || len(body) != 16 {
		t.Fatalf("third party: %v parked=%v", st, parked)
	}
	if idx, _ := decI64(body[:8]); idx != 1 || bar.gen != 1 || len(bar.waiting) != 0 {
		t.Fatalf("generation 0 tripped with the last index %d, gen now %d, %d waiting; want 1, 1, 0", idx, bar.gen, len(bar.waiting))
	}
	if replies(live1) != 1 || replies(gone) != 0 {
		t.Fatalf("replies: live %d, closed %d; want 1, 0", replies(live1), replies(gone))
	}

	sem := &semaphoreObj{}
	e = &entry{typ: TypeSemaphore, key: "s", obj: sem}
	e.mu.Lock()
	one := [][]byte{encI64(1)}
	for i, c := range []*serverConn{gone, live2} {
		if _, _, parked := sem.invoke("Acquire", one, &waiter{c: c, id: uint64(10 + i), e: e}); !parked {
			t.Fatal("Acquire on an empty semaphore not parked")
		}
	}
	if _, st, _ := sem.invoke("Release", one, nil); st != nil {
		t.Fatal(st)
	}
	e.mu.Unlock()
	if sem.avail != 0 || len(sem.queue) != 0 || replies(live2) != 1 {
		t.Fatalf("after one release: %d available, %d queued, %d replies to the live waiter; want the permit granted to it", sem.avail, len(sem.queue), replies(live2))
	}
}
