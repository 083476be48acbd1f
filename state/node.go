package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"sort"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/galeproject/gale/state/internal/wal"
	"github.com/galeproject/gale/state/internal/wire"
	"github.com/galeproject/gale/state/ring"
)

// node is a server's replication engine: every replica group it belongs
// to (the membership group and some partitions' groups), each an etcd raft
// RawNode over a MemoryStorage backed by the server's write-ahead log. One
// goroutine (run) owns all of it: it ticks the groups, steps messages from
// peers, proposes calls, persists and sends what the groups produce, and
// applies committed entries. Other goroutines talk to it through channels
// and read only the published view (under mu).
type node struct {
	s    *Server
	cfg  ClusterConfig
	id   uint64
	addr string
	log  *wal.Log // nil without a DataDir
	sync bool

	// Owned by run.
	groups     map[gkey]*group
	meta       *metaState
	nextPID    uint64
	nextRead   uint64
	readGroups []*group // groups with newReads
	started    time.Time
	// held are commit-only appends to followers, sent with the next
	// tick unless a later message to the same follower and group
	// carries the commit index first (see processReady).
	held map[uint64]map[gkey]wire.RaftMsg
	// pendingSeeds wait for leases to run out (applyMigrate).
	pendingSeeds []pendingSeed
	// active lists the groups something happened to since the last
	// processReady (a message, a proposal, a tick): only they can have
	// a Ready, so a round of the loop does not look at every group.
	active       []*group
	spare        []*group
	lastCampaign time.Time
	destroyed    map[uint64]uint64 // partition+1 -> highest incarnation dropped here
	lastFreeze   map[gkey]time.Time
	lastMigrate  map[int]time.Time
	lastRemove   map[uint64]time.Time
	leaderSince  time.Time
	joins        map[uint64]func(body []byte, st *status) // member id -> joiner's reply
	nextJoinID   uint64
	dirty        bool // view needs publishing
	removed      bool
	walErr       error

	inbox chan []inMsg
	props chan *proposal
	ctl   chan func()
	done  chan struct{}
	wg    sync.WaitGroup

	mu        sync.Mutex
	view      *View
	viewBytes []byte
	addrRing  *ring.Ring
	lastHeard map[uint64]time.Time

	peers *peerSet
	// book holds the members' addresses a joiner was given, until its
	// membership state arrives.
	book map[uint64]string
}

// gkey names a replica group: g 0 is the membership group, g = p+1
// partition p; inc is the incarnation.
type gkey struct{ g, inc uint64 }

type group struct {
	key     gkey
	rn      *raft.RawNode
	ms      *raft.MemoryStorage
	sm      *partSM // nil for the membership group
	applied uint64
	lead    uint64
	cs      raftpb.ConfState
	pending map[uint64]*proposal
	// frozen: a Freeze entry was applied; the group keeps replicating (so
	// the other replicas learn that it committed) but applies nothing
	// more, and is dropped after frozenGrace.
	frozen   bool
	frozenAt time.Time
	// active: in node.active, to be looked at by the next processReady.
	active bool

	// Reads (reads.go): waiting for this round's ReadIndex, for a
	// confirmation, for applying; the lease.
	newReads   []*proposal
	readWait   map[uint64]*readReq
	readyReads []readAt
	leaseUntil time.Time
	leaseTerm  uint64
	lastRead   time.Time
}

const frozenGrace = 3 * time.Second

// inMsg is a replication message from a peer.
type inMsg struct {
	key gkey
	m   raftpb.Message
}

// proposal is a replicated call waiting to be proposed or applied.
type proposal struct {
	part int
	call wire.Call
	done func(body []byte, st *status)
}

var raftLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

const (
	electionTicks  = 20
	heartbeatTicks = 2
	compactEvery   = 4096 // applied entries between in-memory compactions
)

// WAL records of a cluster member: kind, group, incarnation, payload.
const (
	recHardState = 1
	recEntries   = 2
	recSnapshot  = 3
	recDrop      = 4
	recIdentity  = 5
)

// nodeImage is a checkpoint of everything a member stores.
type nodeImage struct {
	ID        uint64
	Groups    []groupImage
	Destroyed map[uint64]uint64
}

type groupImage struct {
	G, Inc   uint64
	Snap, HS []byte
	Entries  [][]byte
}

func (n *node) raftConfig(ms *raft.MemoryStorage, applied uint64) *raft.Config {
	return &raft.Config{
		ID: n.id, ElectionTick: electionTicks, HeartbeatTick: heartbeatTicks, Storage: ms, Applied: applied,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 256 << 20,
		CheckQuorum: true, PreVote: true, Logger: raftLogger, DisableProposalForwarding: true, StepDownOnRemoval: true,
	}
}

func (n *node) newGroup(k gkey, ms *raft.MemoryStorage, applied uint64) (*group, error) {
	rn, err := raft.NewRawNode(n.raftConfig(ms, applied))
	if err != nil {
		return nil, err
	}
	g := &group{key: k, rn: rn, ms: ms, applied: applied, pending: map[uint64]*proposal{}}
	if k.g != 0 {
		g.sm = newPartSM()
	}
	_, cs, _ := ms.InitialState()
	g.cs = cs
	return g, nil
}

