package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/galeproject/gale/state/internal/wire"
	"github.com/galeproject/gale/state/ring"
)

// ClusterConfig makes a server a member of a replicated DSO cluster (see
// docs/state.md, "Replication"). Persistent objects are then kept by
// ReplicationFactor members with state machine replication (etcd's raft,
// one group per partition); ephemeral and coordination objects stay on
// one member, placed by the ring over the members.
type ClusterConfig struct {
	// Join lists addresses of running members to join through. Empty
	// starts a new cluster with this server as its only member.
	Join []string
	// Advertise is the address members and clients reach this server at.
	// Default: the listening address.
	Advertise string
	// ReplicationFactor is the number of copies of each persistent object
	// (a new cluster only; joiners take the cluster's). Default 2.
	ReplicationFactor int
	// Partitions is the number of replica groups objects are hashed into
	// (a new cluster only). Default 64.
	Partitions int
	// Tick is the replication clock's period. Default 10 ms; a leader is
	// elected after 20 to 40 ticks without one, heartbeats every 2.
	Tick time.Duration
	// FailTimeout is how long a member may go unheard before the others
	// remove it and move its replicas. Default 1 s.
	FailTimeout time.Duration
	// DownTimeout is how long a member whose process is gone may stay
	// before the others remove it: its connection broke and every redial
	// since was refused (nothing listens at its address, as after a
	// crash). This is direct evidence, so it needs no FailTimeout of
	// silence; a member restarted on its data directory within it keeps
	// its identity. Default FailTimeout/5.
	DownTimeout time.Duration

	// Faults, if set, makes this member's outgoing replication traffic
	// unreliable (tests and chaos experiments; see FaultConfig).
	Faults *FaultConfig
}

func (c *ClusterConfig) fill() {
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 2
	}
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	if c.Tick == 0 {
		c.Tick = 10 * time.Millisecond
	}
	if c.FailTimeout == 0 {
		c.FailTimeout = time.Second
	}
	if c.DownTimeout == 0 {
		c.DownTimeout = c.FailTimeout / 5
	}
}

func (c *ClusterConfig) validate() []error {
	var errs []error
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 7 {
		errs = append(errs, fmt.Errorf("state: ClusterConfig.ReplicationFactor must be 1..7, got %d", c.ReplicationFactor))
	}
	if c.Partitions < 0 || c.Partitions > 4096 {
		errs = append(errs, fmt.Errorf("state: ClusterConfig.Partitions must be 1..4096, got %d", c.Partitions))
	}
	if c.Tick < 0 || c.FailTimeout < 0 || c.DownTimeout < 0 {
		errs = append(errs, errors.New("state: ClusterConfig durations must be >= 0"))
	}
	return errs
}

// clusterType is the pseudo object type of cluster administration calls
// (View, Join, Leave, Members); it cannot be registered.
const clusterType = "$cluster"

// metaState is the membership group's state machine: who the members are
// and which members hold each partition, in which incarnation.
type metaState struct {
	RF, P   int
	NextID  uint64
	Members map[uint64]string // id -> address
	Removed map[uint64]bool
	Parts   []partInfo
}

// partInfo is one partition's replica group: its incarnation and voters.
// A partition's group is replaced by a new incarnation whenever its
// members change (see migrate).
type partInfo struct {
	Inc    uint64
	Voters []uint64
}

func (m *metaState) clone() *metaState {
	c := *m
	c.Members = make(map[uint64]string, len(m.Members))
	for k, v := range m.Members {
		c.Members[k] = v
	}
	c.Removed = make(map[uint64]bool, len(m.Removed))
	for k, v := range m.Removed {
		c.Removed[k] = v
	}
	c.Parts = make([]partInfo, len(m.Parts))
	for i, p := range m.Parts {
		c.Parts[i] = partInfo{Inc: p.Inc, Voters: append([]uint64(nil), p.Voters...)}
	}
	return &c
}

