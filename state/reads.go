package state

import (
	"encoding/binary"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/galeproject/gale/state/internal/wire"
)

// Reads of replicated objects.
//
// A call that cannot change its object (a built-in read-only method such
// as Blob.Get or Map.Get on an object that exists) is not written to the
// partition's log. The group's leader answers it from its own replica
// once it knows that replica is up to date, by one of two means:
//
//   - ReadIndex (raft §6.4): the leader notes its commit index, confirms
//     it is still the leader by a heartbeat round that a majority of the
//     group acknowledges, and answers once it has applied up to the noted
//     index. All reads arriving in one round of the replication loop share
//     one ReadIndex.
//   - A lease, established by such a confirmation: a majority acknowledged
//     a heartbeat sent at time t, and each of them then refuses to elect
//     another leader for an election timeout (20 ticks) after receiving it
//     (etcd raft's CheckQuorum). Until t + leaseTicks ticks (5) the leader
//     answers reads at once, after applying up to its commit index. The
//     lease is measured from the heartbeat's sending on the leader's
//     monotonic clock, so delayed or paused processes only shorten it.
//
// A lease is only as good as the promise of the followers, so everything
// that could let another replica serve the partition before it expires
// waits it out: a survivor that seeds a new incarnation of a two-member
// group without the old leader (applyMigrate) waits leaseTicks after it
// stops answering the old group, and a member started from its data
// directory ignores vote requests of partition groups for leaseTicks. A
// Freeze ends a group only once its leader committed it, and the leader
// applies the Freeze before answering any read of an index at or after
// it. A forced election on a detected crash (campaignOnPeerLoss) is used
// only in the membership group, which serves no reads. Leases are renewed
// while reads keep coming (renewLeases); a leader without one falls back
// to ReadIndex.
const leaseTicks = electionTicks / 4

// readReq is a read waiting for the ReadIndex that confirms leadership.
type readReq struct {
	reads []*proposal
	sent  time.Time
	term  uint64
}

// readAt is a batch of confirmed reads waiting for the replica to apply
// up to index.
type readAt struct {
	index uint64
	reads []*proposal
}

// isRead reports whether p can be answered without the log.
func (g *group) isRead(p *proposal) bool {
	if g.sm == nil {
		return false
	}
	e := g.sm.objects[objectID(p.call.Type, p.call.Key)]
	return e != nil && e.obj.readOnly(p.call.Method)
}

// read handles a read on a leader: at once under a valid lease, else
// with the next ReadIndex.
func (n *node) read(g *group, p *proposal) {
	now := time.Now()
	g.lastRead = now
	st := g.rn.BasicStatus()
	if st.Term == g.leaseTerm && now.Before(g.leaseUntil) {
		if g.applied >= st.Commit {
			n.serveRead(g, p)
			return
		}
		n.queueRead(g, st.Commit, []*proposal{p})
		return
	}
	if len(g.newReads) == 0 {
		n.readGroups = append(n.readGroups, g)
	}
	g.newReads = append(g.newReads, p)
}

func (n *node) queueRead(g *group, index uint64, reads []*proposal) {
	g.readyReads = append(g.readyReads, readAt{index: index, reads: reads})
}

// issueReads sends one ReadIndex for each group that got reads in this
// round of the loop.
func (n *node) issueReads() {
	for _, g := range n.readGroups {
		if len(g.newReads) == 0 || n.groups[g.key] != g {
			continue
		}
		n.readIndex(g, g.newReads)
		g.newReads = nil
	}
	n.readGroups = n.readGroups[:0]
}

func (n *node) readIndex(g *group, reads []*proposal) {
	n.nextRead++
	ctx := binary.BigEndian.AppendUint64(nil, n.nextRead)
	if g.readWait == nil {
		g.readWait = map[uint64]*readReq{}
	}
	g.readWait[n.nextRead] = &readReq{reads: reads, sent: time.Now(), term: g.rn.BasicStatus().Term}
	n.mark(g)
	g.rn.ReadIndex(ctx)
}