// seedGroup creates group k as its first state: a snapshot at index 1
// holding data (the membership state or a partition's objects), with
// voters.
func (n *node) seedGroup(k gkey, voters []uint64, data []byte, campaign bool) (*group, error) {
	ms := raft.NewMemoryStorage()
	snap := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: voters}}}
	if err := ms.ApplySnapshot(snap); err != nil {
		return nil, err
	}
	hs := raftpb.HardState{Term: 1, Commit: 1}
	if err := ms.SetHardState(hs); err != nil {
		return nil, err
	}
	n.walSnap(k, snap)
	n.walHS(k, hs)
	g, err := n.newGroup(k, ms, 1)
	if err != nil {
		return nil, err
	}
	if err := n.restore(g, data); err != nil {
		return nil, err
	}
	n.groups[k] = g
	n.mark(g)
	if campaign {
		_ = g.rn.Campaign()
	}
	n.dirty = true
	return g, nil
}

func (n *node) restore(g *group, data []byte) error {
	if g.key.g == 0 {
		var m metaState
		if err := gobLoad(data, &m); err != nil {
			return fmt.Errorf("state: membership snapshot: %w", err)
		}
		n.meta = &m
		n.dirty = true
		return nil
	}
	return g.sm.restore(n.s, data)
}

func (n *node) image(g *group) ([]byte, error) {
	if g.key.g == 0 {
		return gobBytes(n.meta)
	}
	return g.sm.marshal()
}

// newNode sets up the member's state: from its data directory if it has
// one, else by joining or bootstrapping (see start).
func newNode(s *Server, cfg ClusterConfig, addr string) *node {
	return &node{s: s, cfg: cfg, addr: addr, groups: map[gkey]*group{}, destroyed: map[uint64]uint64{},
		lastFreeze: map[gkey]time.Time{}, lastMigrate: map[int]time.Time{}, lastRemove: map[uint64]time.Time{},
		joins: map[uint64]func([]byte, *status){}, inbox: make(chan []inMsg, 1024), props: make(chan *proposal, 4096),
		ctl: make(chan func(), 64), done: make(chan struct{}), lastHeard: map[uint64]time.Time{}}
}

// load rebuilds the groups from the write-ahead log; it reports whether
// the directory held a member.
func (n *node) load() (bool, error) {
	if n.log == nil {
		return false, nil
	}
	stores := map[gkey]*raft.MemoryStorage{}
	if _, b := n.log.Snapshot(); len(b) > 0 {
		var img nodeImage
		if err := gobLoad(b, &img); err != nil {
			return false, fmt.Errorf("state: member snapshot does not decode: %w", err)
		}
		n.id = img.ID
		for k, v := range img.Destroyed {
			n.destroyed[k] = v
		}
		for _, gi := range img.Groups {
			ms := raft.NewMemoryStorage()
			var snap raftpb.Snapshot
			if err := snap.Unmarshal(gi.Snap); err != nil {
				return false, err
			}
			if !raft.IsEmptySnap(snap) {
				if err := ms.ApplySnapshot(snap); err != nil {
					return false, err
				}
			}
			ents := make([]raftpb.Entry, len(gi.Entries))
			for i, eb := range gi.Entries {
				if err := ents[i].Unmarshal(eb); err != nil {
					return false, err
				}
			}
			if err := ms.Append(ents); err != nil {
				return false, err
			}
			var hs raftpb.HardState
			if err := hs.Unmarshal(gi.HS); err != nil {
				return false, err
			}
			if !raft.IsEmptyHardState(hs) {
				_ = ms.SetHardState(hs)
			}
			stores[gkey{gi.G, gi.Inc}] = ms
		}
	}
	get := func(k gkey) *raft.MemoryStorage {
		ms := stores[k]
		if ms == nil {
			ms = raft.NewMemoryStorage()
			stores[k] = ms
		}
		return ms
	}
	err := n.log.Replay(func(seq uint64, b []byte) error {
		d := wire.NewDecoder(b)
		kind := d.Byte("record kind")
		k := gkey{d.Uvarint("group"), d.Uvarint("incarnation")}
		if d.Err() != nil {
			return fmt.Errorf("state: log record %d: %w", seq, d.Err())
		}
		p := d.Rest()
		switch kind {
		case recIdentity:
			n.id = k.g
		case recHardState:
			var hs raftpb.HardState
			if err := hs.Unmarshal(p); err != nil {
				return err
			}
			return get(k).SetHardState(hs)
		case recEntries:
			ents, err := decodeEntries(p)
			if err != nil {
				return fmt.Errorf("state: log record %d: %w", seq, err)
			}
			return get(k).Append(ents)
		case recSnapshot:
			var snap raftpb.Snapshot
			if err := snap.Unmarshal(p); err != nil {
				return err
			}
			if err := get(k).ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
				return err
			}
		case recDrop:
			delete(stores, k)
			if k.inc > n.destroyed[k.g] {
				n.destroyed[k.g] = k.inc
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if n.id == 0 {
		return false, nil
	}
	// The membership group first: partitions need its state.
	keys := make([]gkey, 0, len(stores))
	for k := range stores {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].g < keys[j].g || keys[i].g == keys[j].g && keys[i].inc < keys[j].inc
	})
	for _, k := range keys {
		ms := stores[k]
		snap, _ := ms.Snapshot()
		g, err := n.newGroup(k, ms, snap.Metadata.Index)
		if err != nil {
			return false, err
		}
		if !raft.IsEmptySnap(snap) {
			if err := n.restore(g, snap.Data); err != nil {
				return false, err
			}
		}
		n.groups[k] = g
	}
	return true, nil
}

func encodeEntries(ents []raftpb.Entry) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ents)))
	for i := range ents {
		eb, _ := ents[i].Marshal()
		b = wire.AppendBytes(b, eb)
	}
	return b
}

