// Package glider is Gale's ephemeral computational storage: a store whose
// namespace holds, besides directories and files, actions — user-defined
// stateful objects fed and drained through the same streamed I/O as files,
// so a reduce, a sort or a filter can run next to the data instead of in a
// worker (after Glider, chapter 5 of Barcelona-Pons's thesis).
//
// Three server roles make a cluster: a metadata server (Meta) keeps every
// tenant's namespace tree, the block map of files, the placement of actions
// and the membership; storage servers (Storage) hold file blocks in memory
// (1 MiB by default) for one storage class; active servers (Active) host
// actions in a fixed number of slots, placed round-robin. Servers join
// through the metadata server when they start and leave when they stop.
// Cluster runs them all in one process on loopback (the embedded default);
// ServeRole runs one of them (gale glider serve --role meta|storage|active).
//
// A Client talks to the metadata server once per node (create, lookup,
// allocate blocks, commit) and then streams chunks straight to the storage
// or active server, with several pipelined requests in flight. A file
// becomes visible only when its writer's Close commits it. An action runs
// one method at a time; with interleaving, a method waiting for stream data
// yields to another method of the same action.
//
//	cl, _ := glider.NewCluster(glider.DefaultClusterConfig())
//	_ = cl.Start(ctx)
//	defer cl.Close()
//	c, _ := cl.Dial(ctx, "tenant")
//	defer c.Close()
//
//	_, _ = c.CreateAction(ctx, "/sum", glider.ActionMerge, glider.ActionOptions{
//		Options: map[string]string{"combine": glider.CombineInt64Sum}})
//	w, _ := c.ActionWriter(ctx, "/sum") // one per map task
//	w.Write(glider.AppendRecord(nil, []byte("k"), binary.AppendVarint(nil, 1)))
//	err := w.Close() // the action's OnWrite result
//	merged, _ := c.ReadAction(ctx, "/sum") // records sorted by key
//
// Files are replaced in one step with Client.Replace and renamed with
// Client.Rename; a FileReader seeks. Package glider/gliderstore builds an
// object store (glider:// URLs in Gale) on them.
//
// Namespaces belong to tenants: a client presents NamespaceToken(secret,
// namespace) and sees only that namespace, at every server. docs/glider.md
// describes the protocol, the concurrency and failure models and the
// accounting.
//
// Imports: the standard library, glider/internal/wire and shuffle (the
// record framing merge and sort actions read and write).
//
// Goroutines: each server's Serve runs its accept loop on the caller's
// goroutine; every accepted connection has one reader goroutine, and the
// active server one goroutine per open stream (running the action's
// method) plus one per create or delete; the metadata server one per
// operation that calls other servers. All are counted by the server and
// waited for by its Close. A Client has one reader goroutine per
// connection, waited for by Client.Close. Cluster owns the goroutines
// serving its servers, waited for by Cluster.Close.
package glider
