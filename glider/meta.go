package glider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/glider/internal/wire"
)

// Roles a server joins the cluster with.
const (
	roleStorage = "storage"
	roleActive  = "active"
)

// Meta is the metadata server: it keeps every namespace's tree of
// directories, files and actions, the block map of files, the placement of
// actions, and the membership of storage and active servers. It moves no
// file data. Create it with NewMeta, run it with Serve, stop it with Close.
type Meta struct {
	cfg    MetaConfig
	ln     net.Listener
	secret []byte

	mu      sync.Mutex
	spaces  map[string]*dirNode
	members map[uint64]*member
	left    map[uint64]string // addresses of members that left, for error messages
	classBS map[string]int    // block size per storage class
	rr      map[string]int    // round-robin cursor per class
	handles map[uint64]*writeHandle
	nextID  uint64
	conns   map[*conn]struct{}
	closed  bool
	done    chan struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// node is a namespace node.
type node struct {
	kind   wire.NodeKind
	id     uint64
	name   string
	parent *node
	kids   map[string]*node // directories only
	class  string
	size   uint64
	blocks []wire.Block // files: Addr is filled in at lookup
	server uint64       // actions: the active server
	typ    string       // actions: type name
	flags  uint8        // actions: FlagInterleave
	mtime  int64        // creation (or replacement) time, Unix ns
}

type dirNode = node

// member is a storage or active server that joined.
type member struct {
	id        uint64
	role      string
	class     string
	addr      string
	capacity  uint64 // blocks or action slots
	used      uint64
	blockSize int
	c         *conn
}

// writeHandle is a file being written: invisible until committed.
type writeHandle struct {
	id     uint64
	ns     string
	path   string
	class  string
	owner  *conn
	blocks []wire.Block
	// replace lets the commit replace a file already at path.
	replace bool
}

// metaConn is the state of one accepted connection.
type metaConn struct {
	ns     string // client connections
	member uint64 // server connections, once joined
}

// NewMeta validates cfg and binds the listening socket (so Addr is known
// before Serve). It starts no goroutines.
func NewMeta(cfg MetaConfig) (*Meta, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	if cfg.ActionTimeout == 0 {
		cfg.ActionTimeout = time.Minute
	}
	ln, err := cfg.listen("metadata server")
	if err != nil {
		return nil, err
	}
	return &Meta{
		cfg: cfg, ln: ln, secret: []byte(cfg.Secret),
		spaces: map[string]*dirNode{}, members: map[uint64]*member{}, left: map[uint64]string{}, classBS: map[string]int{},
		rr: map[string]int{}, handles: map[uint64]*writeHandle{}, conns: map[*conn]struct{}{},
		done: make(chan struct{}), nextID: 1,
	}, nil
}

// Addr returns the address the metadata server listens on.
func (m *Meta) Addr() string { return m.ln.Addr().String() }

// Serve accepts connections until ctx is done or Close is called; then it
// closes the server and returns nil.
func (m *Meta) Serve(ctx context.Context) error {
	return serveLoop(ctx, m.ln, m.done, m.Close, "metadata server", m.accept)
}

// accept runs the handshake and the connection's reader on a goroutine
// owned by m.
func (m *Meta) accept(nc net.Conn) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = nc.Close()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		c, err := acceptConn(nc, m.cfg.MaxFrame, m.cfg.WriteTimeout, func(h wire.Hello) error {
			return checkHello(h, m.cfg.Secret)
		})
		if err != nil {
			return
		}
		st := &metaConn{ns: c.peer.Namespace}
		c.state = st
		c.handle = m.handle
		c.onClose = func(error) { m.connClosed(c) }
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.close(ErrShutdown)
			return
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		c.run()
	}()
}

// Close stops accepting, closes every connection (members leave, open
// writes are abandoned) and waits for the server's goroutines. It is
// idempotent.
func (m *Meta) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.done)
		conns := make([]*conn, 0, len(m.conns))
		for c := range m.conns {
			conns = append(conns, c)
		}
		m.mu.Unlock()
		err := m.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		for _, c := range conns {
			c.close(ErrShutdown)
		}
		m.closeErr = errors.Join(err, waitGroup(&m.wg, m.cfg.CloseTimeout, "metadata server "+m.Addr()))
	})
	return m.closeErr
}