func decodeEntries(p []byte) ([]raftpb.Entry, error) {
	d := wire.NewDecoder(p)
	cnt := d.Uvarint("entry count")
	if d.Err() != nil || cnt > uint64(len(d.Rest())) {
		return nil, wire.ErrMalformed
	}
	ents := make([]raftpb.Entry, cnt)
	for i := range ents {
		eb := d.Bytes("entry")
		if d.Err() != nil {
			return nil, d.Err()
		}
		if err := ents[i].Unmarshal(eb); err != nil {
			return nil, err
		}
	}
	return ents, nil
}

func (n *node) walRec(kind byte, k gkey, payload []byte) {
	if n.log == nil || n.walErr != nil {
		return
	}
	b := []byte{kind}
	b = binary.AppendUvarint(b, k.g)
	b = binary.AppendUvarint(b, k.inc)
	b = append(b, payload...)
	if _, err := n.log.Append(b); err != nil {
		n.walErr = err
	}
}

func (n *node) walHS(k gkey, hs raftpb.HardState) {
	if n.log != nil {
		b, _ := hs.Marshal()
		n.walRec(recHardState, k, b)
	}
}

func (n *node) walSnap(k gkey, s raftpb.Snapshot) {
	if n.log != nil {
		b, _ := s.Marshal()
		n.walRec(recSnapshot, k, b)
	}
}

// bootstrap makes this server the first member of a new cluster.
func (n *node) bootstrap() error {
	n.id = 1
	n.walRec(recIdentity, gkey{g: n.id}, nil)
	rf, parts := n.cfg.ReplicationFactor, n.cfg.Partitions
	m := &metaState{RF: rf, P: parts, NextID: 2, Members: map[uint64]string{1: n.addr}, Removed: map[uint64]bool{}, Parts: make([]partInfo, parts)}
	for p := range m.Parts {
		m.Parts[p] = partInfo{Inc: 1, Voters: []uint64{1}}
	}
	data, err := gobBytes(m)
	if err != nil {
		return err
	}
	if _, err := n.seedGroup(gkey{0, 1}, []uint64{1}, data, true); err != nil {
		return err
	}
	empty, _ := newPartSM().marshal()
	for p := 0; p < parts; p++ {
		if _, err := n.seedGroup(gkey{uint64(p) + 1, 1}, []uint64{1}, empty, true); err != nil {
			return err
		}
	}
	return nil
}

// joined sets up a member admitted by the cluster with id: its
// membership group starts empty and is filled by the leader.
func (n *node) joined(id uint64, book map[uint64]string) error {
	n.id = id
	n.book = book
	n.walRec(recIdentity, gkey{g: n.id}, nil)
	g, err := n.newGroup(gkey{0, 1}, raft.NewMemoryStorage(), 0)
	if err != nil {
		return err
	}
	n.groups[g.key] = g
	return nil
}

func (n *node) start() {
	n.wg.Add(1)
	go n.run()
}

func (n *node) stop() {
	select {
	case <-n.done:
	default:
		close(n.done)
	}
	n.wg.Wait()
	n.peers.close()
}

// run is the replication loop.
func (n *node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Tick)
	defer tick.Stop()
	n.leaderSince = time.Now()
	n.started = n.leaderSince
	for _, g := range n.groups {
		n.mark(g)
	}
	n.publish()
	for {
		select {
		case <-n.done:
			n.failAll(fail(wire.CodeShutdown, "server shutting down"))
			return
		case <-tick.C:
			for _, g := range n.groups {
				g.rn.Tick()
				n.mark(g)
			}
			n.housekeeping()
			n.renewLeases(time.Now())
			n.flushHeld()
		case ms := <-n.inbox:
			n.step(ms)
		case p := <-n.props:
			n.propose(p)
		case f := <-n.ctl:
			f()
		}
		// Take whatever else is waiting, so one Ready round serves many.
	drain:
		for i := 0; i < 256; i++ {
			select {
			case ms := <-n.inbox:
				n.step(ms)
			case p := <-n.props:
				n.propose(p)
			case f := <-n.ctl:
				f()
			default:
				break drain
			}
		}
		n.issueReads()
		n.processReady()
		// Advance can make more ready at once (a single-voter group
		// commits its own entries on Advance): go round again rather than
		// wait for the next event.
		for i := 0; i < 8 && n.anyReady(); i++ {
			n.processReady()
		}
		if n.dirty {
			n.publish()
		}
	}
}

func (n *node) anyReady() bool {
	for _, g := range n.active {
		if n.groups[g.key] == g && g.rn.HasReady() {
			return true
		}
	}
	return false
}

func (n *node) step(ms []inMsg) {
	for _, im := range ms {
		g := n.groups[im.key]
		if g == nil {
			g = n.maybeCreate(im.key)
			if g == nil {
				continue
			}
		}
		if im.key.g != 0 && (im.m.Type == raftpb.MsgVote || im.m.Type == raftpb.MsgPreVote) &&
			time.Since(n.started) < time.Duration(leaseTicks)*n.cfg.Tick {
			// A promise made before a restart still binds (reads.go).
			continue
		}
		_ = g.rn.Step(im.m)
		n.mark(g)
	}
}

// mark notes that group g may have a Ready.
func (n *node) mark(g *group) {
	if !g.active {
		g.active = true
		n.active = append(n.active, g)
	}
}

