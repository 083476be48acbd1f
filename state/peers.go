package state

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/galeproject/gale/state/internal/wire"
)

// peerSet sends replication messages to the other members: one
// connection per member, dialled and authenticated like a client's (the
// cluster's token) by one goroutine per member. The replication loop
// writes a frame straight to the connection when nothing is queued before
// it (one goroutine hand-off less on every replication round trip, the
// latency of a replicated call); otherwise, or while the connection is
// being dialled, the frame goes to a bounded queue that the member's
// goroutine writes. Raft tolerates lost messages, so a full queue, a
// write that would block or a broken connection drops frames rather than
// blocking the loop.
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

	// mu guards the connection's writers: busy is set by whoever writes
	// (the loop directly, or writeLoop for queued frames), so frames are
	// never interleaved and a direct write never overtakes queued ones.
	mu     sync.Mutex
	nc     net.Conn // the live connection, nil while dialling
	busy   bool
	broken bool // a direct write failed: writeLoop redials
	kick   chan struct{}
	// down is when the connection to the member broke, if a redial since
	// was refused (no process listens at its address) and none succeeded;
	// zero otherwise, and zero if no connection was ever made (a member
	// that has not started yet is not a crashed one). Redials that time
	// out are no evidence either way (a partition, a paused process):
	// FailTimeout handles those.
	down    time.Time
	wasUp   bool
	refused bool
}

// downSince returns when member id's process was seen gone (see
// peerConn.down), or the zero time.
func (ps *peerSet) downSince(id uint64) time.Time {
	ps.mu.Lock()
	pc := ps.conns[id]
	ps.mu.Unlock()
	if pc == nil {
		return time.Time{}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if !pc.wasUp || !pc.refused {
		return time.Time{}
	}
	return pc.down
}

// directWriteTimeout bounds a direct write of the loop: loopback and LAN
// writes into a socket with room return at once; a peer that stopped
// reading makes the write time out, and the connection is redialled.
const directWriteTimeout = 200 * time.Millisecond

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
	pc.mu.Lock()
	if pc.nc != nil && !pc.busy && !pc.broken && len(pc.q) == 0 {
		nc := pc.nc
		pc.busy = true
		pc.mu.Unlock()
		_ = nc.SetWriteDeadline(time.Now().Add(directWriteTimeout))
		_, err := nc.Write(frame)
		pc.mu.Lock()
		pc.busy = false
		if err != nil {
			// Maybe a partial frame: the connection is unusable.
			pc.broken = true
			_ = nc.Close()
		}
		queued := len(pc.q) > 0 // by another goroutine (fault injection)
		pc.mu.Unlock()
		if queued {
			select {
			case pc.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	pc.mu.Unlock()
	select {
	case pc.q <- frame:
	default: // full: drop, raft resends
	}
	select {
	case pc.kick <- struct{}{}:
	default:
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
	pc = &peerConn{id: id, addr: addr, q: make(chan []byte, 1024), quit: make(chan struct{}), kick: make(chan struct{}, 1)}
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

// writeLoop keeps a connection to pc's member and writes the frames
// queued for it.
func (ps *peerSet) writeLoop(pc *peerConn) {
	defer ps.wg.Done()
	backoff := 20 * time.Millisecond
	for {
		nc, err := ps.dial(pc)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				pc.mu.Lock()
				pc.refused = true
				pc.mu.Unlock()
			}
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
		pc.mu.Lock()
		pc.nc, pc.broken, pc.wasUp, pc.refused = nc, false, true, false
		pc.mu.Unlock()
		ok := true
		for ok {
			select {
			case <-pc.quit:
				ps.detach(pc, nc)
				<-dead
				return
			case <-dead:
				ok = false
			case <-pc.kick:
				ok = ps.writeQueued(pc, nc)
			}
		}
		ps.detach(pc, nc)
		<-dead
	}
}

// detach takes nc out of use (waiting for a direct write in progress)
// and closes it.
func (ps *peerSet) detach(pc *peerConn, nc net.Conn) {
	pc.mu.Lock()
	pc.nc = nil
	pc.down, pc.refused = time.Now(), false
	pc.mu.Unlock()
	_ = nc.Close()
}

// writeQueued writes every queued frame; false means the connection broke.
func (ps *peerSet) writeQueued(pc *peerConn, nc net.Conn) bool {
	for {
		pc.mu.Lock()
		if pc.broken {
			pc.mu.Unlock()
			return false
		}
		if pc.busy || len(pc.q) == 0 {
			// A direct write is in progress; it found frames queued and
			// kicked, or it finished them: look again after a kick.
			pc.mu.Unlock()
			return true
		}
		pc.busy = true
		pc.mu.Unlock()
		var buf []byte
		for more := true; more && len(buf) < 256<<10; {
			select {
			case f := <-pc.q:
				buf = append(buf, f...)
			default:
				more = false
			}
		}
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := nc.Write(buf)
		pc.mu.Lock()
		pc.busy = false
		if err != nil {
			pc.broken = true
		}
		pc.mu.Unlock()
		if err != nil {
			return false
		}
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
