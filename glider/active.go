package glider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Active is an active server: it hosts actions in a fixed number of slots
// and runs their methods as clients stream data in and out. It joins the
// cluster through the metadata server when Serve starts and leaves when it
// closes. Create it with NewActive, run it with Serve, stop it with Close.
type Active struct {
	cfg   ActiveConfig
	ln    net.Listener
	ready chan struct{}

	// base is the server's lifetime: every action method's context derives
	// from it and it is cancelled by Close. It is a context kept in a
	// struct on purpose: methods outlive the requests that start them.
	base       context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	actions map[uint64]*instance
	conns   map[*conn]struct{}
	clients map[string]*Client
	meta    *conn
	metaErr error
	closed  bool
	done    chan struct{}

	// chunks recycles the output buffers of read streams once sent.
	chunks sync.Pool

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// instance is one hosted action.
type instance struct {
	id         uint64
	ns, path   string
	typ        string
	obj        Action
	interleave bool
	size       atomic.Int64

	// lock is the action lock: held by the one method running.
	lock sync.Mutex

	mu      sync.Mutex // guards streams and deleted
	streams map[*stream]struct{}
	deleted bool
}

func (in *instance) name() string { return fmt.Sprintf("action %s (%s)", in.path, in.typ) }

// NewActive validates cfg and binds the listening socket. It starts no
// goroutines.
func NewActive(cfg ActiveConfig) (*Active, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillActive()
	ln, err := cfg.listen("active server")
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	return &Active{cfg: cfg, ln: ln, ready: make(chan struct{}), base: base, cancelBase: cancel,
		actions: map[uint64]*instance{}, conns: map[*conn]struct{}{}, clients: map[string]*Client{}, done: make(chan struct{})}, nil
}

// Addr returns the address the server listens on.
func (a *Active) Addr() string { return a.ln.Addr().String() }

// Ready is closed once the server has joined the cluster.
func (a *Active) Ready() <-chan struct{} { return a.ready }

// Serve joins the cluster and serves clients until ctx is done, Close is
// called (it returns nil) or the metadata server goes away (it returns an
// error wrapping ErrServerGone).
func (a *Active) Serve(ctx context.Context) error {
	adv := a.cfg.Advertise
	if adv == "" {
		adv = a.Addr()
	}
	join := &wire.Request{Op: wire.OpJoin, Name: roleActive, Class: a.cfg.Class, Addr: adv, A: uint64(a.cfg.Slots)}
	if err := joinCluster(ctx, &a.cfg.Common, a.cfg.Meta, join, a.handleMeta, &a.mu, &a.closed, &a.meta, &a.metaErr, a.ln, &a.wg); err != nil {
		_ = a.Close()
		return err
	}
	close(a.ready)
	err := serveLoop(ctx, a.ln, a.done, a.Close, "active server", a.accept)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metaErr != nil {
		return a.metaErr
	}
	return err
}

func (a *Active) accept(nc net.Conn) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		_ = nc.Close()
		return
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		c, err := acceptConn(nc, a.cfg.MaxFrame, a.cfg.WriteTimeout, func(h wire.Hello) error {
			if h.Role != wire.RoleClient {
				return errf(wire.CodeDenied, "glider: active server: only clients connect here")
			}
			return checkHello(h, a.cfg.Secret)
		})
		if err != nil {
			return
		}
		cs := &connStreams{streams: map[uint64]*stream{}}
		c.state = cs
		c.handle = a.handleClient
		c.onClose = func(cause error) {
			cs.mu.Lock()
			ss := cs.streams
			cs.streams = map[uint64]*stream{}
			cs.closed = true
			cs.mu.Unlock()
			for _, s := range ss {
				s.fail(errf(wire.CodeStreamBroken, "glider: %s: stream cut: connection lost (%v)", s.inst.name(), cause))
			}
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.close(ErrShutdown)
			return
		}
		a.conns[c] = struct{}{}
		a.mu.Unlock()
		c.run()
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}()
}