// connClosed forgets a connection: a member leaves, a client's unfinished
// writes are abandoned.
func (m *Meta) connClosed(c *conn) {
	st := c.state.(*metaConn)
	var frees []func()
	m.mu.Lock()
	delete(m.conns, c)
	if mb := m.members[st.member]; mb != nil {
		delete(m.members, st.member)
		m.left[mb.id] = mb.role + " server " + mb.addr
	}
	for id, h := range m.handles {
		if h.owner == c {
			delete(m.handles, id)
			frees = append(frees, m.freeBlocksLocked(h.ns, h.blocks)...)
		}
	}
	m.mu.Unlock()
	m.runAll(frees)
}

// handle dispatches a request. It runs on the connection's reader: quick
// operations answer inline under m.mu; those that call other servers run on
// a goroutine owned by m.
func (m *Meta) handle(c *conn, id uint64, req *wire.Request) {
	st := c.state.(*metaConn)
	if c.peer.Role == wire.RoleServer {
		switch req.Op {
		case wire.OpJoin:
			m.join(c, st, id, req)
		default:
			c.replyErr(id, errf(wire.CodeBadRequest, "glider: metadata server: op %d is not for servers", req.Op))
		}
		return
	}
	switch req.Op {
	case wire.OpMkdir, wire.OpCreateFile, wire.OpAlloc, wire.OpCommit, wire.OpAbort, wire.OpLookup, wire.OpList, wire.OpRename:
		r, err := m.quick(c, st.ns, req)
		if err != nil {
			c.replyErr(id, err)
			return
		}
		_ = c.reply(id, r)
	case wire.OpDelete, wire.OpCreateAction, wire.OpClusterStats:
		m.goRun(func() {
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ActionTimeout)
			defer cancel()
			var r *wire.Response
			var err error
			switch req.Op {
			case wire.OpDelete:
				err = m.delete(ctx, st.ns, req.Path, req.Flags&wire.FlagRecursive != 0)
				r = okResponse
			case wire.OpCreateAction:
				r, err = m.createAction(ctx, st.ns, req)
			case wire.OpClusterStats:
				r, err = m.clusterStats(ctx, st.ns)
			}
			if err != nil {
				c.replyErr(id, err)
				return
			}
			_ = c.reply(id, r)
		})
	default:
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: metadata server: op %d is not a metadata operation", req.Op))
	}
}

// goRun runs f on a goroutine owned by m, unless m is closing.
func (m *Meta) goRun(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Go(f)
}

func (m *Meta) runAll(fs []func()) {
	for _, f := range fs {
		m.goRun(f)
	}
}

// runAllWait runs fs concurrently on goroutines owned by m and waits for
// them (those m refuses because it is closing are skipped).
func (m *Meta) runAllWait(fs []func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		m.mu.Lock()
		if m.closed {
			wg.Done()
		} else {
			m.wg.Go(func() { defer wg.Done(); f() })
		}
		m.mu.Unlock()
	}
	wg.Wait()
}

func (m *Meta) join(c *conn, st *metaConn, id uint64, req *wire.Request) {
	if req.Name != roleStorage && req.Name != roleActive {
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: join: unknown role %q", req.Name))
		return
	}
	if !nameRE.MatchString(req.Class) || req.Addr == "" || req.A == 0 {
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: join: a %s server needs a class, an address and a capacity", req.Name))
		return
	}
	m.mu.Lock()
	if st.member != 0 {
		m.mu.Unlock()
		c.replyErr(id, errf(wire.CodeBadRequest, "glider: join: this connection already joined"))
		return
	}
	if req.Name == roleStorage {
		if bs, ok := m.classBS[req.Class]; ok && bs != int(req.B) {
			m.mu.Unlock()
			c.replyErr(id, errf(wire.CodeBadRequest, "glider: join: storage class %q uses %d-byte blocks, server %s offers %d; configure the same BlockSize", req.Class, bs, req.Addr, req.B))
			return
		}
		m.classBS[req.Class] = int(req.B)
	}
	for _, o := range m.members {
		if o.class == req.Class && o.role != req.Name {
			m.mu.Unlock()
			c.replyErr(id, errf(wire.CodeBadRequest, "glider: join: class %q is served by %s servers, not %s servers", req.Class, o.role, req.Name))
			return
		}
	}
	mb := &member{id: m.nextID, role: req.Name, class: req.Class, addr: req.Addr, capacity: req.A, blockSize: int(req.B), c: c}
	m.nextID++
	m.members[mb.id] = mb
	st.member = mb.id
	m.mu.Unlock()
	_ = c.reply(id, &wire.Response{A: mb.id})
}

