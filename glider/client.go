package glider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/galeproject/gale/glider/internal/wire"
)

// NodeKind is the type of a namespace node.
type NodeKind uint8

// Node kinds.
const (
	KindDir    NodeKind = NodeKind(wire.NodeDir)
	KindFile   NodeKind = NodeKind(wire.NodeFile)
	KindAction NodeKind = NodeKind(wire.NodeAction)
)

// String returns "dir", "file" or "action".
func (k NodeKind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindAction:
		return "action"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Node describes a namespace node.
type Node struct {
	// Path is the node's absolute path.
	Path string
	// Kind is dir, file or action.
	Kind NodeKind
	// Size is a file's length in bytes.
	Size int64
	// Class is the storage class of a file or action.
	Class string
	// Type is an action's type name.
	Type string
	// Interleaved reports whether an action was created with
	// interleaving.
	Interleaved bool
	// ModTime is when the node was created (a file: committed, or last
	// replaced).
	ModTime time.Time
}

func nodeOf(w wire.Node) Node {
	return Node{Path: w.Path, Kind: NodeKind(w.Kind), Size: int64(w.Size), Class: w.Class, Type: w.Type,
		Interleaved: w.Flags&wire.FlagInterleave != 0, ModTime: time.Unix(0, int64(w.ModTime))}
}

// Stats counts what crossed the boundary between a client and Glider's
// servers: every request the client sent and every byte of every frame in
// both directions (metadata, storage and active servers alike).
type Stats struct {
	Requests      int64
	BytesSent     int64
	BytesReceived int64
}

// Sub returns s minus o (the traffic between two snapshots).
func (s Stats) Sub(o Stats) Stats {
	return Stats{Requests: s.Requests - o.Requests, BytesSent: s.BytesSent - o.BytesSent, BytesReceived: s.BytesReceived - o.BytesReceived}
}

// ClusterStats is what the servers hold for one namespace.
type ClusterStats struct {
	StorageServers, ActiveServers int
	// BytesStored is the file data held in blocks.
	BytesStored int64
	// Blocks is the number of blocks holding it.
	Blocks int64
	// Actions is the number of actions.
	Actions int64
	// ActionBytes is the state the actions report holding (Sizer).
	ActionBytes int64
}

// Client is a tenant's client of one namespace. It keeps one connection to
// the metadata server and one per storage or active server it talks to,
// each carrying pipelined requests. A Client is safe for concurrent use;
// each stream (FileWriter, FileReader, ActionWriter, ActionReader) is used
// by one goroutine at a time.
type Client struct {
	cfg   ClientConfig
	stats counters
	meta  *conn

	mu     sync.Mutex
	data   map[string]*conn
	closed bool

	wg sync.WaitGroup // connection readers
}

// Dial connects to the metadata server and authenticates with the
// namespace's token.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	c := &Client{cfg: cfg, data: map[string]*conn{}}
	m, err := dialConn(ctx, cfg.Meta, c.hello(), cfg.MaxFrame, cfg.WriteTimeout, &c.stats)
	if err != nil {
		return nil, err
	}
	c.meta = m
	c.wg.Go(m.run)
	return c, nil
}

func (c *Client) hello() wire.Hello {
	return wire.Hello{Role: wire.RoleClient, Namespace: c.cfg.Namespace, Token: []byte(c.cfg.Token)}
}

// Namespace returns the client's namespace.
func (c *Client) Namespace() string { return c.cfg.Namespace }

// Close closes every connection (open streams fail) and waits for the
// client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conns := []*conn{c.meta}
	for _, d := range c.data {
		conns = append(conns, d)
	}
	c.mu.Unlock()
	for _, d := range conns {
		d.close(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// ChunkSize is the size of the chunks the client's action writers send
// (ClientConfig.ChunkSize).
func (c *Client) ChunkSize() int { return c.cfg.ChunkSize }

// Stats returns the client's traffic counters so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.stats.requests.Load(), BytesSent: c.stats.bytesOut.Load(), BytesReceived: c.stats.bytesIn.Load()}
}

// dataConn returns the connection to a storage or active server, dialing
// it on first use (or again after it broke).
func (c *Client) dataConn(ctx context.Context, addr string) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if d := c.data[addr]; d != nil && d.closedErr() == nil {
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()
	d, err := dialConn(ctx, addr, c.hello(), c.cfg.MaxFrame, c.cfg.WriteTimeout, &c.stats)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		d.close(ErrClosed)
		return nil, ErrClosed
	}
	if o := c.data[addr]; o != nil && o.closedErr() == nil {
		d.close(ErrClosed) // another goroutine won the race
		return o, nil
	}
	c.data[addr] = d
	c.wg.Go(d.run)
	return d, nil
}

func (c *Client) metaCall(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	return c.meta.call(ctx, req)
}

// Mkdir creates a directory; its parent must exist.
func (c *Client) Mkdir(ctx context.Context, path string) error {
	_, err := c.metaCall(ctx, &wire.Request{Op: wire.OpMkdir, Path: path})
	return err
}

// MkdirAll creates a directory and any missing parents; an existing
// directory is not an error.
func (c *Client) MkdirAll(ctx context.Context, path string) error {
	_, err := c.metaCall(ctx, &wire.Request{Op: wire.OpMkdir, Path: path, Flags: wire.FlagParents})
	return err
}

// Lookup describes the node at path. A file whose data was on a storage
// server that left gives ErrDataLost; an action whose server left gives
// ErrServerGone.
func (c *Client) Lookup(ctx context.Context, path string) (Node, error) {
	w, err := c.lookup(ctx, path)
	return nodeOf(w), err
}

