package glider

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Storage is a storage server: it holds file blocks in memory (DRAM) for
// one storage class and serves block writes and reads straight from
// clients. It joins the cluster through the metadata server when Serve
// starts and leaves when it closes. Create it with NewStorage, run it with
// Serve, stop it with Close.
type Storage struct {
	cfg   StorageConfig
	ln    net.Listener
	ready chan struct{}

	mu      sync.Mutex
	blocks  map[uint64]*block
	freed   map[uint64]struct{} // ids freed recently: late writes are refused
	bytes   int64
	conns   map[*conn]struct{}
	meta    *conn
	metaErr error
	closed  bool
	done    chan struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type block struct {
	ns   string
	data []byte
}

// NewStorage validates cfg and binds the listening socket. It starts no
// goroutines.
func NewStorage(cfg StorageConfig) (*Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillStorage()
	ln, err := cfg.listen("storage server")
	if err != nil {
		return nil, err
	}
	return &Storage{cfg: cfg, ln: ln, ready: make(chan struct{}), blocks: map[uint64]*block{}, freed: map[uint64]struct{}{}, conns: map[*conn]struct{}{}, done: make(chan struct{})}, nil
}

// Addr returns the address the server listens on.
func (s *Storage) Addr() string { return s.ln.Addr().String() }

// Ready is closed once the server has joined the cluster.
func (s *Storage) Ready() <-chan struct{} { return s.ready }

// Serve joins the cluster and serves clients until ctx is done, Close is
// called (it returns nil) or the metadata server goes away (it returns an
// error wrapping ErrServerGone).
func (s *Storage) Serve(ctx context.Context) error {
	adv := s.cfg.Advertise
	if adv == "" {
		adv = s.Addr()
	}
	join := &wire.Request{Op: wire.OpJoin, Name: roleStorage, Class: s.cfg.Class, Addr: adv,
		A: uint64(s.cfg.Capacity / int64(s.cfg.BlockSize)), B: uint64(s.cfg.BlockSize)}
	if err := joinCluster(ctx, &s.cfg.Common, s.cfg.Meta, join, s.handleMeta, &s.mu, &s.closed, &s.meta, &s.metaErr, s.ln, &s.wg); err != nil {
		_ = s.Close()
		return err
	}
	close(s.ready)
	err := serveLoop(ctx, s.ln, s.done, s.Close, "storage server", s.accept)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metaErr != nil {
		return s.metaErr
	}
	return err
}

// joinCluster dials the metadata server as a server, starts the
// connection's reader on a goroutine counted by wg, and joins. When the
// connection later breaks, it records the cause in *metaErr and closes ln
// so that the accept loop ends.
func joinCluster(ctx context.Context, cfg *Common, addr string, join *wire.Request, h handler, mu *sync.Mutex, closed *bool, metaConn **conn, metaErr *error, ln net.Listener, wg *sync.WaitGroup) error {
	c, err := dialConn(ctx, addr, wire.Hello{Role: wire.RoleServer, Token: []byte(cfg.Secret)}, cfg.MaxFrame, cfg.WriteTimeout, nil)
	if err != nil {
		return err
	}
	c.handle = h
	c.onClose = func(cause error) {
		mu.Lock()
		if !*closed && *metaErr == nil {
			*metaErr = errors.Join(ErrServerGone, errf(wire.CodeServerGone, "glider: %s server %s: lost the metadata server %s: %v", join.Name, join.Addr, addr, cause))
		}
		mu.Unlock()
		_ = ln.Close()
	}
	mu.Lock()
	if *closed {
		mu.Unlock()
		c.close(ErrShutdown)
		return nil
	}
	*metaConn = c
	wg.Go(c.run)
	mu.Unlock()
	if _, err := c.call(ctx, join); err != nil {
		c.close(err)
		return err
	}
	return nil
}

func (s *Storage) accept(nc net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c, err := acceptConn(nc, s.cfg.MaxFrame, s.cfg.WriteTimeout, func(h wire.Hello) error {
			if h.Role != wire.RoleClient {
				return errf(wire.CodeDenied, "glider: storage server: only clients connect here")
			}
			return checkHello(h, s.cfg.Secret)
		})
		if err != nil {
			return
		}
		c.handle = s.handleClient
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.close(ErrShutdown)
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		c.run()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Close leaves the cluster, closes every connection, drops every block and
// waits for the server's goroutines. It is idempotent.
func (s *Storage) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		conns := make([]*conn, 0, len(s.conns)+1)
		for c := range s.conns {
			conns = append(conns, c)
		}
		if s.meta != nil {
			conns = append(conns, s.meta)
		}
		s.mu.Unlock()
		err := s.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		for _, c := range conns {
			c.close(ErrShutdown)
		}
		s.closeErr = errors.Join(err, waitGroup(&s.wg, s.cfg.CloseTimeout, "storage server "+s.Addr()))
		s.mu.Lock()
		s.blocks = map[uint64]*block{}
		s.bytes = 0
		s.mu.Unlock()
	})
	return s.closeErr
}