// space returns the root of namespace ns, creating it on first use.
func (m *Meta) space(ns string) *dirNode {
	r := m.spaces[ns]
	if r == nil {
		r = &node{kind: wire.NodeDir, kids: map[string]*node{}, id: m.nextID, mtime: now()}
		m.nextID++
		m.spaces[ns] = r
	}
	return r
}

// splitPath checks a path and returns its components.
func splitPath(p string) ([]string, error) {
	if p == "/" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return nil, errf(wire.CodeBadRequest, "glider: path %q must be absolute, like /dir/name, without a trailing slash", p)
	}
	parts := strings.Split(p[1:], "/")
	for _, s := range parts {
		if s == "" || s == "." || s == ".." || strings.ContainsRune(s, 0) {
			return nil, errf(wire.CodeBadRequest, "glider: path %q has an empty, '.', '..' or NUL component", p)
		}
	}
	return parts, nil
}

// now is the modification time of a node created or replaced now.
func now() int64 { return time.Now().UnixNano() }

// walk returns the node at p, or an error naming the missing part.
func walk(root *node, p string) (*node, error) {
	parts, err := splitPath(p)
	if err != nil {
		return nil, err
	}
	n := root
	for i, s := range parts {
		if n.kind != wire.NodeDir {
			return nil, errf(wire.CodeNotDir, "glider: %s: /%s is not a directory", p, strings.Join(parts[:i], "/"))
		}
		k := n.kids[s]
		if k == nil {
			return nil, errf(wire.CodeNotFound, "glider: %s: not found", p)
		}
		n = k
	}
	return n, nil
}

// parentOf returns the parent directory of p and p's last component.
func parentOf(root *node, p string) (*node, string, error) {
	parts, err := splitPath(p)
	if err != nil {
		return nil, "", err
	}
	if len(parts) == 0 {
		return nil, "", errf(wire.CodeExists, "glider: / always exists")
	}
	dir := "/" + strings.Join(parts[:len(parts)-1], "/")
	d, err := walk(root, dir)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, "", errf(wire.CodeNotFound, "glider: %s: parent directory %s does not exist (create it with Mkdir)", p, dir)
		}
		return nil, "", err
	}
	if d.kind != wire.NodeDir {
		return nil, "", errf(wire.CodeNotDir, "glider: %s: %s is not a directory", p, dir)
	}
	return d, parts[len(parts)-1], nil
}

func pathOf(n *node) string {
	if n.parent == nil {
		return "/"
	}
	var parts []string
	for ; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return "/" + strings.Join(parts, "/")
}

// describe returns n as a wire node; with blocks, it fills in the storage
// servers' addresses or reports lost data.
func (m *Meta) describe(n *node, withBlocks bool) (wire.Node, error) {
	w := wire.Node{Kind: n.kind, ID: n.id, Size: n.size, ModTime: uint64(n.mtime), Path: pathOf(n), Class: n.class, Type: n.typ, Flags: n.flags}
	switch n.kind {
	case wire.NodeFile:
		if withBlocks {
			w.Blocks = make([]wire.Block, len(n.blocks))
			for i, b := range n.blocks {
				mb := m.members[b.Server]
				if mb == nil {
					return w, errf(wire.CodeDataLost, "glider: %s: block %d was on %s, which left the cluster; delete and recreate the file", w.Path, i, m.left[b.Server])
				}
				b.Addr = mb.addr
				w.Blocks[i] = b
			}
		}
	case wire.NodeAction:
		mb := m.members[n.server]
		if mb == nil {
			if withBlocks {
				return w, errf(wire.CodeServerGone, "glider: %s: %s, which hosted this %s action, left the cluster; delete and recreate the action", w.Path, m.left[n.server], n.typ)
			}
		} else {
			w.Addr = mb.addr
		}
	}
	return w, nil
}

