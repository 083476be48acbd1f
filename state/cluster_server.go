package state

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/galeproject/gale/state/internal/wal"
	"github.com/galeproject/gale/state/internal/wire"
	"github.com/galeproject/gale/state/ring"
)

// ErrRemoved means a cluster member was removed from its cluster (it was
// unreachable for longer than FailTimeout, or left); its replicas moved to
// other members and its data directory is stale.
var ErrRemoved = errors.New("state: removed from the cluster")

// startCluster binds the socket and sets up the replication engine: from
// the data directory if it holds a member, else by joining a running
// cluster (ClusterConfig.Join) or starting a new one.
func (s *Server) startCluster() error {
	cc := *s.cfg.Cluster
	cc.fill()
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("state: listen on %s: %w", s.cfg.Addr, err)
		}
	}
	s.ln = ln
	addr := cc.Advertise
	if addr == "" {
		addr = ln.Addr().String()
	}
	n := newNode(s, cc, addr)
	n.sync = s.cfg.SyncWrites
	fail := func(err error) error {
		_ = ln.Close()
		if n.log != nil {
			_ = n.log.Close()
		}
		return err
	}
	if s.cfg.DataDir != "" {
		l, err := wal.Open(s.cfg.DataDir, wal.Options{Hook: s.cfg.walHook})
		if err != nil {
			return fail(dataDirError(s.cfg.DataDir, err))
		}
		n.log = l
	}
	loaded, err := n.load()
	if err != nil {
		var ce *wal.CorruptError
		if errors.As(err, &ce) {
			err = dataDirError(s.cfg.DataDir, err)
		}
		return fail(err)
	}
	n.peers = newPeerSet(n, s.cfg.Token, cc.Faults)
	switch {
	case loaded:
		if n.meta != nil && (n.meta.Removed[n.id] || n.removedByPeers()) {
			return fail(fmt.Errorf("%w: member %d (%s) was removed while it was away; its data in %s is stale: "+
				"start it with an empty data directory and --join to come back as a new member", ErrRemoved, n.id, addr, s.cfg.DataDir))
		}
	case len(cc.Join) == 0:
		err = n.bootstrap()
	default:
		var id uint64
		var book map[uint64]string
		id, book, err = joinCluster(cc.Join, s.cfg.Token, addr, 30*time.Second)
		if err == nil {
			err = n.joined(id, book)
		}
	}
	if err == nil && n.walErr != nil {
		err = n.walErr
	}
	if err != nil {
		return fail(err)
	}
	s.node = n
	return nil
}