// Close leaves the cluster, cuts every stream, closes every connection,
// waits for the action methods to return and closes the namespace clients
// given to actions. It is idempotent. Actions' OnDelete is not run: the
// actions vanish with the server.
func (a *Active) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		close(a.done)
		conns := make([]*conn, 0, len(a.conns)+1)
		for c := range a.conns {
			conns = append(conns, c)
		}
		if a.meta != nil {
			conns = append(conns, a.meta)
		}
		clients := a.clients
		a.clients = map[string]*Client{}
		a.mu.Unlock()
		a.cancelBase()
		err := a.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		for _, c := range conns {
			c.close(ErrShutdown)
		}
		errs := []error{err}
		for _, cl := range clients {
			errs = append(errs, cl.Close())
		}
		errs = append(errs, waitGroup(&a.wg, a.cfg.CloseTimeout, "active server "+a.Addr()))
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// goRun runs f on a goroutine owned by a, unless a is closing.
func (a *Active) goRun(f func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Go(f)
	return true
}

// clientFor returns the namespace client handed to actions of ns.
func (a *Active) clientFor(ctx context.Context, ns string) (*Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errf(wire.CodeShutdown, "glider: active server %s is closing", a.Addr())
	}
	if c := a.clients[ns]; c != nil {
		return c, nil
	}
	c, err := Dial(ctx, ClientConfig{Meta: a.cfg.Meta, Namespace: ns, Token: NamespaceToken(a.cfg.Secret, ns),
		ChunkSize: a.cfg.ChunkSize, Window: a.cfg.Window, MaxFrame: a.cfg.MaxFrame, WriteTimeout: a.cfg.WriteTimeout})
	if err != nil {
		return nil, err
	}
	a.clients[ns] = c
	return c, nil
}

// handleMeta serves the metadata server's requests: create and delete
// actions (on goroutines, since OnCreate and OnDelete may take time and
// may call the metadata server themselves), report stats.
func (a *Active) handleMeta(c *conn, id uint64, req *wire.Request) {
	switch req.Op {
	case wire.OpActionNew:
		r := *req
		if !a.goRun(func() {
			if err := a.create(&r); err != nil {
				c.replyErr(id, err)
				return
			}
			_ = c.reply(id, okResponse)
		}) {
			c.replyErr(id, errf(wire.CodeShutdown, "glider: active server %s is closing", a.Addr()))
		}
	case wire.OpActionDelete:
		a.mu.Lock()
		in := a.actions[req.A]
		a.mu.Unlock()
		if in == nil || in.ns != req.Namespace {
			_ = c.reply(id, okResponse)
			return
		}
		if !a.goRun(func() {
			if err := a.remove(in); err != nil {
				c.replyErr(id, err)
				return
			}
			_ = c.reply(id, okResponse)
		}) {
			c.replyErr(id, errf(wire.CodeShutdown, "glider: active server %s is closing", a.Addr()))
		}
	case wire.OpServerStat:
		st := &wire.Stats{}
		a.mu.Lock()
		for _, in := range a.actions {
			if in.ns == req.Namespace {
				st.Actions++
				st.ActionBytes += uint64(in.size.Load())
			}
		}
		a.mu.Unlock()
		_ = c.reply(id, &wire.Response{Stats: st})
	default:
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: active server: op %d not served", req.Op))
	}
}

// guard runs f, turning a panic into an error that names the action.
func guard(in *instance, method string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errf(wire.CodeActionFailed, "glider: %s: %s panicked: %v\n%s", in.name(), method, p, debug.Stack())
		}
	}()
	if err := f(); err != nil {
		// A Glider error keeps its code (an unknown combiner stays
		// ErrUnknownType, a cut stream ErrStreamBroken); any other error
		// is the action's own failure.
		code := wire.CodeActionFailed
		var ce *codedError
		if errors.As(err, &ce) {
			code = ce.code
		}
		return &codedError{code: code, msg: fmt.Sprintf("glider: %s: %s: %v", in.name(), method, err)}
	}
	return nil
}