// quick serves the operations that only touch metadata.
func (m *Meta) quick(c *conn, ns string, req *wire.Request) (*wire.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	root := m.space(ns)
	switch req.Op {
	case wire.OpMkdir:
		return okResponse, m.mkdir(root, req.Path, req.Flags&wire.FlagParents != 0)
	case wire.OpCreateFile:
		class := req.Class
		if class == "" {
			class = ClassDRAM
		}
		bs, known := m.classBS[class]
		if !known {
			return nil, errf(wire.CodeBadRequest, "glider: create %s: no storage server serves class %q (start one with that class)", req.Path, class)
		}
		d, name, err := parentOf(root, req.Path)
		if err != nil {
			return nil, err
		}
		replace := req.Flags&wire.FlagReplace != 0
		if k := d.kids[name]; k != nil && (!replace || k.kind != wire.NodeFile) {
			if replace {
				return nil, errf(wire.CodeWrongKind, "glider: create %s: a %v is there; only a file can be replaced", req.Path, NodeKind(k.kind))
			}
			return nil, errf(wire.CodeExists, "glider: create %s: already exists (delete it first)", req.Path)
		}
		h := &writeHandle{id: m.nextID, ns: ns, path: req.Path, class: class, owner: c, replace: replace}
		m.nextID++
		m.handles[h.id] = h
		return &wire.Response{A: h.id, B: uint64(bs)}, nil
	case wire.OpAlloc:
		h := m.handles[req.A]
		if h == nil || h.owner != c {
			return nil, errf(wire.CodeBadRequest, "glider: allocate: unknown write handle %d", req.A)
		}
		n := req.B
		if n == 0 || n > 1024 {
			return nil, errf(wire.CodeBadRequest, "glider: allocate: count %d out of range 1..1024", n)
		}
		var out []wire.Block
		for i := uint64(0); i < n; i++ {
			mb := m.pick(h.class)
			if mb == nil {
				// Return what was found; the client asks again and gets
				// the error once nothing was allocated.
				if len(out) == 0 {
					return nil, errf(wire.CodeNoSpace, "glider: %s: no storage server of class %q has a free block (add storage servers or delete files)", h.path, h.class)
				}
				break
			}
			mb.used++
			b := wire.Block{ID: m.nextID, Server: mb.id, Addr: mb.addr}
			m.nextID++
			h.blocks = append(h.blocks, b)
			out = append(out, b)
		}
		return &wire.Response{Blocks: out}, nil
	case wire.OpCommit:
		h := m.handles[req.A]
		if h == nil || h.owner != c {
			return nil, errf(wire.CodeBadRequest, "glider: commit: unknown write handle %d", req.A)
		}
		if len(req.IDs) > len(h.blocks) {
			return nil, errf(wire.CodeBadRequest, "glider: commit %s: %d block lengths for %d blocks", h.path, len(req.IDs), len(h.blocks))
		}
		var total uint64
		for _, l := range req.IDs {
			total += l
		}
		if total != req.B {
			return nil, errf(wire.CodeBadRequest, "glider: commit %s: block lengths add up to %d, not %d", h.path, total, req.B)
		}
		delete(m.handles, h.id)
		used := h.blocks[:len(req.IDs)]
		unused := h.blocks[len(req.IDs):]
		frees := m.freeBlocksLocked(ns, unused)
		for _, b := range used {
			if m.members[b.Server] == nil {
				frees = append(frees, m.freeBlocksLocked(ns, used)...)
				m.runAllLocked(frees)
				return nil, errf(wire.CodeDataLost, "glider: commit %s: storage server %s left while the file was written; write it again", h.path, b.Addr)
			}
		}
		d, name, err := parentOf(root, h.path)
		if err == nil && d.kids[name] != nil {
			if old := d.kids[name]; h.replace && old.kind == wire.NodeFile {
				frees = append(frees, m.freeBlocksLocked(ns, old.blocks)...)
			} else {
				err = errf(wire.CodeExists, "glider: commit %s: another writer created it first", h.path)
			}
		}
		if err != nil {
			frees = append(frees, m.freeBlocksLocked(ns, used)...)
			m.runAllLocked(frees)
			return nil, err
		}
		n := &node{kind: wire.NodeFile, id: h.id, name: name, parent: d, class: h.class, size: req.B, mtime: now()}
		n.blocks = make([]wire.Block, len(used))
		for i, b := range used {
			b.Len = req.IDs[i]
			b.Addr = ""
			n.blocks[i] = b
		}
		d.kids[name] = n
		m.runAllLocked(frees)
		w, _ := m.describe(n, false)
		return &wire.Response{Nodes: []wire.Node{w}}, nil
	case wire.OpAbort:
		h := m.handles[req.A]
		if h == nil || h.owner != c {
			return okResponse, nil
		}
		delete(m.handles, h.id)
		m.runAllLocked(m.freeBlocksLocked(ns, h.blocks))
		return okResponse, nil
	case wire.OpRename:
		return okResponse, m.renameLocked(ns, root, req.Path, req.Name)
	case wire.OpLookup:
		n, err := walk(root, req.Path)
		if err != nil {
			return nil, err
		}
		w, err := m.describe(n, true)
		if err != nil {
			return nil, err
		}
		return &wire.Response{Nodes: []wire.Node{w}}, nil
	case wire.OpList:
		n, err := walk(root, req.Path)
		if err != nil {
			return nil, err
		}
		if n.kind != wire.NodeDir {
			return nil, errf(wire.CodeNotDir, "glider: list %s: not a directory", req.Path)
		}
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		r := &wire.Response{Nodes: make([]wire.Node, 0, len(names))}
		for _, k := range names {
			w, _ := m.describe(n.kids[k], false)
			r.Nodes = append(r.Nodes, w)
		}
		return r, nil
	}
	return nil, errf(wire.CodeInternal, "glider: op %d", req.Op)
}