func (m *metaState) memberIDs() []uint64 {
	ids := make([]uint64, 0, len(m.Members))
	for id := range m.Members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// placement returns the voters partition p should have: the first RF
// members clockwise from the partition's point on the ring of member ids.
// A membership change moves only the partitions whose lists it enters or
// leaves.
func (m *metaState) placement(r *ring.Ring, p int) []uint64 {
	names := r.LocateN("partition/"+strconv.Itoa(p), m.RF)
	out := make([]uint64, len(names))
	for i, n := range names {
		out[i], _ = strconv.ParseUint(n, 10, 64)
	}
	return out
}

func (m *metaState) ring() *ring.Ring {
	ids := m.memberIDs()
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strconv.FormatUint(id, 10)
	}
	r, err := ring.New(names, 0)
	if err != nil {
		return nil
	}
	return r
}

// addrRing is the ring of member addresses that places ephemeral objects.
func (m *metaState) addrRing() *ring.Ring {
	addrs := make([]string, 0, len(m.Members))
	for _, a := range m.Members {
		addrs = append(addrs, a)
	}
	r, err := ring.New(addrs, 0)
	if err != nil {
		return nil
	}
	return r
}

// partitionOf hashes an object to its partition.
func partitionOf(typ, key string, parts int) int {
	return int(xxhash.Sum64String(ring.ObjectKey(typ, key)) % uint64(parts))
}

func sameSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[uint64]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func contains(s []uint64, x uint64) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// metaCmd is a normal entry of the membership group's log.
type metaCmd struct {
	// Migrate replaces partition P's group (incarnation From) by a new
	// incarnation with Voters. Seed 0 means the old group hands over its
	// state itself (a Freeze entry committed in it); otherwise the old
	// group has lost its quorum and member Seed, the one survivor of a
	// two-member group, holds every committed entry and seeds the new one.
	Migrate *migrateCmd
}

type migrateCmd struct {
	P      int
	From   uint64
	Voters []uint64
	Seed   uint64
}

// memberChange is the context of a membership conf change.
type memberChange struct {
	ID   uint64
	Addr string
}

// View is a client's picture of the cluster: the members and, for each
// partition, its replicas and (if known) its leader.
type View struct {
	// Epoch grows with every membership or placement change.
	Epoch uint64
	// ReplicationFactor and Partitions are the cluster's.
	ReplicationFactor, Partitions int
	// Members maps member ids to addresses.
	Members map[uint64]string
	// Parts lists each partition's replicas, leader first when known.
	Parts [][]uint64
	// Removed lists the ids of former members.
	Removed []uint64
}

// Partition entries: the first byte is the kind.
const (
	entryCall   = 1
	entryFreeze = 2
)

// encodeCallEntry is a proposed call: proposer and proposal id (so the
// proposing leader finds whom to answer), then the call with its session.
func encodeCallEntry(proposer, pid uint64, c *wire.Call) []byte {
	b := []byte{entryCall}
	b = binary.AppendUvarint(b, proposer)
	b = binary.AppendUvarint(b, pid)
	return wire.AppendCall(b, c)
}

func decodeCallEntry(b []byte) (proposer, pid uint64, c wire.Call, err error) {
	d := wire.NewDecoder(b[1:])
	proposer = d.Uvarint("proposer")
	pid = d.Uvarint("proposal id")
	if d.Err() != nil {
		return 0, 0, c, d.Err()
	}
	c, err = wire.DecodeCall(d.Rest())
	return proposer, pid, c, err
}

func encodeFreeze(newInc uint64, voters []uint64) []byte {
	b := []byte{entryFreeze}
	b = binary.AppendUvarint(b, newInc)
	b = binary.AppendUvarint(b, uint64(len(voters)))
	for _, v := range voters {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func decodeFreeze(b []byte) (uint64, []uint64, error) {
	d := wire.NewDecoder(b[1:])
	inc := d.Uvarint("incarnation")
	n := d.Uvarint("voters")
	if d.Err() == nil && n > uint64(len(d.Rest())) {
		return 0, nil, wire.ErrMalformed
	}
	vs := make([]uint64, 0, n)
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		vs = append(vs, d.Uvarint("voter"))
	}
	return inc, vs, d.Err()
}
