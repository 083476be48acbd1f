// Package gensort generates and validates sort-benchmark data in the layout of
// the gensort and valsort programs of the Sort Benchmark (sortbenchmark.org),
// version 1.5: 100-byte records whose first 10 bytes are the key.
//
// # Random numbers
//
// gensort draws one 128-bit number per record from the linear congruential
// generator X(k+1) = a·X(k) + c mod 2^128, X(0) = 0, with
// a = 0x2360ed051fc65da44385df649fccf645 and
// c = 0x4a696d47726179524950202020202001, and can jump ahead to any record.
// Record number n (a 128-bit number) uses R(n) = X(n+1). This package
// implements the same generator and jump-ahead, so any block of records can
// be made independently: Generate cuts the output into blocks, makes them in
// parallel and writes them in order, and the bytes do not depend on the
// parallelism.
//
// # Binary records (gensort default)
//
// Bytes 0–9, the key, are the 10 high-order bytes of R(n), big-endian. Bytes
// 10–99 are nine 10-byte groups; group k (1..9) is the 10 high-order bytes of
// R(n+k) XOR a fixed constant of gensort 1.5.
//
// # ASCII records (gensort -a)
//
//	bytes  0– 9  key: 10 printable characters ' '..'~'. With h and l the high
//	             and low 64 bits of R(n): byte i (0..7) is ' ' + (h / 95^i) mod 95,
//	             byte 8 is ' ' + l mod 95, byte 9 is ' ' + (l / 95) mod 95.
//	bytes 10–11  two spaces
//	bytes 12–43  the 128-bit record number, 32 upper-case hexadecimal digits
//	bytes 44–45  two spaces
//	bytes 46–97  filler: 13 groups of 4 equal upper-case hexadecimal digits,
//	             the nibbles of l from bits 48–51 down to bits 0–3
//	bytes 98–99  "\r\n"
//
// # Seed, start, and where this package differs from gensort
//
// Config.Start is gensort's -b (the first record number). Config.Seed has no
// gensort counterpart: it becomes the high 64 bits of the 128-bit record
// number, so each seed selects a disjoint window of 2^64 records of gensort's
// stream. With Seed 0 the output is byte-for-byte what gensort 1.5 writes for
// the same -b and count (binary, or -a for ASCII); with another seed the ASCII
// records show the full 128-bit record number, as gensort does for numbers
// beyond 2^64.
//
// Skewed data (Config.Skew) is this package's own design, not gensort -s:
// gensort's skew replaces up to 6 high key bytes with a few dozen prefixes
// but leaves full-key duplicates rare, while Gale's tests of range
// partitioning need heavy duplicates too. With s = bits 32–34 of l: s < 2
// (1/4 of the records) keeps the key; s in 2..4 (3/8) replaces the first 5
// key bytes with one hot prefix; s in 5..7 (3/8) replaces the whole key with
// key j of a pool of 16, j = the number of leading zero bits of bits 16–31 of
// l (at most 15), so key 0 alone takes about 3/16 of all records. The hot
// prefix and the pool are the keys of records (Seed XOR 2^63, 2^32) and
// (Seed XOR 2^63, j), so skewed ASCII keys stay printable.
//
// # Checksum and validation (valsort)
//
// The checksum of a set of records is the 128-bit sum of the CRC-32 (IEEE,
// zlib's crc32) of each 100-byte record, as in gensort -c and valsort: it does
// not depend on the order, so the checksum of a sort's input equals that of
// its output. Validate checks that keys never decrease (memcmp order), counts
// records and duplicates (records whose key equals the previous record's key,
// valsort's definition: on sorted data, records minus distinct keys), and
// keeps the first and last keys so that summaries of consecutive part files
// can be combined (valsort -o / -s). Unlike valsort, which requires at least
// one record, an empty input is valid and has an empty summary.
//
// Imports: the standard library and golang.org/x/sync/errgroup. Generate runs
// Config.Parallelism worker goroutines plus a feeder and a writer, all
// started and waited for inside the call; nothing else starts goroutines.
package gensort
