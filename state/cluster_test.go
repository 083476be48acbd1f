package state

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCluster is a cluster of in-process servers on loopback.
type testCluster struct {
	t       *testing.T
	mu      sync.Mutex
	servers []*Server
	done    []chan error
	reg     *Registry
}

func (tc *testCluster) start(cc ClusterConfig, dataDir string) *Server {
	tc.t.Helper()
	if cc.FailTimeout == 0 {
		cc.FailTimeout = time.Second
	}
	s, err := NewServer(ServerConfig{Token: testToken, Registry: tc.reg, Cluster: &cc, DataDir: dataDir, Logf: tc.t.Logf})
	if err != nil {
		tc.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	tc.mu.Lock()
	tc.servers = append(tc.servers, s)
	tc.done = append(tc.done, done)
	tc.mu.Unlock()
	return s
}

func newTestCluster(t *testing.T, n, rf int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, reg: userRegistry()}
	first := tc.start(ClusterConfig{ReplicationFactor: rf, Partitions: 16}, "")
	for i := 1; i < n; i++ {
		tc.start(ClusterConfig{Join: []string{first.Addr()}}, "")
	}
	t.Cleanup(func() {
		for _, s := range tc.servers {
			_ = s.Close()
		}
	})
	tc.waitPlaced(n)
	return tc
}

// waitPlaced waits until the view lists members members and every
// partition has its full replica set on members.
func (tc *testCluster) waitPlaced(members int) {
	tc.t.Helper()
	c := tc.client()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c.RefreshView(context.Background())
		v := c.View()
		ok := len(v.Members) == members
		want := min(v.ReplicationFactor, members)
		for _, p := range v.Parts {
			if len(p) != want {
				ok = false
			}
			for _, id := range p {
				if _, in := v.Members[id]; !in {
					ok = false
				}
			}
		}
		if ok && tc.replicated(v) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.t.Fatalf("cluster did not settle on %d members: %+v", members, c.View())
}

// replicated reports whether every voter of every partition in v holds
// an initialized replica of the partition's current incarnation, and each
// has a leader.
func (tc *testCluster) replicated(v *View) bool {
	tc.mu.Lock()
	servers := append([]*Server(nil), tc.servers...)
	tc.mu.Unlock()
	type rep struct{ init, leader bool }
	have := map[[2]uint64]rep{} // (member, partition)
	placed := true
	for _, s := range servers {
		n := s.node
		n.do(func() {
			if n.meta == nil {
				return
			}
			if r := n.meta.ring(); r != nil {
				for p, pi := range n.meta.Parts {
					placed = placed && sameSet(pi.Voters, n.meta.placement(r, p))
				}
			}
			for k, g := range n.groups {
				if k.g == 0 || k.inc != n.meta.Parts[k.g-1].Inc {
					continue
				}
				snap, _ := g.ms.Snapshot()
				have[[2]uint64{n.id, k.g - 1}] = rep{init: snap.Metadata.Index > 0 || g.applied > 0, leader: g.lead == n.id}
			}
		})
	}
	if !placed {
		return false
	}
	for p, vs := range v.Parts {
		led := false
		for _, id := range vs {
			r := have[[2]uint64{id, uint64(p)}]
			if !r.init {
				return false
			}
			led = led || r.leader
		}
		if !led {
			return false
		}
	}
	return true
}

func (tc *testCluster) dump() {
	for _, s := range tc.servers {
		n := s.node
		n.do(func() {
			tc.t.Logf("member %d meta %+v", n.id, n.meta)
			for k, g := range n.groups {
				st := g.rn.Status()
				tc.t.Logf("  member %d group %v lead %d state %v cs %v applied %d term %d frozen %v", n.id, k, g.lead, st.RaftState, g.cs.Voters, g.applied, st.Term, g.frozen)
			}
		})
	}
}