// maybeCreate creates an empty replica of a partition group a peer talks
// to, unless this member dropped that incarnation or knows a newer one.
func (n *node) maybeCreate(k gkey) *group {
	if k.g == 0 || n.meta == nil || k.inc <= n.destroyed[k.g] {
		return nil
	}
	p := int(k.g - 1)
	if p >= len(n.meta.Parts) || k.inc < n.meta.Parts[p].Inc {
		return nil
	}
	for gk := range n.groups {
		if gk.g == k.g && gk.inc > k.inc {
			return nil
		}
	}
	for _, ps := range n.pendingSeeds {
		if ps.key.g == k.g && ps.key.inc >= k.inc {
			return nil // this member seeds it (or a newer one) with its state
		}
	}
	// An older incarnation hosted here is superseded.
	for gk, g := range n.groups {
		if gk.g == k.g && gk.inc < k.inc {
			n.drop(g, fail(wire.CodeNotLeader, ""))
		}
	}
	g, err := n.newGroup(k, raft.NewMemoryStorage(), 0)
	if err != nil {
		return nil
	}
	n.groups[k] = g
	return g
}

func (n *node) propose(p *proposal) {
	if n.meta == nil || p.part >= len(n.meta.Parts) {
		p.done(nil, fail(wire.CodeNotLeader, ""))
		return
	}
	k := gkey{uint64(p.part) + 1, n.meta.Parts[p.part].Inc}
	g := n.groups[k]
	if g == nil || g.frozen || g.rn.BasicStatus().RaftState != raft.StateLeader {
		hint := ""
		if g != nil && g.lead != 0 && g.lead != n.id {
			hint = n.meta.Members[g.lead]
		}
		p.done(nil, fail(wire.CodeNotLeader, "%s", hint))
		return
	}
	if g.isRead(p) {
		n.read(g, p)
		return
	}
	n.proposeWrite(g, p)
}

// proposeWrite appends call p to its group's log.
func (n *node) proposeWrite(g *group, p *proposal) {
	if g.frozen || g.rn.BasicStatus().RaftState != raft.StateLeader {
		p.done(nil, fail(wire.CodeNotLeader, ""))
		return
	}
	n.nextPID++
	pid := n.nextPID
	n.mark(g)
	if err := g.rn.Propose(encodeCallEntry(n.id, pid, &p.call)); err != nil {
		p.done(nil, fail(wire.CodeNotLeader, ""))
		return
	}
	g.pending[pid] = p
}

// hold keeps back a partition leader's append that carries no entries:
// etcd raft sends one to every follower each time the commit index moves,
// only so that the follower applies sooner. The next append or heartbeat
// carries the commit index too. Held, it costs no write and no wake-up of
// the follower on the path of the call that just committed (in a
// sequence of calls the next call's append replaces it); flushHeld sends
// it with the next tick otherwise. Raft allows messages to be delayed.
func (n *node) hold(g *group, m raftpb.Message, b []byte) bool {
	h := n.held[m.To]
	if g.key.g != 0 && m.Type == raftpb.MsgApp && len(m.Entries) == 0 {
		if h == nil {
			if n.held == nil {
				n.held = map[uint64]map[gkey]wire.RaftMsg{}
			}
			h = map[gkey]wire.RaftMsg{}
			n.held[m.To] = h
		}
		h[g.key] = wire.RaftMsg{Group: g.key.g, Inc: g.key.inc, Msg: b}
		return true
	}
	if h != nil && (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat || m.Type == raftpb.MsgSnap) {
		delete(h, g.key) // this one carries the commit index
	}
	return false
}

// flushHeld sends the held appends.
func (n *node) flushHeld() {
	for to, h := range n.held {
		if len(h) == 0 {
			continue
		}
		ms := make([]wire.RaftMsg, 0, len(h))
		for k, m := range h {
			delete(h, k)
			ms = append(ms, m)
		}
		n.peers.send(to, ms)
	}
}

type readyWork struct {
	g  *group
	rd raft.Ready
}

func (n *node) processReady() {
	var work []readyWork
	out := map[uint64][]wire.RaftMsg{}
	wrote := false
	list := n.active
	n.active = n.spare[:0]
	for _, g := range list {
		g.active = false
	}
	for _, g := range list {
		if n.groups[g.key] != g || !g.rn.HasReady() {
			continue
		}
		rd := g.rn.Ready()
		if !raft.IsEmptySnap(rd.Snapshot) {
			_ = g.ms.ApplySnapshot(rd.Snapshot)
			n.walSnap(g.key, rd.Snapshot)
			wrote = true
		}
		if len(rd.Entries) > 0 {
			_ = g.ms.Append(rd.Entries)
			if n.log != nil {
				n.walRec(recEntries, g.key, encodeEntries(rd.Entries))
			}
			wrote = true
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			_ = g.ms.SetHardState(rd.HardState)
			n.walHS(g.key, rd.HardState)
			wrote = true
		}
		if rd.SoftState != nil && rd.SoftState.Lead != g.lead {
			if g.lead == n.id {
				n.failPending(g, fail(wire.CodeUnavailable, "the replica group's leader changed; the call may or may not have run"))
			}
			g.lead = rd.SoftState.Lead
			n.dirty = true
			if g.key.g == 0 && g.lead == n.id {
				n.leaderSince = time.Now()
			}
		}
		if len(rd.ReadStates) > 0 {
			n.readStates(g, rd.ReadStates)
		}
		for _, m := range rd.Messages {
			b, err := m.Marshal()
			if err != nil {
				continue
			}
			if n.hold(g, m, b) {
				continue
			}
			if m.Type == raftpb.MsgSnap {
				// Sent without confirmation: if it is lost the follower is
				// probed again and gets another.
				g.rn.ReportSnapshot(m.To, raft.SnapshotFinish)
			}
			out[m.To] = append(out[m.To], wire.RaftMsg{Group: g.key.g, Inc: g.key.inc, Msg: b})
		}
		work = append(work, readyWork{g, rd})
	}
	if wrote && n.sync && n.log != nil && n.walErr == nil {
		if err := n.log.Sync(); err != nil {
			n.walErr = err
		}
	}
	if n.walErr != nil {
		// Nothing unpersisted may be acknowledged: stop replicating.
		n.s.logf("state: member %d: write-ahead log failed, replication stopped: %v", n.id, n.walErr)
		n.failAll(fail(wire.CodePersist, "the server's write-ahead log failed: %v", n.walErr))
		for k := range n.groups {
			delete(n.groups, k)
		}
		return
	}
	for to, ms := range out {
		n.peers.send(to, ms)
	}
	var after []func()
	for _, w := range work {
		g := w.g
		if !raft.IsEmptySnap(w.rd.Snapshot) {
			if err := n.restore(g, w.rd.Snapshot.Data); err != nil {
				n.s.logf("state: member %d: restoring a snapshot of group %v: %v", n.id, g.key, err)
			}
			g.applied = w.rd.Snapshot.Metadata.Index
			g.cs = w.rd.Snapshot.Metadata.ConfState
		}
		for _, e := range w.rd.CommittedEntries {
			if g.frozen {
				break
			}
			if f := n.apply(g, e); f != nil {
				after = append(after, f)
			}
		}
		g.rn.Advance(w.rd)
		n.mark(g) // Advance may make more ready
		n.serveReads(g)
		if !g.frozen {
			n.maybeCompact(g)
		}
	}
	for i := range list {
		list[i] = nil
	}
	n.spare = list[:0]
	for _, f := range after {
		f()
	}
	if n.log != nil && n.s.cfg.CheckpointBytes > 0 && n.log.Size() >= n.s.cfg.CheckpointBytes {
		n.checkpoint()
	}
}