func (a *Active) create(req *wire.Request) error {
	obj, err := a.cfg.Registry.newAction(req.Name)
	if err != nil {
		return fmt.Errorf("glider: create action %s: %w", req.Path, err)
	}
	in := &instance{id: req.A, ns: req.Namespace, path: req.Path, typ: req.Name, obj: obj,
		interleave: req.Flags&wire.FlagInterleave != 0, streams: map[*stream]struct{}{}}
	a.mu.Lock()
	full := len(a.actions) >= a.cfg.Slots
	a.mu.Unlock()
	if full {
		return errf(wire.CodeNoSpace, "glider: create action %s: active server %s has no free slot", req.Path, a.Addr())
	}
	ns := req.Namespace
	env := &Env{Namespace: ns, Path: req.Path, Type: req.Name, Options: req.Options, Interleaved: in.interleave,
		registry: a.cfg.Registry, client: func(ctx context.Context) (*Client, error) { return a.clientFor(ctx, ns) }}
	if cr, ok := obj.(Creator); ok {
		if err := guard(in, "OnCreate", func() error { return cr.OnCreate(a.base, env) }); err != nil {
			return err
		}
	}
	if sz, ok := obj.(Sizer); ok {
		in.size.Store(sz.StateBytes())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errf(wire.CodeShutdown, "glider: active server %s is closing", a.Addr())
	}
	a.actions[in.id] = in
	return nil
}

// remove cuts the action's streams, waits for its running method, runs
// OnDelete and frees the slot.
func (a *Active) remove(in *instance) error {
	in.mu.Lock()
	in.deleted = true
	ss := make([]*stream, 0, len(in.streams))
	for s := range in.streams {
		ss = append(ss, s)
	}
	in.mu.Unlock()
	for _, s := range ss {
		s.fail(errf(wire.CodeNotFound, "glider: %s: deleted while the stream was open", in.name()))
	}
	in.lock.Lock()
	var err error
	if d, ok := in.obj.(Deleter); ok {
		err = guard(in, "OnDelete", func() error { return d.OnDelete(a.base) })
	}
	in.lock.Unlock()
	a.mu.Lock()
	delete(a.actions, in.id)
	a.mu.Unlock()
	return err
}

// connStreams is the per-connection table of open streams, keyed by the id
// of the request that opened them.
type connStreams struct {
	mu      sync.Mutex
	streams map[uint64]*stream
	closed  bool
}

func (cs *connStreams) get(id uint64) *stream {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.streams[id]
}

func (cs *connStreams) drop(id uint64) {
	cs.mu.Lock()
	delete(cs.streams, id)
	cs.mu.Unlock()
}

// handleClient serves stream requests. It runs on the connection's reader
// and never blocks: data is queued for the stream's method goroutine and
// answered when consumed.
func (a *Active) handleClient(c *conn, id uint64, req *wire.Request) {
	cs := c.state.(*connStreams)
	switch req.Op {
	case wire.OpStreamOpen:
		a.open(c, cs, id, req)
	case wire.OpStreamData, wire.OpStreamEnd, wire.OpStreamRead, wire.OpStreamAbort:
		s := cs.get(req.A)
		if s == nil {
			if req.Op == wire.OpStreamAbort {
				_ = c.reply(id, okResponse)
				return
			}
			c.replyErr(id, errf(wire.CodeBadRequest, "glider: stream %d is not open on this connection", req.A))
			return
		}
		switch req.Op {
		case wire.OpStreamData:
			s.push(id, req.Data)
		case wire.OpStreamEnd:
			s.end(id)
		case wire.OpStreamRead:
			s.readReq(id, int(req.C))
		case wire.OpStreamAbort:
			s.fail(errf(wire.CodeStreamBroken, "glider: %s: stream cut: the client aborted it", s.inst.name()))
			_ = c.reply(id, okResponse)
		}
	default:
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: active server: op %d is not a stream operation", req.Op))
	}
}

