// Package planner compiles a logical pipeline graph into physical stages.
//
// The input is a Logical graph: sources, narrow transforms (map, flat map,
// filter), flattens, shuffles (group by key, combine per key) and sinks,
// each naming the kernels that implement it. Compile fuses every chain of
// narrow transforms (including fan-out and flatten) into the stage that
// produces its input, cuts stages at shuffles, lifts combiners into the
// producing stages (partial aggregation before the shuffle) and chooses a
// partition count for each shuffle from the estimated bytes that reach it.
// Explain renders the physical plan for people.
//
// The planner is pure: no I/O, no goroutines, no clock. Sizes of inputs are
// measured by the caller and passed in the Logical graph. It may import only
// the standard library.
//
//	plan, err := planner.Compile(logical, planner.Options{Parallelism: 8})
//	if err != nil { ... }
//	fmt.Print(plan.Explain())
package planner