func (c *Client) lookup(ctx context.Context, path string) (wire.Node, error) {
	r, err := c.metaCall(ctx, &wire.Request{Op: wire.OpLookup, Path: path})
	if err != nil {
		return wire.Node{}, err
	}
	if len(r.Nodes) != 1 {
		return wire.Node{}, fmt.Errorf("%w: lookup %s: %d nodes in the answer", ErrInternal, path, len(r.Nodes))
	}
	return r.Nodes[0], nil
}

// List returns the children of a directory, sorted by name.
func (c *Client) List(ctx context.Context, path string) ([]Node, error) {
	r, err := c.metaCall(ctx, &wire.Request{Op: wire.OpList, Path: path})
	if err != nil {
		return nil, err
	}
	out := make([]Node, len(r.Nodes))
	for i, w := range r.Nodes {
		out[i] = nodeOf(w)
	}
	return out, nil
}

// Delete removes a file, an action (running its OnDelete) or an empty
// directory.
func (c *Client) Delete(ctx context.Context, path string) error {
	_, err := c.metaCall(ctx, &wire.Request{Op: wire.OpDelete, Path: path})
	return err
}

// Rename moves the file at from to to in one metadata operation; a file
// already at to is replaced. The parent directory of to must exist.
// Directories and actions cannot be renamed.
func (c *Client) Rename(ctx context.Context, from, to string) error {
	_, err := c.metaCall(ctx, &wire.Request{Op: wire.OpRename, Path: from, Name: to})
	return err
}

// DeleteAll removes a node and, for a directory, everything under it.
func (c *Client) DeleteAll(ctx context.Context, path string) error {
	_, err := c.metaCall(ctx, &wire.Request{Op: wire.OpDelete, Path: path, Flags: wire.FlagRecursive})
	return err
}

// ClusterStats asks every server what it holds for this namespace.
func (c *Client) ClusterStats(ctx context.Context) (ClusterStats, error) {
	r, err := c.metaCall(ctx, &wire.Request{Op: wire.OpClusterStats})
	if err != nil {
		return ClusterStats{}, err
	}
	s := r.Stats
	if s == nil {
		return ClusterStats{}, fmt.Errorf("%w: stats answer without stats", ErrInternal)
	}
	return ClusterStats{StorageServers: int(s.StorageServers), ActiveServers: int(s.ActiveServers), BytesStored: int64(s.BytesStored),
		Blocks: int64(s.Blocks), Actions: int64(s.Actions), ActionBytes: int64(s.ActionBytes)}, nil
}

// ActionOptions are the creation options of an action.
type ActionOptions struct {
	// Class is the storage class of active servers to place it on;
	// default ClassActive.
	Class string
	// Interleave lets a method waiting for stream data yield to another
	// method of the action (still one at a time).
	Interleave bool
	// Options are handed to the action's OnCreate (Env.Options).
	Options map[string]string
}

// CreateAction instantiates the registered action type typ at path on an
// active server (chosen round-robin) and runs its OnCreate. The node
// appears only if OnCreate succeeded.
func (c *Client) CreateAction(ctx context.Context, path, typ string, opts ActionOptions) (Node, error) {
	req := &wire.Request{Op: wire.OpCreateAction, Path: path, Name: typ, Class: opts.Class, Options: opts.Options}
	if opts.Interleave {
		req.Flags |= wire.FlagInterleave
	}
	r, err := c.metaCall(ctx, req)
	if err != nil {
		return Node{}, err
	}
	if len(r.Nodes) != 1 {
		return Node{}, fmt.Errorf("%w: create action %s: %d nodes in the answer", ErrInternal, path, len(r.Nodes))
	}
	return nodeOf(r.Nodes[0]), nil
}

// WriteFile creates a file of the given storage class ("" for ClassDRAM)
// holding data.
func (c *Client) WriteFile(ctx context.Context, path, class string, data []byte) error {
	w, err := c.Create(ctx, path, class)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// ReadFile returns a file's contents.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	r, err := c.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var b bytes.Buffer
	b.Grow(int(r.Size()))
	_, err = b.ReadFrom(r)
	return b.Bytes(), err
}

// WriteAction streams data into the action at path and returns its
// OnWrite's result.
func (c *Client) WriteAction(ctx context.Context, path string, data []byte) error {
	w, err := c.ActionWriter(ctx, path)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// ReadAction returns everything the action at path's OnRead writes.
func (c *Client) ReadAction(ctx context.Context, path string) ([]byte, error) {
	r, err := c.ActionReader(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// pipeline is a FIFO of requests in flight.
type pipeline struct {
	calls []*call
	lens  []int
}

func (p *pipeline) push(c *call, n int) {
	p.calls = append(p.calls, c)
	p.lens = append(p.lens, n)
}

func (p *pipeline) len() int { return len(p.calls) }

func (p *pipeline) pop(ctx context.Context) (*wire.Response, int, error) {
	c, n := p.calls[0], p.lens[0]
	p.calls, p.lens = p.calls[1:], p.lens[1:]
	r, err := c.wait(ctx)
	return r, n, err
}

// abandon forgets every request in flight.
func (p *pipeline) abandon() {
	for _, c := range p.calls {
		c.c.forget(c.id)
	}
	p.calls, p.lens = nil, nil
}

// errStream wraps the first error of a stream with its path.
func streamErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("glider: %s %s: %w", op, path, err)
	}
	return err
}
