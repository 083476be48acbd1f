package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/state/internal/wire"
)

// object is a shared object's server-side implementation. Every method is
// called with the entry's lock held, so an implementation needs no locking
// of its own and each call is atomic.
type object interface {
	// invoke runs method. A blocking method that cannot complete parks w
	// and returns parked=true; it must later call w.finish exactly once,
	// from another invoke or cancel (always under the same lock).
	invoke(method string, args [][]byte, w *waiter) (body []byte, st *status, parked bool)
	// cancel withdraws a parked waiter; it reports whether w was parked.
	cancel(w *waiter) bool
	// checkInit reports whether a call's creation parameters match.
	checkInit(init []byte) *status
	// readOnly reports whether method never changes the object (such calls
	// are not written to the persistence log).
	readOnly(method string) bool
	// marshal and unmarshal serialize the object's state for persistence.
	marshal() ([]byte, error)
	unmarshal([]byte) error
}

// entry is one object on the server.
type entry struct {
	mu         sync.Mutex
	typ, key   string
	init       []byte
	persistent bool
	obj        object
}

// Server hosts shared objects. Create it with NewServer, run it with Serve,
// stop it with Close.
type Server struct {
	cfg   ServerConfig
	ln    net.Listener
	store *store // nil without DataDir, or in a cluster
	node  *node  // nil unless ServerConfig.Cluster is set

	mu      sync.RWMutex
	objects map[string]*entry

	// persistMu is held for reading by every call on a persistent object
	// from before it runs until its log record is written, and for writing
	// by a checkpoint while it rotates the log and marshals the objects:
	// the snapshot then holds exactly the records before the rotation.
	persistMu sync.RWMutex

	connMu sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
	done   chan struct{}

	wg        sync.WaitGroup // every goroutine the server started
	closeOnce sync.Once
	closeErr  error
}

