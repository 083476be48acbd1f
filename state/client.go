package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/state/internal/wire"
	"github.com/galeproject/gale/state/ring"
)

// Client calls shared objects on a set of DSO servers. It keeps one
// connection per server, pipelines every call on it (many calls in flight,
// answered in any order), and re-dials a server whose connection broke on
// the next call. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	ring *ring.Ring // static mode

	slotMu sync.Mutex
	slots  map[string]*slot

	// Cluster mode (the servers are members of a replicated cluster).
	cluster     bool
	view        atomic.Pointer[clientView]
	viewMu      sync.Mutex // serializes view refreshes
	lastRefresh time.Time
	id          uint64 // session id of replicated calls
	seq         atomic.Uint64
	outMu       sync.Mutex
	outstanding map[uint64]struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // reader goroutines
	done   chan struct{}
}

type slot struct {
	addr string
	mu   sync.Mutex // serializes dialing
	cur  atomic.Pointer[clientConn]
}

// Dial validates cfg and connects to every server, authenticating with the
// token. It fails, naming the server, if one cannot be reached or refuses
// the token.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	r, err := ring.New(cfg.Servers, cfg.VirtualNodes)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	c := &Client{cfg: cfg, ring: r, slots: map[string]*slot{}, done: make(chan struct{}), outstanding: map[uint64]struct{}{}}
	for _, a := range cfg.Servers {
		c.slots[a] = &slot{addr: a}
	}
	// A cluster member answers View; a standalone server does not know
	// the cluster type.
	if v, err := c.fetchView(ctx, cfg.Servers); err == nil {
		c.cluster = true
		c.view.Store(v)
		c.id = rand.Uint64() | 1
		return c, nil
	} else if !errors.Is(err, errStandalone) {
		_ = c.Close()
		return nil, err
	}
	for _, a := range cfg.Servers {
		if _, err := c.conn(ctx, c.slots[a]); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close closes every connection; calls in flight fail with ErrConnLost. It
// waits for the client's goroutines and is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	c.slotMu.Lock()
	slots := make([]*slot, 0, len(c.slots))
	for _, s := range c.slots {
		slots = append(slots, s)
	}
	c.slotMu.Unlock()
	for _, s := range slots {
		if cc := s.cur.Load(); cc != nil {
			cc.fail(ErrClosed)
		}
	}
	c.wg.Wait()
	return nil
}

// Servers returns the servers' addresses, sorted (in a cluster, the
// members in the client's current view).
func (c *Client) Servers() []string {
	if c.cluster {
		return c.view.Load().ring.Nodes()
	}
	return c.ring.Nodes()
}

// Locate returns the address of the server that holds (typ, key) (in a
// cluster: an ephemeral object's owner in the client's current view).
func (c *Client) Locate(typ, key string) string {
	if c.cluster {
		return c.view.Load().ring.Locate(ring.ObjectKey(typ, key))
	}
	return c.ring.Locate(ring.ObjectKey(typ, key))
}

func (c *Client) slot(addr string) *slot {
	c.slotMu.Lock()
	defer c.slotMu.Unlock()
	s := c.slots[addr]
	if s == nil {
		s = &slot{addr: addr}
		c.slots[addr] = s
	}
	return s
}