func (tc *testCluster) client() *Client {
	tc.t.Helper()
	tc.mu.Lock()
	var addrs []string
	seen := map[string]bool{}
	for _, s := range tc.servers {
		if !seen[s.Addr()] {
			seen[s.Addr()] = true
			addrs = append(addrs, s.Addr())
		}
	}
	tc.mu.Unlock()
	c, err := Dial(context.Background(), ClientConfig{Servers: addrs, Token: testToken})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClusterReplicatesAndSurvivesACrash(t *testing.T) {
	for _, rf := range []int{2, 3} {
		t.Run(fmt.Sprintf("rf=%d", rf), func(t *testing.T) {
			tc := newTestCluster(t, 3, rf)
			c := tc.client()
			ctx := context.Background()
			for i := 0; i < 50; i++ {
				if _, err := c.Counter(fmt.Sprintf("n%d", i)).Persistent().Add(ctx, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Call[int64](ctx, c.Object("Centroids", "km").Persistent(), "Merge", []float64{4}, []int64{2}); err != nil {
				t.Fatal(err)
			}
			// Kill the member that leads the most partitions.
			victim := tc.servers[0]
			_ = victim.Close()
			for i := 0; i < 50; i++ {
				v, err := c.Counter(fmt.Sprintf("n%d", i)).Persistent().Get(ctx)
				if err != nil || v != int64(i) {
					tc.dump()
					t.Fatalf("n%d = %d, %v after a crash, want %d", i, v, err, i)
				}
				if _, err := c.Counter(fmt.Sprintf("n%d", i)).Persistent().Add(ctx, 1); err != nil {
					t.Fatal(err)
				}
			}
			if m, err := Call[[]float64](ctx, c.Object("Centroids", "km").Persistent(), "Means"); err != nil || len(m) != 1 || m[0] != 2 {
				t.Fatalf("Means = %v, %v", m, err)
			}
			tc.waitPlaced(2)
			// A new member joins; the data stays.
			tc.start(ClusterConfig{Join: []string{tc.servers[1].Addr()}}, "")
			tc.waitPlaced(3)
			for i := 0; i < 50; i++ {
				v, err := c.Counter(fmt.Sprintf("n%d", i)).Persistent().Get(ctx)
				if err != nil || v != int64(i)+1 {
					t.Fatalf("n%d = %d, %v after a join, want %d", i, v, err, i+1)
				}
			}
			if !errors.Is(nil, nil) {
				t.Fatal()
			}
		})
	}
}

// TestClusterRefusesUnpersistableTypes: a user type whose state does not
// gob-encode cannot be replicated; a call says so instead of the object
// silently failing to move.
func TestClusterRefusesUnpersistableTypes(t *testing.T) {
	tc := &testCluster{t: t, reg: NewRegistry()}
	RegisterType[Tally](tc.reg, "Tally")
	tc.start(ClusterConfig{ReplicationFactor: 1, Partitions: 2}, "")
	t.Cleanup(func() { _ = tc.servers[0].Close() })
	c := tc.client()
	ctx := context.Background()
	if _, err := Call[int](ctx, c.Object("Tally", "t").Persistent(), "Add", "x"); !errors.Is(err, ErrPersist) {
		t.Fatalf("replicated Tally: %v, want ErrPersist", err)
	}
	if n, err := Call[int](ctx, c.Object("Tally", "t"), "Add", "x"); err != nil || n != 1 {
		t.Fatalf("ephemeral Tally: %d, %v", n, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

func (tc *testCluster) startAt(addr string, cc ClusterConfig, dataDir string) *Server {
	tc.t.Helper()
	if cc.FailTimeout == 0 {
		cc.FailTimeout = time.Second
	}
	s, err := NewServer(ServerConfig{Addr: addr, Token: testToken, Registry: tc.reg, Cluster: &cc, DataDir: dataDir, Logf: tc.t.Logf})
	if err != nil {
		tc.t.Fatal(err)
	}
	go func() { _ = s.Serve(context.Background()) }()
	tc.mu.Lock()
	tc.servers = append(tc.servers, s)
	tc.mu.Unlock()
	return s
}

// TestClusterRestartRecoversEveryWrite stops every member of a cluster
// with data directories and starts them again on the same addresses:
// every acknowledged write is there, and the cluster goes on.
func TestClusterRestartRecoversEveryWrite(t *testing.T) {
	tc := &testCluster{t: t, reg: userRegistry()}
	t.Cleanup(func() {
		for _, s := range tc.servers {
			_ = s.Close()
		}
	})
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	tc.startAt(addrs[0], ClusterConfig{ReplicationFactor: 2, Partitions: 8}, dirs[0])
	tc.startAt(addrs[1], ClusterConfig{Join: addrs[:1]}, dirs[1])
	tc.startAt(addrs[2], ClusterConfig{Join: addrs[:1]}, dirs[2])
	tc.waitPlaced(3)
	c := tc.client()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if _, err := c.List("l").Persistent().Append(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Map(fmt.Sprintf("m%d", i%20)).Persistent().Put(ctx, fmt.Sprint(i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	for _, s := range tc.servers {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tc.servers = nil
	for i := range addrs {
		tc.startAt(addrs[i], ClusterConfig{}, dirs[i])
	}
	c = tc.client()
	items, err := c.List("l").Persistent().Range(ctx, 0, 1000)
	if err != nil || len(items) != 200 {
		t.Fatalf("after a whole-cluster restart: %d items, %v", len(items), err)
	}
	for i, it := range items {
		if string(it) != fmt.Sprint(i) {
			t.Fatalf("item %d = %q", i, it)
		}
	}
	for i := 0; i < 200; i++ {
		v, ok, err := c.Map(fmt.Sprintf("m%d", i%20)).Persistent().Get(ctx, fmt.Sprint(i))
		if err != nil || !ok || v[0] != byte(i) {
			t.Fatalf("m%d[%d] = %v %v %v", i%20, i, v, ok, err)
		}
	}
	if _, err := c.List("l").Persistent().Append(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
}

// TestClusterStaleMember: a member that comes back quickly catches up; one
// that comes back after the cluster removed it is refused with ErrRemoved
// (its data is stale) and can join again as a new member.
func TestClusterStaleMember(t *testing.T) {
	tc := &testCluster{t: t, reg: userRegistry()}
	t.Cleanup(func() {
		for _, s := range tc.servers {
			_ = s.Close()
		}
	})
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	tc.startAt(addrs[0], ClusterConfig{ReplicationFactor: 3, Partitions: 8, FailTimeout: 2 * time.Second}, dirs[0])
	tc.startAt(addrs[1], ClusterConfig{Join: addrs[:1], FailTimeout: 2 * time.Second}, dirs[1])
	s2 := tc.startAt(addrs[2], ClusterConfig{Join: addrs[:1], FailTimeout: 2 * time.Second}, dirs[2])
	tc.waitPlaced(3)
	c := tc.client()
	ctx := context.Background()
	n := c.Counter("n").Persistent()
	if _, err := n.Add(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// Quick return: writes made meanwhile reach it through raft.
	_ = s2.Close()
	if _, err := n.Add(ctx, 5); err != nil {
		t.Fatal(err)
	}
	tc.startAt(addrs[2], ClusterConfig{FailTimeout: 2 * time.Second}, dirs[2])
	tc.waitPlaced(3)
	if v, err := n.Get(ctx); err != nil || v != 10 {
		t.Fatalf("n = %d, %v", v, err)
	}
	// Long absence: removed, then refused with its stale directory.
	tc.mu.Lock()
	s2 = tc.servers[len(tc.servers)-1]
	tc.mu.Unlock()
	_ = s2.Close()
	tc.waitPlaced(2)
	if _, err := n.Add(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_, err := NewServer(ServerConfig{Addr: addrs[2], Token: testToken, Registry: tc.reg, Cluster: &ClusterConfig{}, DataDir: dirs[2]})
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "--join") {
		t.Fatalf("a removed member restarting on its stale data: %v, want ErrRemoved", err)
	}
	tc.startAt(addrs[2], ClusterConfig{Join: addrs[:1]}, t.TempDir())
	tc.waitPlaced(3)
	if v, err := n.Get(ctx); err != nil || v != 11 {
		t.Fatalf("n = %d, %v", v, err)
	}
}

// TestClusterTokenAndFaults: a server with another cluster's token cannot
// join; a cluster whose replication traffic is dropped, duplicated,
// delayed and reordered at random, with one member partitioned away for a
// while, keeps a counter exact (seeded: the seed is logged).
func TestClusterTokenAndFaults(t *testing.T) {
	tc := &testCluster{t: t, reg: userRegistry()}
	t.Cleanup(func() {
		for _, s := range tc.servers {
			_ = s.Close()
		}
	})
	seed := uint64(time.Now().UnixNano())
	t.Logf("fault seed %d", seed)
	var cut atomic.Bool
	faults := func(i uint64) *FaultConfig {
		return &FaultConfig{Seed: seed + i, Drop: 0.05, Duplicate: 0.05, MaxDelay: 3 * time.Millisecond,
			Partitioned: func(from, to uint64) bool { return cut.Load() && (from == 3 || to == 3) }}
	}
	first := tc.startAt("127.0.0.1:0", ClusterConfig{ReplicationFactor: 3, Partitions: 8, FailTimeout: 3 * time.Second, Faults: faults(1)}, "")
	tc.startAt("127.0.0.1:0", ClusterConfig{Join: []string{first.Addr()}, FailTimeout: 3 * time.Second, Faults: faults(2)}, "")
	tc.startAt("127.0.0.1:0", ClusterConfig{Join: []string{first.Addr()}, FailTimeout: 3 * time.Second, Faults: faults(3)}, "")
	tc.waitPlaced(3)

	_, err := NewServer(ServerConfig{Token: "another-cluster", Cluster: &ClusterConfig{Join: []string{first.Addr()}}})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("joining with another cluster's token: %v, want ErrAuth", err)
	}

	c := tc.client()
	ctx := context.Background()
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				if _, err := c.Counter(fmt.Sprintf("n%d", i%4)).Persistent().Add(ctx, 1); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
				if i == 20 && w == 0 {
					cut.Store(true)
				}
				if i == 40 && w == 0 {
					cut.Store(false)
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for k := 0; k < 4; k++ {
		v, err := c.Counter(fmt.Sprintf("n%d", k)).Persistent().Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != acked.Load() {
		t.Fatalf("counters sum to %d, %d increments acknowledged (seed %d)", total, acked.Load(), seed)
	}
}

// TestClusterCoordinationWaiterOnCrash: a caller waiting on a barrier
// whose member crashes gets an error naming the object, not a hang.
func TestClusterCoordinationWaiterOnCrash(t *testing.T) {
	tc := newTestCluster(t, 3, 2)
	c := tc.client()
	owner := c.Locate(TypeCyclicBarrier, "b")
	done := make(chan error, 1)
	go func() {
		_, _, err := c.CyclicBarrier("b", 2).Await(context.Background())
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	for _, s := range tc.servers {
		if s.Addr() == owner {
			_ = s.Close()
		}
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), `CyclicBarrier("b")`) || !strings.Contains(err.Error(), "not replicated") {
			t.Fatalf("waiter on a crashed member: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter on a crashed member hangs")
	}
}

// TestReplicatedReadsSkipTheLog checks that reads of replicated objects
// are answered by the partition's leader without a log entry (ReadIndex
// or lease, see reads.go) and see every acknowledged write, also writes
// made through another client.
func TestReplicatedReadsSkipTheLog(t *testing.T) {
	tc := newTestCluster(t, 3, 2)
	ctx := context.Background()
	w, r := tc.client(), tc.client()
	b := w.Blob("read-me").Persistent()
	if err := b.Set(ctx, []byte("v0")); err != nil {
		t.Fatal(err)
	}
	v := w.View()
	p := partitionOf(TypeBlob, "read-me", v.Partitions)
	lastIndex := func() (last uint64) {
		for _, s := range tc.servers {
			n := s.node
			n.do(func() {
				g := n.groups[gkey{uint64(p) + 1, n.meta.Parts[p].Inc}]
				if g != nil && g.lead == n.id && !g.frozen {
					last, _ = g.ms.LastIndex()
				}
			})
		}
		return last
	}
	for i := 1; i <= 20; i++ {
		want := fmt.Sprintf("v%d", i)
		if err := b.Set(ctx, []byte(want)); err != nil {
			t.Fatal(err)
		}
		before := lastIndex()
		for j := 0; j < 5; j++ {
			got, err := r.Blob("read-me").Persistent().Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatalf("read %q after acknowledged write %q", got, want)
			}
		}
		if after := lastIndex(); after != before {
			t.Fatalf("5 reads moved partition %d's log from index %d to %d; reads must not be logged", p, before, after)
		}
	}
	// A read of an object that does not exist yet creates it, on every
	// replica: it goes through the log.
	if got, err := r.Blob("fresh").Persistent().Get(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Get of a new Blob: %q, %v", got, err)
	}
}

// TestClusterRemovesACrashedMemberWithoutWaitingForFailTimeout: a member
// whose process is gone (connections closed, its address refusing new
// ones) is removed after DownTimeout, even when it led the membership
// group, not after FailTimeout (set here far beyond the test's wait).
func TestClusterRemovesACrashedMemberWithoutWaitingForFailTimeout(t *testing.T) {
	tc := &testCluster{t: t, reg: userRegistry()}
	t.Cleanup(func() {
		for _, s := range tc.servers {
			_ = s.Close()
		}
	})
	cc := ClusterConfig{ReplicationFactor: 2, Partitions: 8, FailTimeout: time.Minute, DownTimeout: 100 * time.Millisecond}
	first := tc.start(cc, "")
	cc.ReplicationFactor, cc.Partitions, cc.Join = 0, 0, []string{first.Addr()}
	tc.start(cc, "")
	tc.start(cc, "")
	tc.waitPlaced(3)
	c := tc.client()
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := c.Counter(fmt.Sprint("n", i)).Persistent().Add(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	// The bootstrapping member leads the membership group unless an
	// election moved it; stop whichever leads it.
	var leader *Server
	for _, s := range tc.servers {
		n := s.node
		n.do(func() {
			if mg := n.groups[gkey{0, 1}]; mg != nil && mg.lead == n.id {
				leader = s
			}
		})
	}
	if leader == nil {
		t.Fatal("no membership leader")
	}
	_ = leader.Close()
	tc.mu.Lock()
	for i, s := range tc.servers {
		if s == leader {
			tc.servers = append(tc.servers[:i], tc.servers[i+1:]...)
			break
		}
	}
	tc.mu.Unlock()
	tc.waitPlaced(2) // 20 s at most; FailTimeout is a minute
	for i := 0; i < 20; i++ {
		if v, err := c.Counter(fmt.Sprint("n", i)).Persistent().Add(ctx, 1); err != nil || v != 2 {
			t.Fatalf("n%d = %d, %v after the crash; want 2", i, v, err)
		}
	}
}

// TestClientLearnsTheLeaderFromAHint: a client whose view names a
// follower first (a view fetched during a failover) goes to the leader
// directly once a call was redirected there.
func TestClientLearnsTheLeaderFromAHint(t *testing.T) {
	tc := newTestCluster(t, 3, 2)
	c := tc.client()
	ctx := context.Background()
	ctr := c.Counter("hinted").Persistent()
	if _, err := ctr.Add(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.RefreshView(ctx)
	v := c.view.Load()
	p := partitionOf(TypeCounter, "hinted", v.Partitions)
	var leader uint64
	for _, s := range tc.servers {
		n := s.node
		n.do(func() {
			if g := n.groups[gkey{uint64(p) + 1, n.meta.Parts[p].Inc}]; g != nil && g.lead == n.id {
				leader = n.id
			}
		})
	}
	follower := v.Parts[p][0]
	if follower == leader {
		follower = v.Parts[p][1]
	}
	// Put the follower first, as a stale view would.
	nv := *v
	nv.Parts = append([][]uint64(nil), v.Parts...)
	nv.Parts[p] = []uint64{follower, leader}
	c.view.Store(&nv)
	if _, err := ctr.Add(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := c.view.Load().Parts[p][0]; got != leader {
		t.Fatalf("after a redirected call the view names member %d first; the leader is %d", got, leader)
	}
}