// removedByPeers asks the other members this one knows for their view:
// one that lists this member's id as removed settles it (ids are never
// reused). No answer (the whole cluster restarting) is not removal.
func (n *node) removedByPeers() bool {
	for id, a := range n.meta.Members {
		if id == n.id {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		body, code, err := adminCall(ctx, a, n.s.cfg.Token, "View")
		cancel()
		var v View
		if err != nil || code != wire.CodeOK || gobLoad(body, &v) != nil {
			continue
		}
		if contains(v.Removed, n.id) {
			return true
		}
	}
	return false
}

// owner returns the address of the member that holds the ephemeral or
// coordination object (typ, key) in this member's view.
func (n *node) owner(typ, key string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.addrRing == nil {
		return n.addr
	}
	return n.addrRing.Locate(ring.ObjectKey(typ, key))
}

// handle serves a replicated or administrative call from a client
// connection; the reply comes from the replication loop.
func (n *node) handle(c *serverConn, id uint64, call *wire.Call) {
	reply := func(body []byte, st *status) { c.reply(id, body, st) }
	if call.Type == clusterType {
		n.admin(call, reply)
		return
	}
	if f, ok := builtins[call.Type]; ok && f.coordination {
		reply(nil, persistRefused(call.Type))
		return
	}
	if st := n.s.persistable(call.Type); st != nil {
		reply(nil, st)
		return
	}
	v, _ := n.currentView()
	if v == nil {
		reply(nil, fail(wire.CodeNotLeader, ""))
		return
	}
	n.submit(&proposal{part: partitionOf(call.Type, call.Key, v.Partitions), call: *call, done: reply})
}

func (n *node) admin(call *wire.Call, reply func([]byte, *status)) {
	switch call.Method {
	case "View":
		if _, b := n.currentView(); b != nil {
			reply(b, nil)
			return
		}
		reply(nil, fail(wire.CodeNotLeader, ""))
	case "Join":
		if len(call.Args) != 1 || len(call.Args[0]) == 0 {
			reply(nil, fail(wire.CodeBadArgs, "Join takes the joining server's address"))
			return
		}
		n.join(string(call.Args[0]), reply)
	case "Leave":
		var id uint64
		if len(call.Args) == 1 {
			id, _ = binary.Uvarint(call.Args[0])
		}
		n.leave(id, reply)
	default:
		reply(nil, unknownMethod(clusterType, call.Method, "View", "Join", "Leave"))
	}
}

// adminCall makes one cluster administration call on the server at addr
// over a fresh connection.
func adminCall(ctx context.Context, addr, token, method string, args ...[]byte) ([]byte, uint8, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	frame := wire.AppendFrame(nil, wire.KindHello, 0, wire.AppendHello(nil, token))
	frame, off := wire.StartFrame(frame, wire.KindCall, 1)
	frame = wire.AppendCall(frame, &wire.Call{Type: clusterType, Key: "", Method: method, Flags: wire.FlagPersistent, Args: args})
	wire.FinishFrame(frame, off)
	if _, err := nc.Write(frame); err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
	}
	br := bufio.NewReader(nc)
	for {
		f, _, err := wire.ReadFrame(br, 64<<20, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
		}
		switch f.Kind {
		case wire.KindWelcome:
			continue
		case wire.KindGoAway:
			return nil, 0, fmt.Errorf("%w by %s: %s", ErrAuth, addr, f.Payload)
		case wire.KindReply:
			r, err := wire.DecodeReply(f.Payload)
			if err != nil {
				return nil, 0, err
			}
			return r.Body, r.Code, nil
		}
	}
}

// joinCluster asks the cluster at addrs to admit the server at self,
// following leader hints, until it is admitted or timeout passes.
func joinCluster(addrs []string, token, self string, timeout time.Duration) (uint64, map[uint64]string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	queue := append([]string(nil), addrs...)
	for time.Now().Before(deadline) {
		if len(queue) == 0 {
			queue = append(queue, addrs...)
			time.Sleep(100 * time.Millisecond)
		}
		addr := queue[0]
		queue = queue[1:]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		body, code, err := adminCall(ctx, addr, token, "Join", []byte(self))
		cancel()
		switch {
		case errors.Is(err, ErrAuth):
			return 0, nil, fmt.Errorf("state: joining the cluster through %s: %w (the cluster has another token)", addr, err)
		case err != nil:
			last = err
		case code == wire.CodeOK:
			id, n := binary.Uvarint(body)
			var book map[uint64]string
			if n <= 0 || id == 0 || gobLoad(body[n:], &book) != nil {
				return 0, nil, fmt.Errorf("state: joining through %s: malformed answer", addr)
			}
			return id, book, nil
		case code == wire.CodeNotLeader:
			if h := strings.TrimSpace(string(body)); h != "" {
				queue = append([]string{h}, queue...)
			}
			last = fmt.Errorf("state: %s is not the membership leader", addr)
		default:
			last = fmt.Errorf("state: joining through %s: %s", addr, body)
			time.Sleep(200 * time.Millisecond)
		}
	}
	return 0, nil, fmt.Errorf("state: could not join the cluster through %s within %v: %w", strings.Join(addrs, ", "), timeout, last)
}