func (a *Active) open(c *conn, cs *connStreams, id uint64, req *wire.Request) {
	a.mu.Lock()
	in := a.actions[req.A]
	a.mu.Unlock()
	if in == nil || in.ns != c.peer.Namespace {
		c.replyErr(id, errf(wire.CodeNotFound, "glider: action %d is not on active server %s (deleted, or the server restarted)", req.A, a.Addr()))
		return
	}
	read := req.Flags&wire.FlagRead != 0
	if read {
		if _, ok := in.obj.(ReadHandler); !ok {
			c.replyErr(id, errf(wire.CodeWrongKind, "glider: %s cannot be read (its type has no OnRead)", in.name()))
			return
		}
	} else if _, ok := in.obj.(WriteHandler); !ok {
		c.replyErr(id, errf(wire.CodeWrongKind, "glider: %s cannot be written (its type has no OnWrite)", in.name()))
		return
	}
	ctx, cancel := context.WithCancelCause(a.base)
	s := &stream{id: id, c: c, cs: cs, inst: in, read: read, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), chunk: a.cfg.ChunkSize, window: a.cfg.Window, pool: &a.chunks}
	in.mu.Lock()
	if in.deleted {
		in.mu.Unlock()
		cancel(nil)
		c.replyErr(id, errf(wire.CodeNotFound, "glider: %s was deleted", in.name()))
		return
	}
	in.streams[s] = struct{}{}
	in.mu.Unlock()
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		s.detach()
		cancel(nil)
		return
	}
	cs.streams[id] = s
	cs.mu.Unlock()
	if !a.goRun(s.run) {
		s.detach()
		cs.drop(id)
		cancel(nil)
		c.replyErr(id, errf(wire.CodeShutdown, "glider: active server %s is closing", a.Addr()))
		return
	}
	_ = c.reply(id, okResponse)
}

// chunk is a piece of a write stream waiting to be consumed.
type inChunk struct {
	req  uint64
	data []byte
}

// stream is one open read or write stream of an action. The connection's
// reader feeds it (push, end, readReq, fail); its method goroutine (run)
// consumes it.
type stream struct {
	id     uint64
	c      *conn
	cs     *connStreams
	inst   *instance
	read   bool
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{} // signals the method goroutine
	chunk  int
	window int
	pool   *sync.Pool // of *[]byte with capacity chunk
	held   bool       // the method goroutine holds the action lock

	mu     sync.Mutex
	broken error // the stream was cut
	done   bool  // the method returned
	result error // the method's result, once done

	// write streams
	in    []inChunk
	ended bool
	endID uint64

	// read streams
	out     [][]byte
	readers []readWait
}