// renameLocked moves the file at from to to in one step; a file already
// at to is replaced (its blocks freed). Directories and actions are not
// renamed.
func (m *Meta) renameLocked(ns string, root *node, from, to string) error {
	n, err := walk(root, from)
	if err != nil {
		return err
	}
	if n.kind != wire.NodeFile {
		return errf(wire.CodeWrongKind, "glider: rename %s: it is a %v; only files are renamed", from, NodeKind(n.kind))
	}
	d, name, err := parentOf(root, to)
	if err != nil {
		return err
	}
	var frees []func()
	if old := d.kids[name]; old != nil {
		if old == n {
			return nil
		}
		if old.kind != wire.NodeFile {
			return errf(wire.CodeWrongKind, "glider: rename %s to %s: a %v is there; only a file can be replaced", from, to, NodeKind(old.kind))
		}
		frees = m.freeBlocksLocked(ns, old.blocks)
	}
	delete(n.parent.kids, n.name)
	n.parent, n.name = d, name
	d.kids[name] = n
	m.runAllLocked(frees)
	return nil
}

func (m *Meta) runAllLocked(fs []func()) {
	if m.closed {
		return
	}
	for _, f := range fs {
		m.wg.Go(f)
	}
}

func (m *Meta) mkdir(root *node, p string, parents bool) error {
	parts, err := splitPath(p)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		if parents {
			return nil
		}
		return errf(wire.CodeExists, "glider: mkdir /: already exists")
	}
	d := root
	for i, s := range parts {
		k := d.kids[s]
		last := i == len(parts)-1
		switch {
		case k == nil && (last || parents):
			k = &node{kind: wire.NodeDir, id: m.nextID, name: s, parent: d, kids: map[string]*node{}, mtime: now()}
			m.nextID++
			d.kids[s] = k
		case k == nil:
			return errf(wire.CodeNotFound, "glider: mkdir %s: parent /%s does not exist (use MkdirAll)", p, strings.Join(parts[:i+1], "/"))
		case k.kind != wire.NodeDir:
			return errf(wire.CodeNotDir, "glider: mkdir %s: /%s is not a directory", p, strings.Join(parts[:i+1], "/"))
		case last && !parents:
			return errf(wire.CodeExists, "glider: mkdir %s: already exists", p)
		}
		d = k
	}
	return nil
}