// apply applies one committed entry; it may return work to do after every
// group's Ready is done (creating and dropping groups).
func (n *node) apply(g *group, e raftpb.Entry) func() {
	g.applied = e.Index
	switch e.Type {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil
		}
		g.cs = *g.rn.ApplyConfChange(cc)
		if g.key.g == 0 {
			n.applyMember(cc)
			// A member added gets a snapshot that names it (raft ignores
			// one whose configuration does not).
			n.snapshotGroup(g)
		}
		return nil
	case raftpb.EntryConfChangeV2:
		return nil
	}
	if len(e.Data) == 0 {
		return nil
	}
	if g.key.g == 0 {
		var cmd metaCmd
		if err := gobLoad(e.Data, &cmd); err == nil && cmd.Migrate != nil {
			return n.applyMigrate(cmd.Migrate)
		}
		return nil
	}
	switch e.Data[0] {
	case entryCall:
		proposer, pid, call, err := decodeCallEntry(e.Data)
		if err != nil {
			return nil
		}
		body, st := g.sm.execute(n.s, &call)
		if proposer == n.id {
			if p := g.pending[pid]; p != nil {
				delete(g.pending, pid)
				p.done(body, st)
			}
		}
	case entryFreeze:
		inc, voters, err := decodeFreeze(e.Data)
		if err != nil {
			return nil
		}
		return n.freeze(g, inc, voters)
	}
	return nil
}

// freeze ends group g at this entry: its state seeds incarnation inc with
// voters (if this member is one); later entries of g never apply.
func (n *node) freeze(g *group, inc uint64, voters []uint64) func() {
	img, err := g.sm.marshal()
	if err != nil {
		n.s.logf("state: member %d: partition %d cannot move: %v", n.id, g.key.g-1, err)
	}
	g.frozen, g.frozenAt = true, time.Now()
	n.failPending(g, fail(wire.CodeNotLeader, ""))
	// The first new voter that was an old one campaigns at once; the
	// others wait for it (or for an election timeout).
	var first uint64
	for _, v := range voters {
		if contains(g.cs.Voters, v) {
			first = v
			break
		}
	}
	return func() {
		if err == nil && contains(voters, n.id) && n.groups[gkey{g.key.g, inc}] == nil {
			if _, err := n.seedGroup(gkey{g.key.g, inc}, voters, img, first == n.id); err != nil {
				n.s.logf("state: member %d: seeding %v: %v", n.id, gkey{g.key.g, inc}, err)
			}
		}
	}
}

func (n *node) applyMember(cc raftpb.ConfChange) {
	var mc memberChange
	if err := gobLoad(cc.Context, &mc); err != nil {
		mc.ID = cc.NodeID
	}
	switch cc.Type {
	case raftpb.ConfChangeAddNode:
		n.meta.Members[cc.NodeID] = mc.Addr
		n.heard(cc.NodeID) // its grace period starts now
		if cc.NodeID >= n.meta.NextID {
			n.meta.NextID = cc.NodeID + 1
		}
		if reply := n.joins[cc.NodeID]; reply != nil {
			delete(n.joins, cc.NodeID)
			book, _ := gobBytes(n.meta.Members)
			reply(append(binary.AppendUvarint(nil, cc.NodeID), book...), nil)
		}
	case raftpb.ConfChangeRemoveNode:
		delete(n.meta.Members, cc.NodeID)
		n.meta.Removed[cc.NodeID] = true
		if cc.NodeID == n.id {
			n.removed = true
		}
	}
	n.dirty = true
}