type readWait struct {
	req uint64
	max int
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// detach removes the stream from its action.
func (s *stream) detach() {
	s.inst.mu.Lock()
	delete(s.inst.streams, s)
	s.inst.mu.Unlock()
}

// maxQueued bounds the chunks a write stream queues: a client keeping more
// in flight than the window allows is refused.
func (s *stream) maxQueued() int { return max(4*s.window, 64) }

func (s *stream) push(req uint64, data []byte) {
	s.mu.Lock()
	switch {
	case s.broken != nil:
		err := s.broken
		s.mu.Unlock()
		s.c.replyErr(req, err)
		return
	case s.done:
		res := s.result
		s.mu.Unlock()
		if res != nil {
			s.c.replyErr(req, res)
		} else {
			_ = s.c.reply(req, okResponse) // the method stopped reading; drop the data
		}
		return
	case s.read || s.ended:
		s.mu.Unlock()
		s.c.replyErr(req, errf(wire.CodeBadRequest, "glider: %s: data on a read stream or after its end", s.inst.name()))
		return
	case len(s.in) >= s.maxQueued():
		s.mu.Unlock()
		s.fail(errf(wire.CodeBadRequest, "glider: %s: more than %d chunks in flight", s.inst.name(), s.maxQueued()))
		s.c.replyErr(req, ErrStreamBroken)
		return
	}
	s.in = append(s.in, inChunk{req: req, data: data})
	s.mu.Unlock()
	s.signal()
}

func (s *stream) end(req uint64) {
	s.mu.Lock()
	if s.broken != nil {
		err := s.broken
		s.mu.Unlock()
		s.c.replyErr(req, err)
		return
	}
	if s.done {
		res := s.result
		s.mu.Unlock()
		s.finishReply(req, res)
		return
	}
	s.ended, s.endID = true, req
	s.mu.Unlock()
	s.signal()
}

func (s *stream) finishReply(req uint64, res error) {
	s.cs.drop(s.id)
	if res != nil {
		s.c.replyErr(req, res)
		return
	}
	_ = s.c.reply(req, okResponse)
}

// fail cuts the stream: the method sees err from Read or Write, and every
// waiting request is answered with it.
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.broken != nil {
		s.mu.Unlock()
		return
	}
	s.broken = err
	in, readers := s.in, s.readers
	s.in, s.readers = nil, nil
	s.mu.Unlock()
	s.cancel(err)
	s.signal()
	for _, ch := range in {
		s.c.replyErr(ch.req, err)
	}
	for _, r := range readers {
		s.c.replyErr(r.req, err)
	}
	s.cs.drop(s.id)
}

// readReq answers a read request from the queued output, or parks it.
func (s *stream) readReq(req uint64, maxBytes int) {
	if maxBytes <= 0 {
		maxBytes = s.chunk
	}
	s.mu.Lock()
	if !s.read {
		s.mu.Unlock()
		s.c.replyErr(req, errf(wire.CodeBadRequest, "glider: %s: read request on a write stream", s.inst.name()))
		return
	}
	if s.broken != nil {
		err := s.broken
		s.mu.Unlock()
		s.c.replyErr(req, err)
		return
	}
	if len(s.out) > 0 || s.done {
		s.readers = append(s.readers, readWait{req, maxBytes})
		s.serveReadersLocked()
		return
	}
	s.readers = append(s.readers, readWait{req, maxBytes})
	s.mu.Unlock()
}

// serveReadersLocked answers parked read requests in order from the output
// queue; at the end of the output it answers with FlagEOF (or the method's
// error). It unlocks s.mu.
func (s *stream) serveReadersLocked() {
	type ans struct {
		req     uint64
		resp    *wire.Response
		err     error
		recycle bool // resp.Data is a whole pooled chunk, free once sent
	}
	var as []ans
	eof := false
	for len(s.readers) > 0 && (len(s.out) > 0 || s.done) {
		r := s.readers[0]
		s.readers = s.readers[1:]
		if len(s.out) > 0 {
			d := s.out[0]
			whole := len(d) <= r.max && cap(d) == s.chunk
			if len(d) > r.max {
				s.out[0] = d[r.max:]
				d = d[:r.max:r.max]
			} else {
				s.out = s.out[1:]
			}
			as = append(as, ans{req: r.req, resp: &wire.Response{Data: d}, recycle: whole})
			continue
		}
		eof = true
		if s.result != nil {
			as = append(as, ans{req: r.req, err: s.result})
		} else {
			as = append(as, ans{req: r.req, resp: &wire.Response{Flags: wire.FlagEOF}})
		}
	}
	s.mu.Unlock()
	s.signal() // room in the output queue
	for _, a := range as {
		if a.err != nil {
			s.c.replyErr(a.req, a.err)
		} else {
			// reply has written the frame to the socket when it returns.
			_ = s.c.reply(a.req, a.resp)
			if a.recycle {
				b := a.resp.Data[:0]
				s.pool.Put(&b)
			}
		}
	}
	if eof {
		s.cs.drop(s.id)
	}
}