// pick returns the next member of class with room, round-robin.
func (m *Meta) pick(class string) *member {
	var ms []*member
	for _, mb := range m.members {
		if mb.class == class {
			ms = append(ms, mb)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	start := m.rr[class]
	for i := range ms {
		mb := ms[(start+i)%len(ms)]
		if mb.used < mb.capacity {
			m.rr[class] = (start + i + 1) % len(ms)
			return mb
		}
	}
	return nil
}

// freeBlocksLocked releases blocks in the accounting and returns the
// requests that free them on their servers (run them without m.mu).
func (m *Meta) freeBlocksLocked(ns string, blocks []wire.Block) []func() {
	by := map[uint64][]uint64{}
	for _, b := range blocks {
		by[b.Server] = append(by[b.Server], b.ID)
	}
	var fs []func()
	for sid, ids := range by {
		mb := m.members[sid]
		if mb == nil {
			continue
		}
		mb.used -= uint64(len(ids))
		c := mb.c
		fs = append(fs, func() {
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ActionTimeout)
			defer cancel()
			_, _ = c.call(ctx, &wire.Request{Op: wire.OpFreeBlocks, Namespace: ns, IDs: ids})
		})
	}
	return fs
}

// delete removes a node (a subtree with recursive), frees its blocks and
// deletes its actions (running their OnDelete).
func (m *Meta) delete(ctx context.Context, ns, p string, recursive bool) error {
	m.mu.Lock()
	root := m.space(ns)
	n, err := walk(root, p)
	if err == nil && n.parent == nil {
		err = errf(wire.CodeBadRequest, "glider: delete /: the root cannot be deleted")
	}
	if err == nil && n.kind == wire.NodeDir && len(n.kids) > 0 && !recursive {
		err = errf(wire.CodeNotEmpty, "glider: delete %s: directory has %d children (delete them, or delete recursively)", p, len(n.kids))
	}
	if err != nil {
		m.mu.Unlock()
		return err
	}
	delete(n.parent.kids, n.name)
	var blocks []wire.Block
	type act struct {
		c    *conn
		id   uint64
		path string
	}
	var acts []act
	var visit func(*node)
	visit = func(x *node) {
		switch x.kind {
		case wire.NodeFile:
			blocks = append(blocks, x.blocks...)
		case wire.NodeAction:
			if mb := m.members[x.server]; mb != nil {
				mb.used--
				acts = append(acts, act{mb.c, x.id, pathOf(x)})
			}
		case wire.NodeDir:
			for _, k := range x.kids {
				visit(k)
			}
		}
	}
	visit(n)
	frees := m.freeBlocksLocked(ns, blocks)
	m.mu.Unlock()
	// A delete answers only once its blocks are free on their servers, so
	// the space (and ClusterStats) reflects it as soon as Delete returns.
	m.runAllWait(frees)
	var errs []error
	for _, a := range acts {
		if _, err := a.c.call(ctx, &wire.Request{Op: wire.OpActionDelete, Namespace: ns, A: a.id}); err != nil {
			errs = append(errs, fmt.Errorf("glider: delete %s: the action was removed but its OnDelete failed: %w", a.path, err))
		}
	}
	return errors.Join(errs...)
}

// createAction places an action on an active server (round-robin), runs
// its OnCreate there, and makes it visible only if that succeeded.
func (m *Meta) createAction(ctx context.Context, ns string, req *wire.Request) (*wire.Response, error) {
	class := req.Class
	if class == "" {
		class = ClassActive
	}
	m.mu.Lock()
	root := m.space(ns)
	d, name, err := parentOf(root, req.Path)
	if err == nil && d.kids[name] != nil {
		err = errf(wire.CodeExists, "glider: create action %s: already exists (delete it first)", req.Path)
	}
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	mb := m.pick(class)
	if mb == nil {
		m.mu.Unlock()
		return nil, errf(wire.CodeNoSpace, "glider: create action %s: no active server of class %q has a free slot (add active servers or delete actions)", req.Path, class)
	}
	mb.used++
	id := m.nextID
	m.nextID++
	c := mb.c
	m.mu.Unlock()

	_, err = c.call(ctx, &wire.Request{Op: wire.OpActionNew, Namespace: ns, A: id, Path: req.Path, Name: req.Name, Flags: req.Flags & wire.FlagInterleave, Options: req.Options})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.members[mb.id] == mb {
			mb.used--
		}
		return nil, err
	}
	d, name, err = parentOf(root, req.Path)
	if err == nil && d.kids[name] != nil {
		err = errf(wire.CodeExists, "glider: create action %s: another client created it first", req.Path)
	}
	if err == nil && m.members[mb.id] != mb {
		err = errf(wire.CodeServerGone, "glider: create action %s: active server %s left", req.Path, mb.addr)
	}
	if err != nil {
		if m.members[mb.id] == mb {
			mb.used--
			m.runAllLocked([]func(){func() {
				ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ActionTimeout)
				defer cancel()
				_, _ = c.call(ctx, &wire.Request{Op: wire.OpActionDelete, Namespace: ns, A: id})
			}})
		}
		return nil, err
	}
	n := &node{kind: wire.NodeAction, id: id, name: name, parent: d, class: class, server: mb.id, typ: req.Name, flags: req.Flags & wire.FlagInterleave, mtime: now()}
	d.kids[name] = n
	w, _ := m.describe(n, false)
	return &wire.Response{Nodes: []wire.Node{w}}, nil
}

