package glider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/glider/internal/wire"
)

// counters accumulate what crosses a connection. One counters value may be
// shared by all the connections of a client.
type counters struct {
	requests atomic.Int64
	bytesOut atomic.Int64
	bytesIn  atomic.Int64
}

// handler serves a request that arrived on c. It runs on c's reader
// goroutine, so it must not block: work that waits starts a goroutine owned
// by the handler's server. It answers with c.reply(id, ...), exactly once,
// now or later.
type handler func(c *conn, id uint64, req *wire.Request)

// conn is one authenticated connection carrying pipelined requests in both
// directions. Its reader goroutine is started by run and owned by whoever
// calls run; close stops it (run returns).
type conn struct {
	nc           net.Conn
	br           *bufio.Reader
	limit        int
	writeTimeout time.Duration
	handle       handler
	stats        *counters // may be nil
	peer         wire.Hello

	wmu sync.Mutex
	bw  *bufio.Writer
	hdr []byte

	mu      sync.Mutex
	pending map[uint64]chan *wire.Response
	nextID  uint64
	err     error
	done    chan struct{}

	// onClose, if set, runs once after the connection closed (on the
	// goroutine that closed it).
	onClose func(error)

	// state is owned by the server that accepted the connection.
	state any
}

func newConn(nc net.Conn, limit int, writeTimeout time.Duration, stats *counters) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &conn{
		nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10),
		limit: limit, writeTimeout: writeTimeout, stats: stats,
		pending: map[uint64]chan *wire.Response{}, done: make(chan struct{}), nextID: 1,
	}
}

// dialConn connects to addr and presents hello. The context bounds the
// handshake.
func dialConn(ctx context.Context, addr string, hello wire.Hello, limit int, writeTimeout time.Duration, stats *counters) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %v", ErrServerGone, addr, err)
	}
	c := newConn(nc, limit, writeTimeout, stats)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(hello)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("glider: connect to %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *conn) handshake(h wire.Hello) error {
	p := wire.AppendHello(nil, h)
	if _, err := c.nc.Write(wire.AppendFrame(nil, wire.KindHello, 0, p)); err != nil {
		return fmt.Errorf("%w: %v", ErrServerGone, err)
	}
	f, _, err := wire.ReadFrame(c.br, wire.HelloLimit)
	if err != nil {
		return fmt.Errorf("%w: reading welcome: %v", ErrServerGone, err)
	}
	switch f.Kind {
	case wire.KindWelcome:
		return nil
	case wire.KindGoAway:
		// The server's reason is its own error, which already starts
		// with ErrDenied's text (or at least "glider: "): say it once.
		why := strings.TrimPrefix(string(f.Payload), ErrDenied.Error()+": ")
		return fmt.Errorf("%w: %s", ErrDenied, strings.TrimPrefix(why, "glider: "))
	}
	return fmt.Errorf("%w: expected welcome, got %v", ErrBadRequest, f.Kind)
}

// acceptConn reads the peer's hello and accepts it if check passes.
func acceptConn(nc net.Conn, limit int, writeTimeout time.Duration, check func(wire.Hello) error) (*conn, error) {
	c := newConn(nc, limit, writeTimeout, nil)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	f, _, err := wire.ReadFrame(c.br, wire.HelloLimit)
	if err == nil && f.Kind != wire.KindHello {
		err = fmt.Errorf("%w: expected hello, got %v", wire.ErrMalformed, f.Kind)
	}
	var h wire.Hello
	if err == nil {
		h, err = wire.DecodeHello(f.Payload)
	}
	if err == nil {
		err = check(h)
	}
	if err != nil {
		_, _ = nc.Write(wire.AppendFrame(nil, wire.KindGoAway, 0, []byte(err.Error())))
		_ = nc.Close()
		return nil, err
	}
	if _, err := nc.Write(wire.AppendFrame(nil, wire.KindWelcome, 0, nil)); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	h.Token = nil
	c.peer = h
	return c, nil
}

