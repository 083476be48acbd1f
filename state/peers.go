package state

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/galeproject/gale/state/internal/wire"
)

// peerSet sends replication messages to the other members: one
// connection per member, dialled and authenticated like a client's (the
// cluster's token), written by one goroutine per member from a bounded
// queue. Raft tolerates lost messages, so a full queue or a broken
// connection drops frames rather than blocking the replication loop.
type peerSet struct {
	n     *node
	token string

	mu     sync.Mutex
	conns  map[uint64]*peerConn
	closed bool
	wg     sync.WaitGroup

	faults *faultInjector
}

type peerConn struct {
	id   uint64
	addr string
	q    chan []byte
	quit chan struct{}
}

func newPeerSet(n *node, token string, fc *FaultConfig) *peerSet {
	ps := &peerSet{n: n, token: token, conns: map[uint64]*peerConn{}}
	if fc != nil {
		ps.faults = newFaultInjector(fc, n)
	}
	return ps
}

// send queues msgs for member to; the address comes from the membership
// state (read on the loop, which is the only caller).
func (ps *peerSet) send(to uint64, msgs []wire.RaftMsg) {
	addr := ""
	if ps.n.meta != nil {
		addr = ps.n.meta.Members[to]
	} else {
		addr = ps.n.book[to]
	}
	if addr == "" {
		return // not (or no longer) a member
	}
	frame := wire.AppendFrame(nil, wire.KindRaft, 0, wire.AppendRaftBatch(nil, msgs))
	pc := ps.conn(to, addr)
	if pc == nil {
		return
	}
	if ps.faults != nil {
		ps.faults.deliver(pc, frame)
		return
	}
	pc.enqueue(frame)
}

func (pc *peerConn) enqueue(frame []byte) {
	select {
	case pc.q <- frame:
	default: // full: drop, raft resends
	}
}

func (ps *peerSet) conn(id uint64, addr string) *peerConn {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil
	}
	pc := ps.conns[id]
	if pc != nil && pc.addr == addr {
		return pc
	}
	if pc != nil {
		close(pc.quit)
	}
	pc = &peerConn{id: id, addr: addr, q: make(chan []byte, 1024), quit: make(chan struct{})}
	ps.conns[id] = pc
	ps.wg.Add(1)
	go ps.writeLoop(pc)
	return pc
}

func (ps *peerSet) close() {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	ps.closed = true
	for _, pc := range ps.conns {
		close(pc.quit)
	}
	ps.mu.Unlock()
	if ps.faults != nil {
		ps.faults.close()
	}
	ps.wg.Wait()
}

// writeLoop keeps a connection to pc's member and writes its frames.
func (ps *peerSet) writeLoop(pc *peerConn) {
	defer ps.wg.Done()
	backoff := 20 * time.Millisecond
	for {
		nc, err := ps.dial(pc)
		if err != nil {
			// Drop what queued meanwhile: raft retransmits.
			for drained := false; !drained; {
				select {
				case <-pc.q:
				default:
					drained = true
				}
			}
			select {
			case <-pc.quit:
				return
			case <-time.After(backoff):
			}
			if backoff < 500*time.Millisecond {
				backoff *= 2
			}
			continue
		}
		backoff = 20 * time.Millisecond
		// A reader notices the connection closing (the peer answers
		// nothing on a peer connection but a GoAway).
		dead := make(chan struct{})
		go func() {
			_, _ = nc.Read(make([]byte, 512))
			close(dead)
		}()
		bw := bufio.NewWriterSize(nc, 256<<10)
		ok := true
		for ok {
			select {
			case <-pc.quit:
				_ = nc.Close()
				<-dead
				return
			case <-dead:
				ok = false
			case f := <-pc.q:
				_, err := bw.Write(f)
				for more := true; more && err == nil; {
					select {
					case f = <-pc.q:
						_, err = bw.Write(f)
					default:
						more = false
					}
				}
				if err == nil {
					err = bw.Flush()
				}
				ok = err == nil
			}
		}
		_ = nc.Close()
		<-dead
	}
}

func (ps *peerSet) dial(pc *peerConn) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", pc.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, wire.KindHello, 0, wire.AppendHello(nil, ps.token))); err != nil {
		_ = nc.Close()
		return nil, err
	}
	f, _, err := wire.ReadFrame(bufio.NewReader(nc), wire.HelloLimit, nil)
	if err != nil || f.Kind != wire.KindWelcome {
		_ = nc.Close()
		if err == nil {
			ps.n.s.logf("state: member %d: peer %s refused the connection: %s", ps.n.id, pc.addr, f.Payload)
			err = ErrAuth
		}
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// receiveRaft decodes a KindRaft frame from a peer connection and hands
// its messages to the loop. Malformed input ends the connection.
func (n *node) receiveRaft(payload []byte, quit <-chan struct{}) error {
	batch, err := wire.DecodeRaftBatch(payload)
	if err != nil {
		return err
	}
	ms := make([]inMsg, 0, len(batch))
	var from uint64
	for _, b := range batch {
		var m raftpb.Message
		if err := m.Unmarshal(b.Msg); err != nil {
			return wire.ErrMalformed
		}
		if m.To != n.id {
			continue
		}
		from = m.From
		ms = append(ms, inMsg{key: gkey{b.Group, b.Inc}, m: m})
	}
	if from != 0 {
		n.heard(from)
	}
	if len(ms) == 0 {
		return nil
	}
	select {
	case n.inbox <- ms:
	case <-quit:
	case <-n.done:
	}
	return nil
}

// FaultConfig makes a cluster member's outgoing replication traffic
// unreliable, for tests: each frame is dropped, duplicated or delayed at
// random (delays reorder frames), and frames to or from partitioned
// members are dropped. Runs with one Seed are repeatable in their choices.
type FaultConfig struct {
	Seed      uint64
	Drop      float64       // probability a frame is dropped
	Duplicate float64       // probability a frame is sent twice
	MaxDelay  time.Duration // frames are delayed uniformly up to this
	// Partitioned, if set, reports whether traffic between two member
	// ids is cut (asked on every frame, so a test can heal it).
	Partitioned func(from, to uint64) bool
}

type faultInjector struct {
	cfg  *FaultConfig
	n    *node
	mu   sync.Mutex
	rng  *rand.Rand
	wg   sync.WaitGroup
	quit chan struct{}
	once sync.Once
}

func newFaultInjector(cfg *FaultConfig, n *node) *faultInjector {
	return &faultInjector{cfg: cfg, n: n, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(len(n.addr)))), quit: make(chan struct{})}
}

func (f *faultInjector) deliver(pc *peerConn, frame []byte) {
	if f.cfg.Partitioned != nil && f.cfg.Partitioned(f.n.id, pc.id) {
		return
	}
	f.mu.Lock()
	drop := f.rng.Float64() < f.cfg.Drop
	dup := f.rng.Float64() < f.cfg.Duplicate
	var delay time.Duration
	if f.cfg.MaxDelay > 0 {
		delay = time.Duration(f.rng.Int64N(int64(f.cfg.MaxDelay)))
	}
	f.mu.Unlock()
	if drop {
		return
	}
	copies := 1
	if dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		if delay == 0 {
			pc.enqueue(frame)
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				pc.enqueue(frame)
			case <-f.quit:
			}
		}()
	}
}

func (f *faultInjector) close() {
	f.once.Do(func() { close(f.quit) })
	f.wg.Wait()
}