func (n *node) applyMigrate(m *migrateCmd) func() {
	if m.P >= len(n.meta.Parts) || n.meta.Parts[m.P].Inc != m.From {
		return nil
	}
	n.meta.Parts[m.P] = partInfo{Inc: m.From + 1, Voters: append([]uint64(nil), m.Voters...)}
	n.dirty = true
	old := n.groups[gkey{uint64(m.P) + 1, m.From}]
	if m.Seed == 0 || old == nil {
		return nil // the old group's leader freezes it (housekeeping)
	}
	if m.Seed != n.id {
		return func() { n.drop(old, fail(wire.CodeNotLeader, "")) }
	}
	// The survivor of a two-member group holds every committed entry:
	// apply its whole log (up to a freeze) and seed the new incarnation.
	return func() {
		if snap, _ := old.ms.Snapshot(); snap.Metadata.Index == 0 && old.applied == 0 {
			// It never received the group's state (the crash came while
			// the partition was moving): seeding from nothing would
			// silently empty the partition, so it stays unavailable.
			n.s.logf("state: member %d: partition %d lost: its only surviving replica never received its state", n.id, m.P)
			return
		}
		if !old.frozen {
			last, _ := old.ms.LastIndex()
			if old.applied < last {
				ents, err := old.ms.Entries(old.applied+1, last+1, 1<<62)
				if err == nil {
					for _, e := range ents {
						if old.frozen {
							break
						}
						if e.Type == raftpb.EntryNormal && len(e.Data) > 0 && e.Data[0] == entryFreeze {
							break
						}
						n.apply(old, e)
					}
				}
			}
		}
		img, err := old.sm.marshal()
		n.drop(old, fail(wire.CodeNotLeader, ""))
		if err != nil {
			n.s.logf("state: member %d: partition %d: %v", n.id, m.P, err)
			return
		}
		if contains(m.Voters, n.id) {
			// The old leader may be alive and hold a read lease granted by
			// this member's acknowledgements: seed once it has run out.
			n.pendingSeeds = append(n.pendingSeeds, pendingSeed{key: gkey{uint64(m.P) + 1, m.From + 1}, voters: m.Voters, img: img,
				at: time.Now().Add(time.Duration(leaseTicks) * n.cfg.Tick)})
		}
	}
}

// pendingSeed is a new incarnation a survivor seeds once the old group's
// leases have run out (applyMigrate).
type pendingSeed struct {
	key    gkey
	voters []uint64
	img    []byte
	at     time.Time
}

// seedDue seeds the pending incarnations whose time has come and that
// are still current.
func (n *node) seedDue(now time.Time) {
	keep := n.pendingSeeds[:0]
	for _, ps := range n.pendingSeeds {
		if now.Before(ps.at) {
			keep = append(keep, ps)
			continue
		}
		p := int(ps.key.g - 1)
		if n.groups[ps.key] != nil || p >= len(n.meta.Parts) || n.meta.Parts[p].Inc != ps.key.inc || ps.key.inc <= n.destroyed[ps.key.g] {
			continue
		}
		if _, err := n.seedGroup(ps.key, ps.voters, ps.img, true); err != nil {
			n.s.logf("state: member %d: seeding partition %d: %v", n.id, p, err)
		}
	}
	n.pendingSeeds = keep
}

// drop removes group g from this member, answering its pending calls with
// st (NotLeader if nil: they did not run).
func (n *node) drop(g *group, st *status) {
	if st == nil {
		st = fail(wire.CodeNotLeader, "")
	}
	n.failPending(g, st)
	delete(n.groups, g.key)
	if g.key.inc > n.destroyed[g.key.g] {
		n.destroyed[g.key.g] = g.key.inc
	}
	n.walRec(recDrop, g.key, nil)
	n.dirty = true
}

func (n *node) failPending(g *group, st *status) {
	for pid, p := range g.pending {
		delete(g.pending, pid)
		p.done(nil, st)
	}
	if st.code == wire.CodeUnavailable {
		// Reads had no effect: they may run elsewhere.
		st = fail(wire.CodeNotLeader, "")
	}
	n.failReads(g, st)
}

func (n *node) failAll(st *status) {
	for _, g := range n.groups {
		n.failPending(g, st)
	}
	for {
		select {
		case p := <-n.props:
			p.done(nil, st)
		default:
			return
		}
	}
}

func (n *node) maybeCompact(g *group) {
	first, _ := g.ms.FirstIndex()
	if g.applied < first+compactEvery {
		return
	}
	n.snapshotGroup(g)
}

// snapshotGroup makes g's state at its applied index the snapshot its
// storage hands to followers that need one, and compacts the log to it.
func (n *node) snapshotGroup(g *group) {
	data, err := n.image(g)
	if err != nil {
		return
	}
	if _, err := g.ms.CreateSnapshot(g.applied, &g.cs, data); err == nil {
		_ = g.ms.Compact(g.applied)
	}
}

// checkpoint writes an image of every group and rotates the log.
func (n *node) checkpoint() {
	seq, err := n.log.Rotate()
	if err != nil {
		n.walErr = err
		return
	}
	img := nodeImage{ID: n.id, Destroyed: n.destroyed}
	for _, g := range n.groups {
		data, err := n.image(g)
		if err != nil {
			n.walErr = err
			return
		}
		snap, err := g.ms.CreateSnapshot(g.applied, &g.cs, data)
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			snap, err = g.ms.Snapshot()
		}
		if err != nil {
			n.walErr = err
			return
		}
		_ = g.ms.Compact(snap.Metadata.Index)
		gi := groupImage{G: g.key.g, Inc: g.key.inc}
		gi.Snap, _ = snap.Marshal()
		hs, _, _ := g.ms.InitialState()
		gi.HS, _ = hs.Marshal()
		first, _ := g.ms.FirstIndex()
		last, _ := g.ms.LastIndex()
		if last >= first {
			ents, err := g.ms.Entries(first, last+1, 1<<62)
			if err != nil {
				n.walErr = err
				return
			}
			for i := range ents {
				eb, _ := ents[i].Marshal()
				gi.Entries = append(gi.Entries, eb)
			}
		}
		img.Groups = append(img.Groups, gi)
	}
	b, err := gobBytes(img)
	if err != nil {
		n.walErr = err
		return
	}
	if err := n.log.InstallSnapshot(seq, b); err != nil {
		n.walErr = err
	}
}

