// Package kmeans clusters points with Lloyd's k-means algorithm on Gale, in
// three modes that compute the same answer:
//
//   - ModeShared (the default) is Crucial's k-means (its Listing 4.5): one
//     gale.Iterate stage of Workers long-running workers, each loading its
//     partition once. Every round a worker reads the centroids from a
//     user-defined shared object (Centroids), assigns its points, and sends
//     its partial sums and counts to Centroids.Merge, which runs on the DSO
//     server; it adds its share of the cost (the sum of squared distances,
//     the job's global delta) to the shared Delta object, waits at a
//     CyclicBarrier, and advances the shared iteration counter with
//     CompareAndSet (package rounds). A worker that fails is restarted by
//     the engine and resumes from the counter; Merge and Delta.Update take
//     each worker's contribution to a round exactly once, so the answer is
//     the same.
//   - ModeStages is the stateless-functions baseline (PyWren, Lithops):
//     every round is a separate Gale job that re-reads and re-parses the
//     input, assigns points to the centroids it receives as a run-time
//     parameter (gale.FlatMapWith), sums per centroid through the shuffle
//     (gale.CombinePerKey) and brings the sums back (gale.Collect).
//   - ModeLocal is the single-machine reference: the points in memory, one
//     goroutine per worker over contiguous slices.
//
// Input: text files of one point per line, comma-separated coordinates
// (package dataset). Run validates the whole input before the first round
// (the same number of coordinates on every line, finite numbers, K no
// larger than the number of points) and names the file and line of the
// first problem. The initial centroids are the first K points of a seeded
// shuffle, the same in every mode.
//
// Round r assigns every point to its nearest centroid of round r (ties to
// the lowest index), records the cost of that assignment, and moves every
// centroid to the mean of its points (a centroid with no points stays). The
// run stops after Iterations rounds, or earlier once the relative decrease
// of the cost falls to Tolerance.
//
// A worker binary (process backend) must build the job's pipelines to
// register their kernels: call Register with a pipeline. Run starts
// goroutines only in ModeLocal, and waits for them; the embedded DSO server
// is stopped before Run returns.
package kmeans
