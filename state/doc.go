// Package state is Gale's layer of distributed shared objects (DSO), after
// the Crucial design: linearizable objects whose methods run on the storage
// servers, plus coordination objects that let serverless functions
// synchronize like threads.
//
// A Server holds objects keyed by (type, key), created on their first call.
// Each call runs atomically on its object (one lock per object), so calls on
// one object are linearizable while calls on different objects run in
// parallel. Blocking calls (CyclicBarrier.Await, Semaphore.Acquire,
// Future.Get, CountDownLatch.Await) park only their caller: the server keeps
// no goroutine and no lock for a waiting call and answers it when another
// call releases it, or withdraws it when the caller cancels its context or
// its connection drops. A caller that cancels learns the server's verdict:
// it gets its context's error only if the call was withdrawn, and the
// call's result if the call completed first.
//
// A Client knows every server and places objects by consistent hashing
// (package ring), so no lookup precedes a call. It keeps one authenticated
// connection per server and pipelines calls on it; every call takes a
// context. Built-in objects have typed handles (Client.AtomicLong,
// Client.Map, Client.CyclicBarrier, ...). User-defined objects are Go types
// registered by name in a Registry linked into the server's binary and
// called through Object with Call or Invoke:
//
//	reg := state.NewRegistry()
//	state.RegisterType[Centroids](reg, "Centroids")
//	srv, _ := state.NewServer(state.ServerConfig{Token: tok, Registry: reg})
//	go srv.Serve(ctx)
//	defer srv.Close()
//
//	c, _ := state.Dial(ctx, state.ClientConfig{Servers: []string{srv.Addr()}, Token: tok})
//	defer c.Close()
//	n, _ := c.AtomicLong("hits").AddAndGet(ctx, 1)
//	total, _ := state.Call[int64](ctx, c.Object("Centroids", "km"), "Merge", sums, counts)
//
// Objects are ephemeral unless created through a Persistent() handle on a
// server with a DataDir: then every mutating call is appended to a
// checksummed write-ahead log (state/internal/wal) before it is answered,
// and a snapshot replaces the log at start-up, when the log grows past
// CheckpointBytes, and at Close, by a sequence no crash can make replay a
// record twice or drop one. A damaged log refuses start-up (RepairDataDir
// keeps every record before the damage); a data directory is locked by the
// one server using it.
//
// The wire protocol (state/internal/wire) is length-prefixed binary frames
// with request ids; a connection must present the shared token first
// (compared in constant time) and frames above the limit are refused from
// their header. docs/state.md describes the model in full.
//
// With ServerConfig.Cluster the server is a member of a replicated cluster:
// persistent objects are kept by ReplicationFactor members with etcd's raft
// (one group per partition, plus a membership group), and clients need one
// member's address (docs/state.md, "Replication").
//
// Imports: the standard library, internal/coder, state/internal/wire,
// state/internal/wal, state/ring, xxhash, go.etcd.io/raft/v3.
// Goroutines: Server.Serve runs the accept loop on the caller's goroutine;
// each connection has a reader goroutine (which also runs built-in calls), a
// writer goroutine and one short-lived goroutine per user-defined method call
// in flight; with a DataDir, Serve also runs one checkpoint goroutine. A
// cluster member also runs one replication loop and one writer goroutine per
// peer (plus a connection reader each), stopped and waited for by Close. All
// are counted by the Server and waited for by Close. A Client
// has one reader goroutine per connection, waited for by Client.Close.
package state
