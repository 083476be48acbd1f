// Package wal is the DSO's durable storage: a write-ahead log of
// checksummed, sequence-numbered records in segment files, a snapshot that
// covers every record up to a sequence number, and the rotation sequence
// that replaces old segments by a newer snapshot without a crash point that
// replays a record twice or drops one.
//
// A data directory holds
//
//	LOCK                   held (flock) by the one Log open on the directory
//	snapshot               the newest installed snapshot
//	snapshot.tmp           a snapshot being written (removed on Open)
//	wal-<first seq>.log    log segments, named by their first record's seq
//	*.damaged              bytes set aside by Repair
//
// A segment starts with a 20-byte header (magic "GALEWAL1", the seq of its
// first record, CRC-32C of both). A record is
//
//	uint32 body length | uint64 seq | uint32 CRC-32C(body) | uint32 CRC-32C(first 16 bytes)
//	body
//
// Sequence numbers are global and consecutive: each record's seq is the
// previous record's plus one, across segments. A snapshot file holds the
// seq it covers, so recovery is "load the snapshot, apply every record with
// a larger seq": a record already in the snapshot is never applied again,
// whatever step of a rotation a crash interrupted. Rotation is
//
//  1. Rotate: create and fsync the next segment (and the directory); later
//     appends go there. Everything before it has seq <= the returned seq.
//  2. InstallSnapshot(seq, data): write snapshot.tmp, fsync it, rename it
//     over snapshot, fsync the directory; then remove the segments whose
//     records are all <= seq, fsyncing the directory.
//
// A crash before step 2's rename leaves the old snapshot and every segment;
// after it, the new snapshot and segments it covers, which Open removes.
//
// A damaged log is never read past silently. Open tells a torn tail (the
// last segment ends inside a record, as a write interrupted by a crash
// leaves it, or in zero bytes) from damage: a torn tail is truncated, as
// the record was never wholly written; any other failed check (a checksum,
// a sequence number, a length, a record in an earlier segment) makes Open
// fail with a *CorruptError naming the file and byte offset. Repair then
// keeps every record before the damage and moves the rest into .damaged
// files, so nothing is deleted.
//
// A Log is safe for concurrent use. It starts no goroutines. Imports: the
// standard library only.
package wal