// clusterStats sums the accounting of every member, restricted to
// namespace ns.
func (m *Meta) clusterStats(ctx context.Context, ns string) (*wire.Response, error) {
	m.mu.Lock()
	ms := make([]*member, 0, len(m.members))
	for _, mb := range m.members {
		ms = append(ms, mb)
	}
	m.mu.Unlock()
	total := &wire.Stats{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, mb := range ms {
		if mb.role == roleStorage {
			total.StorageServers++
		} else {
			total.ActiveServers++
		}
		wg.Go(func() {
			r, err := mb.c.call(ctx, &wire.Request{Op: wire.OpServerStat, Namespace: ns})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("glider: stats of %s server %s: %w", mb.role, mb.addr, err))
				return
			}
			if s := r.Stats; s != nil {
				total.BytesStored += s.BytesStored
				total.Blocks += s.Blocks
				total.ActionBytes += s.ActionBytes
				total.Actions += s.Actions
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &wire.Response{Stats: total}, nil
}

// checkHello authenticates a peer: servers by the cluster secret, clients
// by their namespace's token.
func checkHello(h wire.Hello, secret string) error {
	switch h.Role {
	case wire.RoleServer:
		if wire.CheckToken(h.Token, []byte(secret)) != nil {
			return fmt.Errorf("%w: wrong cluster secret", ErrDenied)
		}
	case wire.RoleClient:
		if !nameRE.MatchString(h.Namespace) {
			return fmt.Errorf("%w: invalid namespace %q", ErrDenied, h.Namespace)
		}
		if wire.CheckToken(h.Token, []byte(NamespaceToken(secret, h.Namespace))) != nil {
			return fmt.Errorf("%w: wrong token for namespace %q", ErrDenied, h.Namespace)
		}
	}
	return nil
}

// serveLoop accepts connections on ln and hands them to accept until done
// is closed or ctx ends (then it calls closeFn).
func serveLoop(ctx context.Context, ln net.Listener, done chan struct{}, closeFn func() error, what string, accept func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { _ = closeFn() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			_ = closeFn()
			return fmt.Errorf("glider: %s: accept on %s: %w", what, ln.Addr(), err)
		}
		accept(nc)
	}
}

// waitGroup waits for wg up to timeout and reports goroutines that did not
// stop.
func waitGroup(wg *sync.WaitGroup, timeout time.Duration, what string) error {
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("glider: %s: goroutines still running after %v", what, timeout)
	}
}
