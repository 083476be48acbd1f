// Package extsort sorts a stream of byte-slice records under a memory budget,
// spilling sorted runs to local files and merging them back.
//
// A record is an opaque byte slice; a caller-supplied function extracts its
// key, and records are ordered by key bytes (bytes.Compare), ties kept in
// arrival order (the sort is stable). This is the building block of Gale's
// sort: a reduce task, or a glider sort-collect action, feeds the records of
// its key range to a Sorter and streams them out in order.
//
// Minimal use:
//
//	s, err := extsort.New(extsort.Config{MemoryBytes: 64 << 20}, func(rec []byte) []byte { return rec[:10] })
//	if err != nil { ... }
//	defer s.Close() // removes every spill file, whatever happened
//	for rec := range input {
//		if err := s.Add(rec); err != nil { ... }
//	}
//	err = s.Sort(ctx, func(rec []byte) error { _, err := out.Write(rec); return err })
//
// Memory. Add copies each record into an arena of fixed-size chunks and keeps
// a 24-byte reference per record (an 8-byte key prefix, the record's place in
// the arena, its length and its key length). The budget covers the arena
// chunks as allocated (including unused chunk tails) plus the reference slice
// capacity; when the next record does not fit, the buffer is sorted and
// written to a run file. A record larger than the whole budget is written
// alone as a one-record run. Outside the budget the Sorter holds a fixed
// 256 KiB write buffer and, while merging, one read buffer per merged run of
// clamp(MemoryBytes/(2·MergeFanIn), 4 KiB, 1 MiB) plus each run's current
// record; so the Sorter's heap stays below about 1.5 × MemoryBytes + 1 MiB
// plus the largest record per merged run; growing the reference slice
// briefly holds its old copy as well. Stats reports the peak of the budgeted
// part. The buffer is sorted in place (an MSD radix sort on an 8-byte key
// prefix finished by a comparison sort), so sorting needs no extra memory.
//
// Spill files live in a private directory created (lazily, at the first
// spill) under Config.TempDir and removed by Sort when it returns and by
// Close, on success and on every error path. Run files are length-prefixed
// (uvarint length, then the record bytes); the reader checks each run's record
// count so a truncated run is an error, never silently short output.
//
// Imports: the standard library only. A Sorter starts no goroutines and is not
// safe for concurrent use: one goroutine owns it from New to Close.
package extsort
