// Package shuffle is the one home of what map and reduce tasks agree on
// when data moves between stages: the record framing, the partitioners,
// sort split points and the shuffle object layout. The object-store
// shuffle's writer and reader are in shuffle/objects, the external sorter
// reduce tasks sort with in shuffle/extsort. The engine, the root
// package's kernels, Glider's merge and sort actions and the Beam worker
// all use these, so a change to a partitioner or to the format is a
// change to this package alone.
//
// Records. A partition is a sequence of records; a record is a sequence
// of fields, each a uvarint length then its bytes (AppendField,
// ReadField). Keyed shuffles write key-value records (AppendRecord,
// ReadRecord, RecordReader), the format Glider's actions stream.
//
// Partitioners. Keyed shuffles partition by HashPartition of the encoded
// key (xxHash64 modulo the partition count). A sort range-partitions by
// split points (Splits.Partition).
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
// Objects. A map task's partitions of one shuffle are one object: the
// partitions back to back, a footer of their lengths, and a trailer with
// the magic "GALESHF" and a version byte (NewObject, ParseFooter; see
// layout.go). Reducers read one partition of an object with one ranged
// read (a Segment), located by the Ranges the writer returned.
//
// Imports: the standard library and github.com/cespare/xxhash/v2. Nothing
// here starts goroutines.
package shuffle
