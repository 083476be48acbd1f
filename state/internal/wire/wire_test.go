package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

func TestCallRoundTrip(t *testing.T) {
	c := Call{Type: "Map", Key: "k", Method: "Put", Flags: FlagPersistent, Init: []byte{1}, Args: [][]byte{[]byte("a"), {}, []byte("value")}}
	var buf []byte
	buf, off := StartFrame(buf, KindCall, 42)
	buf = AppendCall(buf, &c)
	FinishFrame(buf, off)
	f, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(buf)), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindCall || f.ID != 42 {
		t.Fatalf("frame = %v %d", f.Kind, f.ID)
	}
	got, err := DecodeCall(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("got %+v, want %+v", got, c)
	}
}

func TestOversizedFrameRefusedBeforeAllocating(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<31)
	// Only the header is present: if ReadFrame tried to allocate and read
	// the body it would fail with EOF, not ErrFrameTooLarge.
	_, buf, err := ReadFrame(bufio.NewReader(bytes.NewReader(hdr[:])), 1<<20, nil)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if cap(buf) != 0 {
		t.Fatalf("allocated %d bytes for a refused frame", cap(buf))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		_, _, _ = ReadFrame(bufio.NewReaderSize(bytes.NewReader(hdr[:]), 16), 1<<20, nil)
	}
	runtime.ReadMemStats(&after)
	// 100 refusals of a 2 GiB frame must cost a few KiB, not gigabytes.
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing 100 oversized frames allocated %d bytes", d)
	}
}

func TestHello(t *testing.T) {
	p := AppendHello(nil, "s3cret")
	if err := CheckHello(p, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := CheckHello(p, "s3cre"); err == nil {
		t.Fatal("wrong token accepted")
	}
	if err := CheckHello([]byte("GET / HTTP/1.1"), "s3cret"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeCallRejectsHugeArgCount(t *testing.T) {
	p := AppendString(nil, "T")
	p = AppendString(p, "k")
	p = AppendString(p, "m")
	p = append(p, 0)
	p = AppendBytes(p, nil)
	p = binary.AppendUvarint(p, 1<<40)
	if _, err := DecodeCall(p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// whatever decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	c := Call{Type: "AtomicLong", Key: "x", Method: "AddAndGet", Args: [][]byte{{0, 0, 0, 0, 0, 0, 0, 1}}}
	f.Add(AppendFrame(nil, KindCall, 1, AppendCall(nil, &c)))
	f.Add(AppendFrame(nil, KindReply, 7, AppendReply(nil, Reply{Code: CodeOK, Body: []byte("r")})))
	f.Add(AppendFrame(nil, KindHello, 0, AppendHello(nil, "tok")))
	f.Add(AppendFrame(nil, KindCancel, 9, nil))
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(AppendFrame(nil, KindRaft, 0, AppendRaftBatch(nil, []RaftMsg{{Group: 0, Inc: 1, Msg: []byte{8, 3}}, {Group: 5, Inc: 2, Msg: nil}})))
	f.Add(AppendFrame(nil, KindRaft, 0, []byte{0xff, 0xff, 0x03, 1, 1, 0x80}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for {
			var fr Frame
			var err error
			fr, buf, err = ReadFrame(r, 1<<16, buf)
			if err != nil {
				return
			}
			switch fr.Kind {
			case KindCall:
				cl, err := DecodeCall(fr.Payload)
				if err == nil {
					if again := AppendCall(nil, &cl); !bytes.Equal(again, fr.Payload) {
						// Non-canonical varints decode but re-encode shorter.
						if len(again) > len(fr.Payload) {
							t.Fatalf("re-encoded call grew: %x -> %x", fr.Payload, again)
						}
					}
				}
			case KindReply:
				rp, err := DecodeReply(fr.Payload)
				if err == nil && !bytes.Equal(AppendReply(nil, rp), fr.Payload) {
					t.Fatalf("reply round trip differs")
				}
			case KindHello:
				_ = CheckHello(fr.Payload, "tok")
			case KindRaft:
				ms, err := DecodeRaftBatch(fr.Payload)
				if err == nil {
					if len(ms) > len(fr.Payload)/3 {
						t.Fatalf("%d messages from %d bytes", len(ms), len(fr.Payload))
					}
					if again := AppendRaftBatch(nil, ms); len(again) > len(fr.Payload) {
						t.Fatalf("re-encoded raft batch grew: %x -> %x", fr.Payload, again)
					}
				}
			}
		}
	})
}

// TestEncodingPinned pins whole DSO frames to the bytes this protocol has
// always sent (captured before its framing moved to internal/frame).
func TestEncodingPinned(t *testing.T) {
	call, off := StartFrame(nil, KindCall, 0x0102030405060708)
	call = AppendCall(call, &Call{Type: "Map", Key: "k", Method: "Put", Flags: FlagPersistent, Init: []byte{1}, Args: [][]byte{[]byte("a")}})
	FinishFrame(call, off)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", AppendFrame(nil, KindHello, 0, AppendHello(nil, "tok")), "0000001401000000000000000047414c4544534f31746f6b"},
		{"call", call, "00000019030102030405060708034d6170016b03507574010101010161"},
		{"reply", AppendFrame(nil, KindReply, 300, AppendReply(nil, Reply{Code: CodeOK, Body: []byte("v")})), "0000000b04000000000000012c0076"},
	} {
		if h := hex.EncodeToString(c.got); h != c.want {
			t.Errorf("%s frame = %s, want %s", c.name, h, c.want)
		}
	}
}