// run reads frames until the connection breaks or is closed, then closes
// it. It blocks; its caller owns the goroutine.
func (c *conn) run() {
	for {
		f, n, err := wire.ReadFrame(c.br, c.limit)
		if err != nil {
			c.close(err)
			return
		}
		if c.stats != nil {
			c.stats.bytesIn.Add(int64(n))
		}
		switch f.Kind {
		case wire.KindResponse:
			r, err := wire.DecodeResponse(f.Payload)
			if err != nil {
				c.close(err)
				return
			}
			c.mu.Lock()
			ch := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- &r // buffered; the waiter may have gone
			}
		case wire.KindRequest:
			r, err := wire.DecodeRequest(f.Payload)
			if err != nil {
				c.close(err)
				return
			}
			if c.handle == nil {
				_ = c.reply(f.ID, errResponse(errf(wire.CodeBadRequest, "glider: this peer serves no requests")))
				continue
			}
			c.handle(c, f.ID, &r)
		case wire.KindGoAway:
			c.close(fmt.Errorf("%w: peer closed the connection: %s", ErrServerGone, f.Payload))
			return
		default:
			c.close(fmt.Errorf("%w: unexpected %v frame", wire.ErrMalformed, f.Kind))
			return
		}
	}
}

// close closes the connection once, failing every pending request.
func (c *conn) close(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if cause == nil {
		cause = ErrClosed
	}
	c.err = cause
	c.pending = map[uint64]chan *wire.Response{}
	close(c.done)
	c.mu.Unlock()
	_ = c.nc.Close()
	if c.onClose != nil {
		c.onClose(cause)
	}
}

// closed returns the reason the connection closed, or nil.
func (c *conn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn) brokenErr() error {
	return fmt.Errorf("%w: connection to %s: %v", ErrServerGone, c.nc.RemoteAddr(), c.closedErr())
}

// writeFrame writes one frame made of head followed by data, under the
// write lock. A write that cannot finish within writeTimeout (the peer stopped
// reading) breaks the connection.
func (c *conn) writeFrame(k wire.Kind, id uint64, head, data []byte) error {
	n, err := c.writeLocked(k, id, head, data)
	if err != nil {
		c.close(err)
		return fmt.Errorf("%w: write to %s: %v", ErrServerGone, c.nc.RemoteAddr(), err)
	}
	if c.stats != nil {
		c.stats.bytesOut.Add(int64(n))
	}
	return nil
}

func (c *conn) writeLocked(k wire.Kind, id uint64, head, data []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hdr = wire.AppendHeader(c.hdr[:0], k, id, len(head)+len(data))
	if c.writeTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	_, err := c.bw.Write(c.hdr)
	if err == nil {
		_, err = c.bw.Write(head)
	}
	if err == nil && len(data) > 0 {
		_, err = c.bw.Write(data)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	return len(c.hdr) + len(head) + len(data), err
}

// call is a request in flight.
type call struct {
	c  *conn
	id uint64
	ch chan *wire.Response
}

// start sends req and returns without waiting for the response.
func (c *conn) start(req *wire.Request) (*call, error) {
	ch := make(chan *wire.Response, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.brokenErr()
	}
	id := c.nextID
	c.nextID++
	c.pending[id] = ch
	c.mu.Unlock()
	head := wire.AppendRequestHead(make([]byte, 0, 64+len(req.Path)), req)
	if err := c.writeFrame(wire.KindRequest, id, head, req.Data); err != nil {
		c.forget(id)
		return nil, err
	}
	if c.stats != nil {
		c.stats.requests.Add(1)
	}
	return &call{c: c, id: id, ch: ch}, nil
}

func (c *conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// wait waits for the response to a started call. A response with an error
// code is returned as an error. If ctx ends first, the response is
// abandoned (the request may still take effect).
func (p *call) wait(ctx context.Context) (*wire.Response, error) {
	select {
	case r := <-p.ch:
		return r, respError(r)
	case <-ctx.Done():
		p.c.forget(p.id)
		return nil, ctx.Err()
	case <-p.c.done:
		select {
		case r := <-p.ch:
			return r, respError(r)
		default:
		}
		return nil, p.c.brokenErr()
	}
}

// call sends req and waits for its response.
func (c *conn) call(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	p, err := c.start(req)
	if err != nil {
		return nil, err
	}
	return p.wait(ctx)
}

// reply answers request id.
func (c *conn) reply(id uint64, r *wire.Response) error {
	head := wire.AppendResponseHead(make([]byte, 0, 64+len(r.Msg)), r)
	return c.writeFrame(wire.KindResponse, id, head, r.Data)
}

// replyErr answers request id with an error.
func (c *conn) replyErr(id uint64, err error) {
	_ = c.reply(id, errResponse(err))
}

// okResponse is the empty success response.
var okResponse = &wire.Response{}