// housekeeping runs every tick: the membership leader detects dead
// members and moves partitions; a partition leader hands its group over
// when the membership group asked for a new incarnation.
func (n *node) housekeeping() {
	if n.meta == nil {
		return
	}
	now := time.Now()
	for k, g := range n.groups {
		if g.frozen && now.Sub(g.frozenAt) > frozenGrace {
			n.drop(g, nil)
			continue
		}
		if k.g == 0 || g.frozen || g.lead != n.id {
			continue
		}
		pi := n.meta.Parts[k.g-1]
		if pi.Inc > k.inc && now.Sub(n.lastFreeze[k]) > 300*time.Millisecond {
			n.lastFreeze[k] = now
			_ = g.rn.Propose(encodeFreeze(pi.Inc, pi.Voters))
		}
	}
	n.seedDue(now)
	mg := n.groups[gkey{0, 1}]
	if mg != nil && !n.removed && mg.lead != 0 && mg.lead != n.id {
		n.campaignOnPeerLoss(mg, now)
	}
	if mg == nil || mg.lead != n.id || n.removed {
		return
	}
	// Failure detection: a member unheard for FailTimeout is removed, and
	// so is one whose process is gone (its connection broke and redials
	// are refused) for DownTimeout, without waiting for FailTimeout.
	n.mu.Lock()
	for id := range n.meta.Members {
		if id == n.id || now.Sub(n.lastRemove[id]) <= time.Second {
			continue
		}
		heard := n.lastHeard[id]
		if down := n.peers.downSince(id); !down.IsZero() && now.Sub(down) >= n.cfg.DownTimeout && now.Sub(heard) >= n.cfg.DownTimeout {
			n.lastRemove[id] = now
			n.s.logf("state: member %d: removing member %d (%s): its process is gone (connection lost %v ago, redials refused)",
				n.id, id, n.meta.Members[id], now.Sub(down).Round(time.Millisecond))
			n.proposeRemove(mg, id)
			continue
		}
		if now.Sub(n.leaderSince) <= n.cfg.FailTimeout {
			continue
		}
		last := heard
		if last.Before(n.leaderSince) {
			last = n.leaderSince
		}
		if now.Sub(last) > n.cfg.FailTimeout {
			n.lastRemove[id] = now
			n.s.logf("state: member %d: removing member %d (%s), unheard for %v", n.id, id, n.meta.Members[id], now.Sub(last).Round(time.Millisecond))
			n.proposeRemove(mg, id)
		}
	}
	n.mu.Unlock()
	n.rebalance(mg, now)
}

// campaignOnPeerLoss starts an election in the membership group at once
// when its leader's process is gone (see DownTimeout) instead of after an
// election timeout, so the crash is handled (the member removed, its
// partitions moved) sooner. The vote bypasses the followers' leader
// lease, which is why this is done in the membership group only: its
// leader serves no reads (reads.go). Only the surviving voter with the
// lowest id campaigns, so that two do not split the vote.
func (n *node) campaignOnPeerLoss(mg *group, now time.Time) {
	down := n.peers.downSince(mg.lead)
	if down.IsZero() || now.Sub(down) < n.cfg.DownTimeout || now.Sub(n.lastCampaign) < time.Second {
		return
	}
	n.mu.Lock()
	heard := n.lastHeard[mg.lead]
	n.mu.Unlock()
	if now.Sub(heard) < n.cfg.DownTimeout {
		return // (frames it sent before it went can arrive after)
	}
	var first uint64
	for _, v := range mg.cs.Voters {
		if v != mg.lead && (first == 0 || v < first) && (v == n.id || n.peers.downSince(v).IsZero()) {
			first = v
		}
	}
	if first != n.id {
		return
	}
	n.lastCampaign = now
	n.s.logf("state: member %d: the membership leader %d is gone (connection lost %v ago, redials refused); campaigning",
		n.id, mg.lead, now.Sub(down).Round(time.Millisecond))
	_ = mg.rn.Step(raftpb.Message{Type: raftpb.MsgTimeoutNow, From: mg.lead, To: n.id})
}

func (n *node) proposeRemove(mg *group, id uint64) {
	ctx, _ := gobBytes(memberChange{ID: id})
	_ = mg.rn.ProposeConfChange(raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id, Context: ctx})
}