// readStates takes the confirmations of a Ready: each renews the lease
// and queues its reads.
func (n *node) readStates(g *group, rss []raft.ReadState) {
	for _, rs := range rss {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(rs.RequestCtx)
		rq := g.readWait[id]
		if rq == nil {
			continue
		}
		delete(g.readWait, id)
		if st := g.rn.BasicStatus(); st.RaftState == raft.StateLeader && st.Term == rq.term {
			until := rq.sent.Add(time.Duration(leaseTicks) * n.cfg.Tick)
			if rq.term != g.leaseTerm || until.After(g.leaseUntil) {
				g.leaseTerm, g.leaseUntil = rq.term, until
			}
		}
		if len(rq.reads) > 0 {
			n.queueRead(g, rs.Index, rq.reads)
		}
	}
}

// serveReads answers the confirmed reads whose index the replica has
// applied.
func (n *node) serveReads(g *group) {
	if len(g.readyReads) == 0 {
		return
	}
	keep := g.readyReads[:0]
	for _, ra := range g.readyReads {
		if ra.index > g.applied && !g.frozen {
			keep = append(keep, ra)
			continue
		}
		for _, p := range ra.reads {
			n.serveRead(g, p)
		}
	}
	for i := len(keep); i < len(g.readyReads); i++ {
		g.readyReads[i] = readAt{}
	}
	g.readyReads = keep
}

// serveRead runs a read on this replica, or proposes it if it cannot be
// answered here after all.
func (n *node) serveRead(g *group, p *proposal) {
	if g.frozen {
		// The partition moved on at an index this read must see.
		p.done(nil, fail(wire.CodeNotLeader, ""))
		return
	}
	e := g.sm.objects[objectID(p.call.Type, p.call.Key)]
	if e == nil || !e.obj.readOnly(p.call.Method) {
		n.proposeWrite(g, p)
		return
	}
	if len(p.call.Init) > 0 {
		if st := e.obj.checkInit(p.call.Init); st != nil {
			p.done(nil, st)
			return
		}
	}
	body, st, _ := e.obj.invoke(p.call.Method, p.call.Args, nil)
	p.done(body, st)
}

// failReads answers every read of g waiting for confirmation or for
// applying with st (they had no effect, so clients retry them).
func (n *node) failReads(g *group, st *status) {
	for _, p := range g.newReads {
		p.done(nil, st)
	}
	g.newReads = nil
	for id, rq := range g.readWait {
		delete(g.readWait, id)
		for _, p := range rq.reads {
			p.done(nil, st)
		}
	}
	for _, ra := range g.readyReads {
		for _, p := range ra.reads {
			p.done(nil, st)
		}
	}
	g.readyReads = nil
	g.leaseUntil = time.Time{}
}

// renewLeases runs every tick: a leader that served reads in the last
// second renews its lease before it runs out, so reads keep being
// answered at once; confirmations lost with a leader change are failed
// after a second (their clients retry).
func (n *node) renewLeases(now time.Time) {
	tick := n.cfg.Tick
	for _, g := range n.groups {
		if g.sm == nil {
			continue
		}
		for id, rq := range g.readWait {
			if now.Sub(rq.sent) > time.Second {
				delete(g.readWait, id)
				for _, p := range rq.reads {
					p.done(nil, fail(wire.CodeNotLeader, ""))
				}
			}
		}
		if g.lead != n.id || g.frozen || now.Sub(g.lastRead) > time.Second {
			continue
		}
		if g.leaseUntil.Sub(now) > time.Duration(leaseTicks)*tick/2 {
			continue
		}
		pending := false
		for _, rq := range g.readWait {
			if now.Sub(rq.sent) < 2*tick {
				pending = true
			}
		}
		if !pending {
			n.readIndex(g, nil)
		}
	}
}
