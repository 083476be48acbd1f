package wire

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// BenchmarkReadFrame reads 64 KiB data frames back to back into fresh
// buffers, as Glider's connections do.
func BenchmarkReadFrame(b *testing.B) {
	benchmarkRead(b, Request{Op: OpStreamData, A: 3, Data: bytes.Repeat([]byte{'x'}, 64<<10)}, 64)
}

// BenchmarkReadFrameSmall reads small request frames, where the framing
// rather than copying bulk data is most of the cost.
func BenchmarkReadFrameSmall(b *testing.B) {
	benchmarkRead(b, Request{Op: OpLookup, Path: "/jobs/42/part-00017"}, 1024)
}

// benchmarkRead reads frames carrying r from a stream of perStream of them,
// rewound when exhausted.
func benchmarkRead(b *testing.B, r Request, perStream int) {
	one := AppendFrame(nil, KindRequest, 9, AppendRequest(nil, &r))
	stream := bytes.Repeat(one, perStream)
	rd := bytes.NewReader(stream)
	br := bufio.NewReaderSize(rd, 64<<10)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%perStream == 0 {
			rd.Reset(stream)
			br.Reset(rd)
		}
		f, n, err := ReadFrame(br, 1<<20)
		if err != nil || f.ID != 9 || n != len(one) {
			b.Fatal(f, n, err)
		}
	}
}

// BenchmarkWriteFrame writes a header, a request head and bulk data through
// a buffered writer, as Glider's connections do.
func BenchmarkWriteFrame(b *testing.B) {
	r := Request{Op: OpStreamData, A: 3, Data: bytes.Repeat([]byte{'x'}, 64<<10)}
	bw := bufio.NewWriterSize(io.Discard, 64<<10)
	var hdr, head []byte
	b.SetBytes(int64(HeaderSize + 4 + len(r.Data)))
	b.ReportAllocs()
	for b.Loop() {
		head = AppendRequestHead(head[:0], &r)
		hdr = AppendHeader(hdr[:0], KindRequest, 9, len(head)+len(r.Data))
		_, _ = bw.Write(hdr)
		_, _ = bw.Write(head)
		_, _ = bw.Write(r.Data)
		_ = bw.Flush()
	}
}
