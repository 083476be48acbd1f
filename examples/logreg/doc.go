// Package logreg trains a logistic regression model by plain gradient
// descent with a fixed step on Gale, in the same three modes as package
// kmeans:
//
//   - ModeShared (the default): one gale.Iterate stage of Workers
//     long-running workers, each loading its partition once. Every round a
//     worker reads the weights from a user-defined shared object
//     (Weights), computes the sub-gradient and the log-loss of its points,
//     and sends them to Weights.Merge, which runs on the DSO server; once
//     every worker's sub-gradient is in, the server takes the gradient
//     step. The worker then waits at a CyclicBarrier and advances the
//     shared iteration counter (package rounds), so a restarted worker
//     resumes where the job is.
//   - ModeStages: every round a separate Gale job that re-reads the data,
//     computes the sub-gradients in the map tasks (the weights shipped as a
//     run-time parameter), sums them through the shuffle and brings the sum
//     back; the driver takes the step.
//   - ModeLocal: the single-machine reference, one goroutine per worker.
//
// Input: text files of one labeled point per line, the label (0 or 1)
// then the features, comma-separated. Run validates the whole input first
// and names the file and line of the first problem.
//
// The model is w (one weight per feature) and a bias b; the prediction of
// x is p = σ(w·x + b). Round r computes, with the weights of round r, the
// mean log-loss L = mean(−y log p − (1−y) log(1−p)) and its gradient, then
// steps: (w, b) ← (w, b) − Step·∇L. For a step below 4/λ, λ the largest
// eigenvalue of the features' second-moment matrix (with the bias's
// constant 1), the loss decreases every round.
//
// A worker binary must call Register with a pipeline. Run starts
// goroutines only in ModeLocal, and waits for them.
package logreg