// handleClient serves block reads and writes. Both run inline on the
// connection's reader (a copy into or out of memory), which also keeps a
// stream's pipelined writes in order.
func (s *Storage) handleClient(c *conn, id uint64, req *wire.Request) {
	ns := c.peer.Namespace
	switch req.Op {
	case wire.OpWriteBlock:
		if err := s.write(ns, req.A, req.B, req.Data); err != nil {
			c.replyErr(id, err)
			return
		}
		_ = c.reply(id, okResponse)
	case wire.OpReadBlock:
		data, err := s.read(ns, req.A, req.B, req.C)
		if err != nil {
			c.replyErr(id, err)
			return
		}
		_ = c.reply(id, &wire.Response{Data: data})
	default:
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: storage server: op %d is not a block operation", req.Op))
	}
}

func (s *Storage) write(ns string, id, off uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blocks[id]
	if b == nil {
		if off != 0 {
			return errf(wire.CodeBadRequest, "glider: block %d: first write at offset %d, not 0", id, off)
		}
		if _, gone := s.freed[id]; gone {
			return errf(wire.CodeNotFound, "glider: block %d was freed (its file was aborted or deleted)", id)
		}
		b = &block{ns: ns}
		s.blocks[id] = b
	}
	if b.ns != ns {
		return errf(wire.CodeNotFound, "glider: block %d: not found", id)
	}
	if off != uint64(len(b.data)) {
		return errf(wire.CodeBadRequest, "glider: block %d: write at offset %d, but the block holds %d bytes (blocks are written in order)", id, off, len(b.data))
	}
	if len(b.data)+len(data) > s.cfg.BlockSize {
		return errf(wire.CodeBadRequest, "glider: block %d: write of %d bytes at %d exceeds the %d-byte block", id, len(data), off, s.cfg.BlockSize)
	}
	if s.bytes+int64(len(data)) > s.cfg.Capacity {
		return errf(wire.CodeNoSpace, "glider: storage server %s is full (%d bytes)", s.Addr(), s.cfg.Capacity)
	}
	if b.data == nil {
		b.data = make([]byte, 0, len(data))
	}
	b.data = append(b.data, data...)
	s.bytes += int64(len(data))
	return nil
}

// read returns a view of a block. Blocks only grow, so the bytes below
// the current length never change and may be sent without the lock.
func (s *Storage) read(ns string, id, off, n uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blocks[id]
	if b == nil || b.ns != ns {
		return nil, errf(wire.CodeNotFound, "glider: block %d: not found on storage server %s", id, s.Addr())
	}
	if off > uint64(len(b.data)) || n > uint64(len(b.data))-off {
		return nil, errf(wire.CodeBadRequest, "glider: block %d: read of %d bytes at %d beyond its %d bytes", id, n, off, len(b.data))
	}
	return b.data[off : off+n : off+n], nil
}

// handleMeta serves the metadata server's requests.
func (s *Storage) handleMeta(c *conn, id uint64, req *wire.Request) {
	switch req.Op {
	case wire.OpFreeBlocks:
		s.mu.Lock()
		// Tombstones catch a writer's chunks that arrive after the free
		// (they travel on another connection). Block ids are never reused,
		// so forgetting old tombstones in bulk is safe: a write that late
		// only creates a block no file refers to, freed with the server.
		if len(s.freed) > 1<<20 {
			s.freed = map[uint64]struct{}{}
		}
		for _, bid := range req.IDs {
			s.freed[bid] = struct{}{}
			if b := s.blocks[bid]; b != nil && b.ns == req.Namespace {
				s.bytes -= int64(len(b.data))
				delete(s.blocks, bid)
			}
		}
		s.mu.Unlock()
		_ = c.reply(id, okResponse)
	case wire.OpServerStat:
		st := &wire.Stats{}
		s.mu.Lock()
		for _, b := range s.blocks {
			if b.ns == req.Namespace {
				st.Blocks++
				st.BytesStored += uint64(len(b.data))
			}
		}
		s.mu.Unlock()
		_ = c.reply(id, &wire.Response{Stats: st})
	default:
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: storage server: op %d not served", req.Op))
	}
}