func (c *Client) conn(ctx context.Context, s *slot) (*clientConn, error) {
	if cc := s.cur.Load(); cc != nil && !cc.broken() {
		return cc, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cc := s.cur.Load(); cc != nil && !cc.broken() {
		return cc, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	cc, err := c.dial(ctx, s.addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = cc.nc.Close()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	s.cur.Store(cc)
	go cc.readLoop()
	return cc, nil
}

func (c *Client) dial(ctx context.Context, addr string) (*clientConn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	dl, _ := dctx.Deadline()
	_ = nc.SetDeadline(dl)
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := nc.Write(wire.AppendFrame(nil, wire.KindHello, 0, wire.AppendHello(nil, c.cfg.Token))); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%w: %s: sending hello: %w", ErrUnavailable, addr, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	f, _, err := wire.ReadFrame(br, c.cfg.MaxFrameBytes, nil)
	if err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("state: connecting to %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s: no answer to hello (is it a Gale DSO server?): %w", ErrUnavailable, addr, err)
	}
	switch f.Kind {
	case wire.KindWelcome:
	case wire.KindGoAway:
		_ = nc.Close()
		return nil, fmt.Errorf("%w by %s: %s (check ClientConfig.Token)", ErrAuth, addr, f.Payload)
	default:
		_ = nc.Close()
		return nil, fmt.Errorf("%w: %s answered hello with %v", ErrUnavailable, addr, f.Kind)
	}
	if !stop() {
		_ = nc.Close()
		return nil, fmt.Errorf("state: connecting to %s: %w", addr, dctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	return &clientConn{c: c, addr: addr, nc: nc, br: br, bw: bufio.NewWriterSize(nc, 64<<10),
		pending: map[uint64]*pendingCall{}}, nil
}

// clientConn is one authenticated connection. Its reader goroutine is
// owned by the Client (counted in c.wg) and ends when the connection does.
type clientConn struct {
	c    *Client
	addr string
	nc   net.Conn
	br   *bufio.Reader

	writers atomic.Int32
	wmu     sync.Mutex
	bw      *bufio.Writer

	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]*pendingCall
	err     error // set once broken
	isDead  atomic.Bool
}

type pendingCall struct {
	ch chan wire.Reply // cap 1
	// gone is set when the caller stopped waiting; the reply is dropped.
	gone bool
}

func (cc *clientConn) broken() bool { return cc.isDead.Load() }

// fail marks the connection broken with err and fails every pending call.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	cc.isDead.Store(true)
	var ps []*pendingCall
	for _, p := range cc.pending {
		if !p.gone {
			ps = append(ps, p)
		}
	}
	cc.pending = nil
	cc.mu.Unlock()
	_ = cc.nc.Close()
	for _, p := range ps {
		p.ch <- wire.Reply{Code: codeConnLost}
	}
}

func (cc *clientConn) readLoop() {
	defer cc.c.wg.Done()
	var err error
	for {
		var f wire.Frame
		f, _, err = wire.ReadFrame(cc.br, cc.c.cfg.MaxFrameBytes, nil)
		if err != nil {
			break
		}
		if f.Kind == wire.KindGoAway {
			err = fmt.Errorf("server said: %s", f.Payload)
			break
		}
		if f.Kind != wire.KindReply {
			err = fmt.Errorf("unexpected %v frame from server", f.Kind)
			break
		}
		r, derr := wire.DecodeReply(f.Payload)
		if derr != nil {
			err = derr
			break
		}
		cc.mu.Lock()
		p := cc.pending[f.ID]
		delete(cc.pending, f.ID)
		cc.mu.Unlock()
		if p == nil || p.gone {
			continue
		}
		p.ch <- r
	}
	cc.fail(fmt.Errorf("%w: %s: %w", ErrConnLost, cc.addr, err))
}

func (cc *clientConn) connErr() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// request is one call as the typed handles build it.
type request struct {
	typ, key, method string
	flags            uint8
	init             []byte
	args             [][]byte
	// blocking calls send a Cancel frame when their caller gives up.
	blocking bool
	// session fields of a replicated call (cluster mode)
	client, seq, low uint64
}

// codeConnLost is a client-side pseudo reply code: the connection broke.
const codeConnLost = 255

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// do sends r to the server that owns the object and waits for the reply.
func (c *Client) do(ctx context.Context, r *request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.cluster {
		return c.doCluster(ctx, r)
	}
	return c.doAt(ctx, c.ring.Locate(ring.ObjectKey(r.typ, r.key)), r)
}

// doAt sends r to the server at addr and waits for the reply.
func (c *Client) doAt(ctx context.Context, addr string, r *request) ([]byte, error) {
	cc, err := c.conn(ctx, c.slot(addr))
	if err != nil {
		return nil, err
	}
	id := cc.nextID.Add(1)
	bp := framePool.Get().(*[]byte)
	frame, off := wire.StartFrame((*bp)[:0], wire.KindCall, id)
	frame = wire.AppendCall(frame, &wire.Call{Type: r.typ, Key: r.key, Method: r.method, Flags: r.flags, Init: r.init, Args: r.args,
		Client: r.client, Seq: r.seq, Low: r.low})
	if n := wire.FinishFrame(frame, off); n > c.cfg.MaxFrameBytes {
		*bp = frame
		framePool.Put(bp)
		return nil, fmt.Errorf("%w: %s(%q).%s request is %d bytes, limit %d", ErrFrameTooLarge, r.typ, r.key, r.method, n, c.cfg.MaxFrameBytes)
	}
	p := &pendingCall{ch: make(chan wire.Reply, 1)}
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return nil, err
	}
	cc.pending[id] = p
	cc.mu.Unlock()

	cc.writers.Add(1)
	cc.wmu.Lock()
	_, werr := cc.bw.Write(frame)
	if cc.writers.Add(-1) == 0 && werr == nil {
		// The last writer in line flushes for everyone queued behind the
		// lock, so concurrent calls share one syscall.
		werr = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	*bp = frame
	framePool.Put(bp)
	if werr != nil {
		cc.fail(fmt.Errorf("%w: %s: %w", ErrConnLost, addr, werr))
	}

	select {
	case rep := <-p.ch:
		return c.result(cc, r, rep)
	case <-ctx.Done():
	}
	if f, ok := builtins[r.typ]; ok && f.coordination {
		return c.settle(ctx, cc, id, p, r)
	}
	cc.mu.Lock()
	if _, still := cc.pending[id]; still {
		// A data object's call is short and its effect is the caller's
		// own: it may have run, as with any call whose caller gave up.
		p.gone = true
		cc.mu.Unlock()
		return nil, fmt.Errorf("state: %s(%q).%s: %w", r.typ, r.key, r.method, ctx.Err())
	}
	cc.mu.Unlock()
	// The reply raced with the cancellation: it is in p.ch.
	return c.result(cc, r, <-p.ch)
}

// settle ends a call on a coordination object whose caller's context ended
// after it was sent. Such a call's effect matters to others (a permit
// taken, a barrier party counted, a latch counted down), so the caller must
// learn whether it took effect: a blocking call is withdrawn with a Cancel
// frame, and settle waits for the server's verdict — ErrCancelled (the call
// was withdrawn and had no effect; the caller gets ctx's error) or the
// call's own reply (it completed before the cancel arrived; the caller gets
// its result). The server answers every call, so the wait is short; if no
// verdict comes within CancelTimeout, the connection is closed, which makes
// the server withdraw the call, and the caller gets ErrConnLost.
func (c *Client) settle(ctx context.Context, cc *clientConn, id uint64, p *pendingCall, r *request) ([]byte, error) {
	if r.blocking {
		cc.sendCancel(id)
	}
	t := time.NewTimer(c.cfg.CancelTimeout)
	defer t.Stop()
	var rep wire.Reply
	select {
	case rep = <-p.ch:
	case <-t.C:
		cc.fail(fmt.Errorf("%w: %s: no answer within %v to %s(%q).%s after its caller gave up (%v)",
			ErrConnLost, cc.addr, c.cfg.CancelTimeout, r.typ, r.key, r.method, ctx.Err()))
		// Exactly one of the reply and fail's ErrConnLost is delivered.
		rep = <-p.ch
	}
	if rep.Code == wire.CodeCancelled {
		return nil, fmt.Errorf("state: %s(%q).%s: %w", r.typ, r.key, r.method, ctx.Err())
	}
	return c.result(cc, r, rep)
}

func (cc *clientConn) sendCancel(id uint64) {
	frame := wire.AppendFrame(nil, wire.KindCancel, id, nil)
	cc.writers.Add(1)
	cc.wmu.Lock()
	_, err := cc.bw.Write(frame)
	if cc.writers.Add(-1) == 0 && err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(fmt.Errorf("%w: %s: %w", ErrConnLost, cc.addr, err))
	}
}

func (c *Client) result(cc *clientConn, r *request, rep wire.Reply) ([]byte, error) {
	switch rep.Code {
	case wire.CodeOK:
		return rep.Body, nil
	case codeConnLost:
		return nil, fmt.Errorf("state: %s(%q).%s: %w", r.typ, r.key, r.method, cc.connErr())
	}
	return nil, &CallError{Server: cc.addr, Type: r.typ, Key: r.key, Method: r.method, Code: rep.Code, Message: string(rep.Body)}
}