// NewServer validates cfg, binds the listening socket (so Addr is known
// before Serve) and, with a DataDir, loads the persistent objects. It starts
// no goroutines.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	s := &Server{cfg: cfg, objects: map[string]*entry{}, conns: map[*serverConn]struct{}{}, done: make(chan struct{})}
	if cfg.Cluster != nil {
		return s, s.startCluster()
	}
	if cfg.DataDir != "" {
		st, err := openStore(&cfg)
		if err != nil {
			return nil, err
		}
		s.store = st
		if n := st.log.TornBytes(); n > 0 {
			s.logf("state: DataDir %s: dropped a torn final log record (%d bytes; a write a crash interrupted, never acknowledged as durable)", cfg.DataDir, n)
		}
		if err := s.recover(); err != nil {
			_ = st.close()
			return nil, err
		}
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", cfg.Addr)
		if err != nil {
			if s.store != nil {
				_ = s.store.close()
			}
			return nil, fmt.Errorf("state: listen on %s: %w", cfg.Addr, err)
		}
	}
	s.ln = ln
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts connections until ctx is done or Close is called; then it
// closes the server and returns nil. It returns an error if accepting fails
// for another reason.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if s.store != nil {
		s.connMu.Lock()
		if s.closed {
			s.connMu.Unlock()
			return nil
		}
		s.wg.Add(1)
		s.connMu.Unlock()
		go s.checkpointLoop()
	}
	if s.node != nil {
		s.connMu.Lock()
		if s.closed {
			s.connMu.Unlock()
			return nil
		}
		s.node.start()
		s.connMu.Unlock()
	}
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			_ = s.Close()
			return fmt.Errorf("state: accept on %s: %w", s.Addr(), err)
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newServerConn(s, nc)
		s.connMu.Lock()
		if s.closed {
			s.connMu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.connMu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// Close stops accepting, closes every connection (their parked calls are
// withdrawn), waits up to CloseTimeout for the server's goroutines, writes
// a snapshot of the persistent objects and closes the store. It is
// idempotent; it reports goroutines that did not stop in time.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.connMu.Lock()
		s.closed = true
		close(s.done)
		conns := make([]*serverConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.connMu.Unlock()
		errs := []error{}
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		if s.node != nil {
			s.node.stop()
		}
		for _, c := range conns {
			c.shutdown(errors.New("server closing"))
		}
		waited := make(chan struct{})
		go func() { s.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(s.cfg.CloseTimeout):
			errs = append(errs, fmt.Errorf("state: server %s: goroutines still running after %v", s.Addr(), s.cfg.CloseTimeout))
		}
		if s.store != nil {
			if err := s.checkpoint(); err != nil {
				errs = append(errs, err)
			}
			if err := s.store.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if s.node != nil && s.node.log != nil {
			if err := s.node.log.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func objectID(typ, key string) string { return typ + "\x00" + key }

// lookup returns the entry for (typ, key), creating it on first use.
func (s *Server) lookup(c *wire.Call) (*entry, *status) {
	id := objectID(c.Type, c.Key)
	s.mu.RLock()
	e := s.objects[id]
	s.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	persistent := c.Flags&wire.FlagPersistent != 0
	obj, st := s.newObject(c.Type, c.Init, persistent)
	if st != nil {
		return nil, st
	}
	if persistent {
		s.persistMu.RLock()
		defer s.persistMu.RUnlock()
	}
	s.mu.Lock()
	if e = s.objects[id]; e != nil {
		s.mu.Unlock()
		return e, nil
	}
	e = &entry{typ: c.Type, key: c.Key, init: append([]byte(nil), c.Init...), persistent: persistent, obj: obj}
	s.objects[id] = e
	// Holding e.mu while publishing would block lookups of other objects;
	// the creation record is logged before any call on e can be logged
	// because logging happens under e.mu, taken below before s.mu is freed.
	e.mu.Lock()
	s.mu.Unlock()
	var err error
	if persistent {
		err = s.store.appendCreate(e)
	}
	e.mu.Unlock()
	if err != nil {
		return nil, fail(wire.CodePersist, "creating persistent %s %q: %v", c.Type, c.Key, err)
	}
	return e, nil
}

// newObjectOf creates an object of typ with creation parameters init.
func (s *Server) newObjectOf(typ string, init []byte) (object, *status) {
	if f, ok := builtins[typ]; ok {
		return f.create(init)
	}
	if ut := s.cfg.Registry.lookup(typ); ut != nil {
		return ut.create(), nil
	}
	return nil, fail(wire.CodeUnknownType, "unknown object type %q: not a built-in type and not registered in this server's Registry (%s)", typ, s.cfg.Registry.names())
}

// persistable refuses a user-defined type whose state does not
// gob-encode: its objects can be neither written to disk nor replicated.
func (s *Server) persistable(typ string) *status {
	if ut := s.cfg.Registry.lookup(typ); ut != nil && !ut.persistable {
		return fail(wire.CodePersist, "%s objects cannot be persistent or replicated: the type's state does not gob-encode "+
			"(give it exported fields, or GobEncode/GobDecode methods)", typ)
	}
	return nil
}

func persistRefused(typ string) *status {
	return fail(wire.CodePersist, "%s objects cannot be persistent (coordination objects live in memory only)", typ)
}

func (s *Server) newObject(typ string, init []byte, persistent bool) (object, *status) {
	if f, ok := builtins[typ]; ok && persistent && f.coordination {
		return nil, persistRefused(typ)
	}
	if st := s.persistable(typ); persistent && st != nil {
		return nil, st
	}
	obj, st := s.newObjectOf(typ, init)
	if st != nil {
		return nil, st
	}
	if persistent && s.store == nil {
		return nil, fail(wire.CodePersist, "persistent %s requested but the server has no DataDir", typ)
	}
	return obj, nil
}

// execute runs one call on e. It returns parked=true when w was parked;
// w.finish then answers later.
func (s *Server) execute(e *entry, c *wire.Call, w *waiter) (body []byte, st *status, parked bool) {
	if e.persistent {
		s.persistMu.RLock()
		defer s.persistMu.RUnlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(c.Init) > 0 {
		if st := e.obj.checkInit(c.Init); st != nil {
			return nil, st, false
		}
	}
	if c.Flags&wire.FlagPersistent != 0 && !e.persistent {
		return nil, fail(wire.CodeMismatch, "%s %q exists as an ephemeral object; a persistent handle cannot use it (create it persistent from its first call, or use another key)", e.typ, e.key), false
	}
	if w != nil && w.cancelReq {
		return nil, fail(wire.CodeCancelled, "cancelled by the caller"), false
	}
	body, st, parked = e.obj.invoke(c.Method, c.Args, w)
	if w != nil && !parked {
		w.fired = true
	}
	if st == nil && !parked && e.persistent && !e.obj.readOnly(c.Method) {
		if err := s.store.appendCall(e, c.Method, c.Args); err != nil {
			return nil, fail(wire.CodePersist, "%s %q: the call ran but writing it to the log failed: %v", e.typ, e.key, err), false
		}
	}
	return body, st, parked
}

// serverConn is one client connection. readLoop and writeLoop are owned by
// the server's WaitGroup; each call runs on its own goroutine, also counted
// there, bounded by the conn's inflight semaphore.
type serverConn struct {
	s  *Server
	nc net.Conn

	inflight chan struct{}

	// wmu guards bw. The reader writes the replies of calls it runs inline
	// and flushes when no complete frame is waiting to be read; writeLoop
	// writes replies produced elsewhere (parked calls, user methods).
	wmu     sync.Mutex
	bw      *bufio.Writer
	scratch []byte // reader's reply buffer

	mu      sync.Mutex
	out     [][]byte // frames waiting for writeLoop
	pending map[uint64]*waiter
	dead    bool
	// closed mirrors dead for lock-free reads by objects deciding whom to
	// release (see waiter.lost).
	closed atomic.Bool
	wake   chan struct{} // cap 1: out has frames
	quit   chan struct{} // closed by shutdown
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	return &serverConn{s: s, nc: nc, inflight: make(chan struct{}, s.cfg.MaxInflightPerConn), bw: bufio.NewWriterSize(nc, 64<<10),
		pending: map[uint64]*waiter{}, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// waiter is a parked blocking call. Its fields after creation are guarded
// by the lock of the entry it is parked on.
type waiter struct {
	c     *serverConn
	id    uint64
	e     *entry
	fired bool
	// cancelReq is set when the caller gave up before the call ran.
	cancelReq bool
	// n is a per-object parameter (permits asked for, ...).
	n int64
}

// lost reports whether w's connection has closed. Its caller has been told
// ErrConnLost and the waiter is about to be withdrawn (dropParked), so an
// object must not release it — grant it a permit, count it in a barrier
// generation — in the meantime: the effect would reach nobody. The caller
// holds w.e.mu.
func (w *waiter) lost() bool { return w.c.closed.Load() }

// drop withdraws a lost waiter without answering it. The caller holds w.e.mu.
func (w *waiter) drop() { w.fired = true }

// finish answers a parked call. The caller holds w.e.mu.
func (w *waiter) finish(body []byte, st *status) {
	if w.fired {
		return
	}
	w.fired = true
	w.c.mu.Lock()
	delete(w.c.pending, w.id)
	w.c.mu.Unlock()
	w.c.reply(w.id, body, st)
}

func (c *serverConn) send(frame []byte) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.out = append(c.out, frame)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *serverConn) appendReply(dst []byte, id uint64, body []byte, st *status) []byte {
	var r wire.Reply
	if st != nil {
		r = wire.Reply{Code: st.code, Body: []byte(st.msg)}
	} else {
		r = wire.Reply{Code: wire.CodeOK, Body: body}
	}
	start := len(dst)
	dst, off := wire.StartFrame(dst, wire.KindReply, id)
	dst = wire.AppendReply(dst, r)
	if n := wire.FinishFrame(dst, off); n > c.s.cfg.MaxFrameBytes {
		return c.appendReply(dst[:start], id, nil, fail(wire.CodeInternal, "result of %d bytes exceeds the %d-byte frame limit", n, c.s.cfg.MaxFrameBytes))
	}
	return dst
}

// reply queues a reply for writeLoop; it never blocks, so it may be called
// with an object's lock held.
func (c *serverConn) reply(id uint64, body []byte, st *status) {
	c.send(c.appendReply(make([]byte, 0, 4+wire.HeaderSize+1+len(body)), id, body, st))
}

// replyNow writes a reply from the reader goroutine into the buffer; the
// reader flushes it before it next waits for input.
func (c *serverConn) replyNow(id uint64, body []byte, st *status) {
	c.scratch = c.appendReply(c.scratch[:0], id, body, st)
	c.wmu.Lock()
	_, err := c.bw.Write(c.scratch)
	c.wmu.Unlock()
	if err != nil {
		c.shutdown(err)
	}
}

func (c *serverConn) flush() {
	c.wmu.Lock()
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		c.shutdown(err)
	}
}

// shutdown closes the connection; goAway, if non-nil, is sent first.
func (c *serverConn) shutdown(reason error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.closed.Store(true)
	close(c.quit)
	c.mu.Unlock()
	_ = reason
	_ = c.nc.Close()
}

func (c *serverConn) goAway(reason string) {
	frame := wire.AppendFrame(nil, wire.KindGoAway, 0, []byte(reason))
	c.wmu.Lock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(frame)
	c.wmu.Unlock()
}

func (c *serverConn) writeLoop() {
	defer c.s.wg.Done()
	var batch [][]byte
	for {
		select {
		case <-c.wake:
		case <-c.quit:
			return
		}
		c.mu.Lock()
		batch, c.out = c.out, batch[:0]
		c.mu.Unlock()
		c.wmu.Lock()
		var err error
		for i, f := range batch {
			if err == nil {
				_, err = c.bw.Write(f)
			}
			batch[i] = nil
		}
		if err == nil {
			err = c.bw.Flush()
		}
		c.wmu.Unlock()
		if err != nil {
			c.shutdown(err)
			return
		}
	}
}

func (c *serverConn) readLoop() {
	var calls sync.WaitGroup
	defer func() {
		c.shutdown(nil)
		calls.Wait()
		c.dropParked()
		c.s.connMu.Lock()
		delete(c.s.conns, c)
		c.s.connMu.Unlock()
		c.s.wg.Done()
	}()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	if err := c.handshake(br); err != nil {
		c.goAway(err.Error())
		return
	}
	var buf []byte
	for {
		if !wire.FrameBuffered(br) {
			c.flush() // answer everything run so far before waiting
		}
		var f wire.Frame
		var err error
		f, buf, err = wire.ReadFrame(br, c.s.cfg.MaxFrameBytes, buf)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
				c.flush()
				c.goAway("state: " + err.Error())
			}
			return
		}
		switch f.Kind {
		case wire.KindCall:
			call, err := wire.DecodeCall(f.Payload)
			if err != nil {
				c.flush()
				c.goAway("state: " + err.Error())
				return
			}
			if c.s.node != nil && (call.Flags&wire.FlagPersistent != 0 || call.Type == clusterType) {
				// Replicated and administrative calls are answered by the
				// replication loop: they keep their own copy.
				call, err = wire.DecodeCall(append([]byte(nil), f.Payload...))
				if err != nil {
					return
				}
				c.s.node.handle(c, f.ID, &call)
				continue
			}
			if _, ok := builtins[call.Type]; ok {
				// Built-in methods are short and never block, so they run
				// on the reader: no goroutine, no hand-off, and replies to
				// pipelined calls share one flush. Objects copy what they
				// keep, so the reused read buffer may back the arguments.
				c.handle(f.ID, &call, c.replyNow)
				continue
			}
			// User-defined methods may be long: run them apart, so one
			// connection's calls on different objects run in parallel.
			call, err = wire.DecodeCall(append([]byte(nil), f.Payload...))
			if err != nil {
				return
			}
			select {
			case c.inflight <- struct{}{}:
			case <-c.quit:
				return
			}
			calls.Add(1)
			go func(id uint64) {
				defer calls.Done()
				c.handle(id, &call, c.reply)
				<-c.inflight
			}(f.ID)
		case wire.KindCancel:
			c.cancel(f.ID)
		case wire.KindRaft:
			if c.s.node == nil {
				c.goAway("state: this server is not a cluster member")
				return
			}
			if err := c.s.node.receiveRaft(f.Payload, c.quit); err != nil {
				c.goAway("state: " + err.Error())
				return
			}
		default:
			c.goAway(fmt.Sprintf("state: unexpected %v frame from client", f.Kind))
			return
		}
	}
}

func (c *serverConn) handshake(br *bufio.Reader) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	f, _, err := wire.ReadFrame(br, wire.HelloLimit, nil)
	if err != nil {
		return fmt.Errorf("state: authentication failed: %w", err)
	}
	if f.Kind != wire.KindHello {
		return fmt.Errorf("state: authentication failed: first frame is %v, want hello", f.Kind)
	}
	if err := wire.CheckHello(f.Payload, c.s.cfg.Token); err != nil {
		return fmt.Errorf("state: authentication failed: %w", err)
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.send(wire.AppendFrame(nil, wire.KindWelcome, 0, nil))
	return nil
}

func (c *serverConn) handle(id uint64, call *wire.Call, reply func(uint64, []byte, *status)) {
	if n := c.s.node; n != nil {
		if owner := n.owner(call.Type, call.Key); owner != n.addr {
			reply(id, nil, fail(wire.CodeNotLeader, "%s", owner))
			return
		}
	}
	e, st := c.s.lookup(call)
	if st != nil {
		reply(id, nil, st)
		return
	}
	var w *waiter
	if f, ok := builtins[call.Type]; ok && f.coordination {
		// The waiter is visible to cancel before the call runs, so a cancel
		// that overtakes the call is not lost.
		w = &waiter{c: c, id: id, e: e}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return
		}
		c.pending[id] = w
		c.mu.Unlock()
	}
	body, st, parked := c.s.execute(e, call, w)
	if parked {
		return
	}
	if w != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}
	reply(id, body, st)
}

// cancel withdraws the parked call id, answering it with ErrCancelled. A
// call that already completed (or is not parked yet) is left alone: its
// reply is on its way.
func (c *serverConn) cancel(id uint64) {
	c.mu.Lock()
	w := c.pending[id]
	c.mu.Unlock()
	if w == nil {
		return
	}
	w.e.mu.Lock()
	if !w.fired {
		if w.e.obj.cancel(w) {
			w.finish(nil, fail(wire.CodeCancelled, "cancelled by the caller"))
		} else {
			w.cancelReq = true // not running yet: refuse it when it runs
		}
	}
	w.e.mu.Unlock()
}

// dropParked withdraws every parked call of a closed connection.
func (c *serverConn) dropParked() {
	c.mu.Lock()
	ws := make([]*waiter, 0, len(c.pending))
	for _, w := range c.pending {
		ws = append(ws, w)
	}
	c.pending = map[uint64]*waiter{}
	c.mu.Unlock()
	for _, w := range ws {
		w.e.mu.Lock()
		if !w.fired {
			w.cancelReq = true
			if w.e.obj.cancel(w) {
				w.fired = true
			}
		}
		w.e.mu.Unlock()
	}
}