// rebalance proposes a new incarnation for each partition whose voters
// differ from its placement on the current members.
func (n *node) rebalance(mg *group, now time.Time) {
	r := n.meta.ring()
	if r == nil {
		return
	}
	proposed := 0
	for p, pi := range n.meta.Parts {
		target := n.meta.placement(r, p)
		if sameSet(target, pi.Voters) || now.Sub(n.lastMigrate[p]) < 500*time.Millisecond {
			continue
		}
		var alive []uint64
		for _, v := range pi.Voters {
			if _, ok := n.meta.Members[v]; ok {
				alive = append(alive, v)
			}
		}
		m := &migrateCmd{P: p, From: pi.Inc, Voters: target}
		switch {
		case len(alive) >= len(pi.Voters)/2+1:
			// The old group has its quorum: it hands over itself. Its
			// state reaches the new group through the old members that
			// stay, so at least one stays for now (a later round drops
			// it once the new members have their copies).
			overlap := false
			for _, v := range alive {
				overlap = overlap || contains(target, v)
			}
			if !overlap {
				m.Voters = append([]uint64{alive[0]}, target...)
			}
		case len(pi.Voters) == 2 && len(alive) == 1:
			m.Seed = alive[0]
		default:
			continue // lost: too many replicas gone at once
		}
		b, err := gobBytes(metaCmd{Migrate: m})
		if err != nil {
			continue
		}
		n.lastMigrate[p] = now
		_ = mg.rn.Propose(b)
		if proposed++; proposed >= 64 {
			return
		}
	}
}

// publish recomputes the view clients are given.
func (n *node) publish() {
	n.dirty = false
	if n.meta == nil {
		return
	}
	v := &View{ReplicationFactor: n.meta.RF, Partitions: n.meta.P, Members: map[uint64]string{}, Parts: make([][]uint64, len(n.meta.Parts))}
	for id, a := range n.meta.Members {
		v.Members[id] = a
	}
	for id := range n.meta.Removed {
		v.Removed = append(v.Removed, id)
	}
	var epoch uint64
	for p, pi := range n.meta.Parts {
		epoch += pi.Inc
		vs := append([]uint64(nil), pi.Voters...)
		if g := n.groups[gkey{uint64(p) + 1, pi.Inc}]; g != nil && g.lead != 0 {
			for i, x := range vs {
				if x == g.lead {
					vs[0], vs[i] = vs[i], vs[0]
				}
			}
		}
		v.Parts[p] = vs
	}
	if mg := n.groups[gkey{0, 1}]; mg != nil {
		epoch += mg.applied
	}
	v.Epoch = epoch
	b, _ := gobBytes(v)
	ar := n.meta.addrRing()
	n.mu.Lock()
	n.view, n.viewBytes, n.addrRing = v, b, ar
	n.mu.Unlock()
}

func (n *node) currentView() (*View, []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.view, n.viewBytes
}

func (n *node) heard(id uint64) {
	n.mu.Lock()
	n.lastHeard[id] = time.Now()
	n.mu.Unlock()
}

// submit hands a replicated call to the loop; done is called exactly once.
func (n *node) submit(p *proposal) {
	select {
	case n.props <- p:
	case <-n.done:
		p.done(nil, fail(wire.CodeShutdown, "server shutting down"))
	}
}

// do runs f on the loop and waits for it.
func (n *node) do(f func()) bool {
	ch := make(chan struct{})
	select {
	case n.ctl <- func() { f(); close(ch) }:
	case <-n.done:
		return false
	}
	select {
	case <-ch:
		return true
	case <-n.done:
		return false
	}
}

// join handles a Join call from a server at addr that wants to become a
// member; reply gets the new member's id.
func (n *node) join(addr string, reply func([]byte, *status)) {
	ok := n.do(func() {
		mg := n.groups[gkey{0, 1}]
		if mg == nil || n.meta == nil || mg.lead != n.id {
			hint := ""
			if mg != nil && n.meta != nil && mg.lead != 0 {
				hint = n.meta.Members[mg.lead]
			}
			reply(nil, fail(wire.CodeNotLeader, "%s", hint))
			return
		}
		for id, a := range n.meta.Members {
			if a == addr {
				reply(nil, fail(wire.CodeUnavailable, "%s is still member %d of the cluster; it is removed after %v without contact (or with gale dso leave)", addr, id, n.cfg.FailTimeout))
				return
			}
		}
		id := n.meta.NextID
		if id <= n.nextJoinID {
			id = n.nextJoinID + 1
		}
		n.nextJoinID = id
		ctx, _ := gobBytes(memberChange{ID: id, Addr: addr})
		n.mark(mg)
		if err := mg.rn.ProposeConfChange(raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: ctx}); err != nil {
			reply(nil, fail(wire.CodeUnavailable, "membership change refused: %v", err))
			return
		}
		n.joins[id] = reply
		time.AfterFunc(5*time.Second, func() {
			n.do(func() {
				if r := n.joins[id]; r != nil {
					delete(n.joins, id)
					r(nil, fail(wire.CodeUnavailable, "membership change did not commit in time (another one in progress?)"))
				}
			})
		})
	})
	if !ok {
		reply(nil, fail(wire.CodeShutdown, "server shutting down"))
	}
}

// leave removes member id (0: this server) from the cluster.
func (n *node) leave(id uint64, reply func([]byte, *status)) {
	ok := n.do(func() {
		if id == 0 {
			id = n.id
		}
		mg := n.groups[gkey{0, 1}]
		if mg == nil || n.meta == nil || mg.lead != n.id {
			hint := ""
			if mg != nil && n.meta != nil && mg.lead != 0 {
				hint = n.meta.Members[mg.lead]
			}
			reply(nil, fail(wire.CodeNotLeader, "%s", hint))
			return
		}
		if _, ok := n.meta.Members[id]; !ok {
			reply(nil, fail(wire.CodeBadArgs, "no member %d", id))
			return
		}
		if len(n.meta.Members) == 1 {
			reply(nil, fail(wire.CodeBadArgs, "member %d is the last one; stop it instead", id))
			return
		}
		n.proposeRemove(mg, id)
		reply(nil, nil)
	})
	if !ok {
		reply(nil, fail(wire.CodeShutdown, "server shutting down"))
	}
}
