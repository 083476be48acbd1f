// Package shuffle holds what map and reduce tasks agree on when data moves
// between stages: range partitioning by split points, and the limits that
// keep a sort's sample and split points small whatever the keys look like.
//
// Split points. A sort samples keys in its map tasks, and the driver turns
// the sample into the split points every map task range-partitions by
// (SplitPoints). Split points are carried compactly: equal points are kept
// once with the partition they lead to, and each point is cut to the
// shortest prefix that still separates it from the sampled key before it,
// so a sort of very long keys (one 50 MiB line) ships a few bytes of split
// points, not a copy of every key per task. Sample keys themselves are cut
// to SampleKeyLimit bytes by the samplers. Any increasing split points give
// a correct sort — records are ordered within and across partitions, and
// equal keys always share one — so cutting only moves partition
// boundaries, never the order of the output.
//
// Imports: the standard library only. Nothing here starts goroutines.
package shuffle
