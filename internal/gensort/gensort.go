package gensort

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"
)

// RecordSize is the size of a record in bytes.
const RecordSize = 100

// KeySize is the size of a record's key, its first bytes.
const KeySize = 10

// blockRecords is the number of records one worker makes at a time (1 MB).
const blockRecords = 10000

var (
	// ErrInvalidConfig is wrapped by errors from Config.Validate.
	ErrInvalidConfig = errors.New("gensort: invalid config")
	// ErrUnordered means a record's key is below the previous record's key.
	ErrUnordered = errors.New("gensort: records out of order")
	// ErrTruncated means the input ends inside a record.
	ErrTruncated = errors.New("gensort: truncated record")
)

// Config describes the records Generate writes.
type Config struct {
	// Count is the number of records to write.
	Count int64
	// Seed selects the high 64 bits of the 128-bit record numbers, i.e. a
	// disjoint 2^64-record window of gensort's stream; 0 is gensort itself.
	Seed uint64
	// Start is the first record number (gensort -b), default 0. Part files
	// of one data set use the same Seed and consecutive Start ranges.
	Start int64
	// ASCII writes printable records (gensort -a) instead of binary ones.
	ASCII bool
	// Skew makes many equal keys and a hot key prefix (see the package
	// documentation; not gensort -s).
	Skew bool
	// Parallelism is the number of generating goroutines; default
	// runtime.GOMAXPROCS(0). The output does not depend on it.
	Parallelism int
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("Count is %d: must be 0 or more", c.Count))
	}
	if c.Start < 0 {
		errs = append(errs, fmt.Errorf("Start is %d: must be 0 or more", c.Start))
	}
	if c.Parallelism < 0 {
		errs = append(errs, fmt.Errorf("Parallelism is %d: must be positive (or 0 for GOMAXPROCS)", c.Parallelism))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// Checksum is the order-independent checksum of a set of records: the
// 128-bit sum of the CRC-32 (IEEE) of each record, as gensort -c and valsort
// compute it.
type Checksum struct{ Hi, Lo uint64 }

// Add returns c plus the CRC-32 of rec.
func (c Checksum) Add(rec []byte) Checksum {
	return c.Plus(Checksum{Lo: uint64(crc32.ChecksumIEEE(rec))})
}

// Plus returns the sum of two checksums (of disjoint sets of records).
func (c Checksum) Plus(o Checksum) Checksum {
	lo, carry := bits.Add64(c.Lo, o.Lo, 0)
	return Checksum{Hi: c.Hi + o.Hi + carry, Lo: lo}
}

// String formats the checksum in hexadecimal without leading zeros.
func (c Checksum) String() string {
	if c.Hi != 0 {
		return fmt.Sprintf("%x%016x", c.Hi, c.Lo)
	}
	return fmt.Sprintf("%x", c.Lo)
}

// xorBinary are gensort 1.5's constants for value bytes 10–99 of binary
// records: group k (1..9) is R(n+k) XOR xorBinary[k-1], high 10 bytes.
var xorBinary = [9]u128{
	{0xF0E8E4E2E1D8D4D2, 0xD1CC000000000000},
	{0xCAC9C6C5C3B8B4B2, 0xB1AC000000000000},
	{0xAAA9A6A5A39C9A99, 0x9695000000000000},
	{0x938E8D8B87787472, 0x716C000000000000},
	{0x6A696665635C5A59, 0x5655000000000000},
	{0x534E4D4B473C3A39, 0x3635000000000000},
	{0x332E2D2B271E1D1B, 0x170F000000000000},
	{0xC8C4C2C198949291, 0x8CE0000000000000},
	{0x170F332E2D2B271E, 0x1D1B000000000000},
}

func put10(dst []byte, x u128) {
	binary.BigEndian.PutUint64(dst[0:8], x.hi)
	binary.BigEndian.PutUint16(dst[8:10], uint16(x.lo>>48))
}

func putASCIIKey(dst []byte, r u128) {
	h := r.hi
	for i := range 8 {
		dst[i] = ' ' + byte(h%95)
		h /= 95
	}
	dst[8] = ' ' + byte(r.lo%95)
	dst[9] = ' ' + byte(r.lo/95%95)
}

const hexDigits = "0123456789ABCDEF"

func putASCIIRecord(dst []byte, r, recNum u128) {
	putASCIIKey(dst, r)
	dst[10], dst[11] = ' ', ' '
	for i := range 16 {
		dst[12+i] = hexDigits[recNum.hi>>(60-4*i)&0xF]
		dst[28+i] = hexDigits[recNum.lo>>(60-4*i)&0xF]
	}
	dst[44], dst[45] = ' ', ' '
	for g := range 13 {
		d := hexDigits[r.lo>>(48-4*g)&0xF]
		dst[46+4*g], dst[47+4*g], dst[48+4*g], dst[49+4*g] = d, d, d, d
	}
	dst[98], dst[99] = '\r', '\n'
}

// skewKeys holds the hot prefix and the pool of repeated keys.
type skewKeys struct {
	hot  [KeySize]byte
	pool [16][KeySize]byte
}

func newSkewKeys(seed uint64, ascii bool) *skewKeys {
	sk := &skewKeys{}
	keyOf := func(dst []byte, n u128) {
		r := randFor(n)
		if ascii {
			putASCIIKey(dst, r)
		} else {
			put10(dst, r)
		}
	}
	base := seed ^ 1<<63
	keyOf(sk.hot[:], u128{base, 1 << 32})
	for j := range sk.pool {
		keyOf(sk.pool[j][:], u128{base, uint64(j)})
	}
	return sk
}

func (sk *skewKeys) apply(key []byte, r u128) {
	switch s := r.lo >> 32 & 7; {
	case s < 2:
	case s < 5:
		copy(key[:5], sk.hot[:5])
	default:
		j := min(bits.LeadingZeros16(uint16(r.lo>>16)), 15)
		copy(key, sk.pool[j][:])
	}
}

// genBlock fills buf with records first, first+1, ... (len(buf)/RecordSize
// of them) and returns their checksum.
func genBlock(buf []byte, first u128, cfg *Config, sk *skewKeys) Checksum {
	n := len(buf) / RecordSize
	var sum Checksum
	if cfg.ASCII {
		r := randFor(first)
		num := first
		for i := range n {
			rec := buf[i*RecordSize : (i+1)*RecordSize]
			putASCIIRecord(rec, r, num)
			if sk != nil {
				sk.apply(rec[:KeySize], r)
			}
			sum = sum.Add(rec)
			r = nextRand(r)
			num = num.add(u128{0, 1})
		}
		return sum
	}
	// Binary: record n needs R(n)..R(n+9); keep them in a ring.
	var ring [10]u128
	ring[0] = randFor(first)
	for k := 1; k < 10; k++ {
		ring[k] = nextRand(ring[k-1])
	}
	head := 0
	for i := range n {
		rec := buf[i*RecordSize : (i+1)*RecordSize]
		r := ring[head]
		put10(rec[0:10], r)
		for k := 1; k < 10; k++ {
			x := ring[(head+k)%10]
			x.hi ^= xorBinary[k-1].hi
			x.lo ^= xorBinary[k-1].lo
			put10(rec[10*k:10*k+10], x)
		}
		if sk != nil {
			sk.apply(rec[:KeySize], r)
		}
		sum = sum.Add(rec)
		ring[head] = nextRand(ring[(head+9)%10])
		head = (head + 1) % 10
	}
	return sum
}

type block struct {
	buf []byte
	sum Checksum
}

// Generate writes cfg.Count records to w and returns their checksum. The
// output depends only on Count, Seed, Start, ASCII and Skew. Blocks of 10,000
// records are made by cfg.Parallelism goroutines and written in order; at
// most 2 × Parallelism blocks (1 MB each) are in flight. Generate returns the
// first error from w or ctx; the goroutines it starts have all stopped when
// it returns.
func Generate(ctx context.Context, w io.Writer, cfg Config) (Checksum, error) {
	if err := cfg.Validate(); err != nil {
		return Checksum{}, err
	}
	workers := cfg.Parallelism
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var sk *skewKeys
	if cfg.Skew {
		sk = newSkewKeys(cfg.Seed, cfg.ASCII)
	}
	base := u128{cfg.Seed, uint64(cfg.Start)}
	nblocks := (cfg.Count + blockRecords - 1) / blockRecords
	depth := int64(2 * workers)

	g, gctx := errgroup.WithContext(ctx)
	tokens := make(chan struct{}, depth)
	jobs := make(chan int64)
	slots := make([]chan block, depth)
	for i := range slots {
		slots[i] = make(chan block, 1)
	}
	pool := sync.Pool{New: func() any { return make([]byte, blockRecords*RecordSize) }}

	g.Go(func() error { // feeder: bounds the blocks in flight
		defer close(jobs)
		for b := int64(0); b < nblocks; b++ {
			select {
			case tokens <- struct{}{}:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
			select {
			case jobs <- b:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for b := range jobs {
				n := min(blockRecords, cfg.Count-b*blockRecords)
				buf := pool.Get().([]byte)[:n*RecordSize]
				sum := genBlock(buf, base.add(u128{0, uint64(b * blockRecords)}), &cfg, sk)
				select {
				case slots[b%depth] <- block{buf, sum}:
				case <-gctx.Done():
					return context.Cause(gctx)
				}
			}
			return nil
		})
	}
	var total Checksum
	g.Go(func() error { // writer: in block order
		for b := int64(0); b < nblocks; b++ {
			var blk block
			select {
			case blk = <-slots[b%depth]:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
			if _, err := w.Write(blk.buf); err != nil {
				return fmt.Errorf("gensort: write records %d..%d: %w", cfg.Start+b*blockRecords, cfg.Start+b*blockRecords+int64(len(blk.buf)/RecordSize)-1, err)
			}
			total = total.Plus(blk.sum)
			pool.Put(blk.buf[:cap(blk.buf)])
			<-tokens
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return Checksum{}, err
	}
	return total, nil
}
