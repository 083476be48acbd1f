package wire

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// BenchmarkReadFrame reads Call frames back to back, reusing one buffer as
// the DSO server does.
func BenchmarkReadFrame(b *testing.B) {
	c := Call{Type: "AtomicLong", Key: "counter", Method: "AddAndGet", Args: [][]byte{{1}}}
	one, off := StartFrame(nil, KindCall, 7)
	one = AppendCall(one, &c)
	FinishFrame(one, off)
	const perStream = 256
	stream := bytes.Repeat(one, perStream)
	rd := bytes.NewReader(stream)
	br := bufio.NewReaderSize(rd, 64<<10)
	var buf []byte
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%perStream == 0 {
			rd.Reset(stream)
			br.Reset(rd)
		}
		var err error
		var f Frame
		f, buf, err = ReadFrame(br, 1<<20, buf)
		if err != nil || f.ID != 7 {
			b.Fatal(f, err)
		}
	}
}

// BenchmarkWriteFrame encodes a Call frame into a reused buffer, as the DSO
// client does.
func BenchmarkWriteFrame(b *testing.B) {
	c := Call{Type: "AtomicLong", Key: "counter", Method: "AddAndGet", Args: [][]byte{{1}}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var off int
		buf, off = StartFrame(buf[:0], KindCall, 7)
		buf = AppendCall(buf, &c)
		FinishFrame(buf, off)
		buf = AppendFrame(buf, KindCancel, 7, nil)
	}
	_, _ = io.Discard.Write(buf)
}