// wait blocks until signalled or the stream is cut. With interleaving, it
// yields the action lock meanwhile so another method of the action may
// run; it takes the lock back before returning.
func (s *stream) wait() {
	if s.inst.interleave && s.held {
		s.inst.lock.Unlock()
		s.held = false
		defer func() { s.inst.lock.Lock(); s.held = true }()
	}
	select {
	case <-s.wake:
	case <-s.ctx.Done():
	}
}

// Read implements io.Reader over a write stream for OnWrite. Each chunk
// is acknowledged to the client once fully consumed.
func (s *stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.mu.Lock()
		if s.broken != nil {
			err := s.broken
			s.mu.Unlock()
			return 0, err
		}
		if len(s.in) > 0 {
			ch := &s.in[0]
			n := copy(p, ch.data)
			ch.data = ch.data[n:]
			var ack uint64
			if len(ch.data) == 0 {
				ack = ch.req
				s.in = s.in[1:]
			}
			s.mu.Unlock()
			if ack != 0 {
				_ = s.c.reply(ack, okResponse)
			}
			return n, nil
		}
		if s.ended {
			s.mu.Unlock()
			return 0, io.EOF
		}
		s.mu.Unlock()
		s.wait()
	}
}

// Write implements io.Writer over a read stream for OnRead: output is cut
// into chunks, handed to parked read requests, and Write blocks while
// window chunks are waiting for the reader.
func (s *stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		s.mu.Lock()
		if s.broken != nil {
			err := s.broken
			s.mu.Unlock()
			return n, err
		}
		if len(s.out) >= s.window {
			s.mu.Unlock()
			s.wait()
			continue
		}
		// Append to the last chunk if it has room, else start one.
		k := min(len(p), s.chunk)
		if l := len(s.out); l > 0 && len(s.out[l-1])+k <= s.chunk && cap(s.out[l-1]) >= s.chunk {
			s.out[l-1] = append(s.out[l-1], p[:k]...)
		} else {
			var buf []byte
			if b, ok := s.pool.Get().(*[]byte); ok && cap(*b) == s.chunk {
				buf = (*b)[:0]
			} else {
				buf = make([]byte, 0, s.chunk)
			}
			s.out = append(s.out, append(buf, p[:k]...))
		}
		p = p[k:]
		n += k
		if len(s.readers) > 0 {
			s.serveReadersLocked()
		} else {
			s.mu.Unlock()
		}
	}
	return n, nil
}

// run is the stream's method goroutine: it takes the action lock, runs
// OnWrite or OnRead, and answers the stream's end.
func (s *stream) run() {
	in := s.inst
	in.lock.Lock()
	s.held = true
	var err error
	if s.read {
		err = guard(in, "OnRead", func() error { return in.obj.(ReadHandler).OnRead(s.ctx, s) })
	} else {
		err = guard(in, "OnWrite", func() error { return in.obj.(WriteHandler).OnWrite(s.ctx, s) })
	}
	if sz, ok := in.obj.(Sizer); ok && s.held {
		in.size.Store(sz.StateBytes())
	}
	if s.held {
		in.lock.Unlock()
		s.held = false
	}
	s.detach()
	s.cancel(nil)

	s.mu.Lock()
	s.done, s.result = true, err
	if s.broken != nil {
		s.mu.Unlock()
		return
	}
	if s.read {
		s.serveReadersLocked()
		return
	}
	// Acknowledge (or refuse) what the method left unread.
	rest := s.in
	s.in = nil
	ended, endID := s.ended, s.endID
	s.mu.Unlock()
	for _, ch := range rest {
		if err != nil {
			s.c.replyErr(ch.req, err)
		} else {
			_ = s.c.reply(ch.req, okResponse)
		}
	}
	if ended {
		s.finishReply(endID, err)
	}
}
