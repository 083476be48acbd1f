package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func sampleRequests() []Request {
	return []Request{
		{Op: OpMkdir, Flags: FlagParents, Path: "/a/b"},
		{Op: OpCreateAction, Path: "/m", Name: "merge", Class: "active", Flags: FlagInterleave, Options: map[string]string{"combine": "int64-sum"}},
		{Op: OpWriteBlock, A: 7, B: 1 << 20, Data: []byte("hello block")},
		{Op: OpFreeBlocks, Namespace: "tenant", IDs: []uint64{1, 2, 1 << 40}},
		{Op: OpJoin, Name: "storage", Class: "dram", Addr: "127.0.0.1:9", A: 1024, B: 1 << 20},
		{Op: OpStreamRead, A: 3, C: 1 << 20},
	}
}

func sampleResponses() []Response {
	return []Response{
		{Code: CodeOK},
		{Code: CodeNotFound, Msg: "glider: /x: not found"},
		{Code: CodeOK, A: 9, B: 1 << 20},
		{Code: CodeOK, Nodes: []Node{{Kind: NodeFile, ID: 3, Size: 10, Path: "/f", Class: "dram", Blocks: []Block{{ID: 1, Server: 2, Addr: "a:1", Len: 10}}}, {Kind: NodeAction, Flags: FlagInterleave, Path: "/m", Type: "merge", Addr: "b:2"}}},
		{Code: CodeOK, Blocks: []Block{{ID: 5, Server: 1, Addr: "x:1"}}},
		{Code: CodeOK, Stats: &Stats{StorageServers: 2, ActiveServers: 1, BytesStored: 1 << 30, Blocks: 1024, ActionBytes: 24, Actions: 3}},
		{Code: CodeOK, Flags: FlagEOF, Data: []byte("chunk")},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range sampleRequests() {
		got, err := DecodeRequest(AppendRequest(nil, &r))
		if err != nil {
			t.Fatalf("%v: %v", r.Op, err)
		}
		if len(got.Data) == 0 {
			got.Data = nil
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, r := range sampleResponses() {
		got, err := DecodeResponse(AppendResponse(nil, &r))
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if len(got.Data) == 0 {
			got.Data = nil
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestFrameLimitCheckedBeforeAllocating(t *testing.T) {
	// A header declaring 4 GiB must be refused from the header alone.
	b := []byte{0xff, 0xff, 0xff, 0xff, byte(KindRequest)}
	_, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	frame := AppendFrame(nil, KindRequest, 42, AppendRequest(nil, &Request{Op: OpLookup, Path: "/x"}))
	f, n, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame)), 1<<20)
	if err != nil || f.ID != 42 || f.Kind != KindRequest || n != len(frame) {
		t.Fatalf("frame %+v n=%d err=%v", f, n, err)
	}
	if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame[:len(frame)-1])), 1<<20); err == nil {
		t.Fatal("truncated frame decoded")
	}
}

func TestHello(t *testing.T) {
	h := Hello{Role: RoleClient, Namespace: "t1", Token: []byte("secret")}
	got, err := DecodeHello(AppendHello(nil, h))
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("got %+v err %v", got, err)
	}
	if _, err := DecodeHello([]byte("GALEDSO1xx")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("foreign magic: %v", err)
	}
	if err := CheckToken([]byte("a"), []byte("b")); !errors.Is(err, ErrBadToken) {
		t.Fatalf("CheckToken: %v", err)
	}
	if err := CheckToken([]byte("a"), []byte("a")); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic or
// allocate beyond what the input justifies, and whatever decodes must
// re-encode to something that decodes to the same message.
func FuzzDecode(f *testing.F) {
	for _, r := range sampleRequests() {
		f.Add(append([]byte{byte(KindRequest)}, AppendRequest(nil, &r)...))
	}
	for _, r := range sampleResponses() {
		f.Add(append([]byte{byte(KindResponse)}, AppendResponse(nil, &r)...))
	}
	f.Add(append([]byte{byte(KindHello)}, AppendHello(nil, Hello{Role: RoleServer, Token: []byte("k")})...))
	f.Add([]byte{byte(KindRequest), 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		p := b[1:]
		switch Kind(b[0] % 3) {
		case 0:
			r, err := DecodeRequest(p)
			if err != nil {
				return
			}
			r2, err := DecodeRequest(AppendRequest(nil, &r))
			if err != nil {
				t.Fatalf("re-decode request: %v", err)
			}
			if len(r.Data) == 0 {
				r.Data = nil
			}
			if len(r2.Data) == 0 {
				r2.Data = nil
			}
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("request changed:\n%+v\n%+v", r, r2)
			}
		case 1:
			r, err := DecodeResponse(p)
			if err != nil {
				return
			}
			r2, err := DecodeResponse(AppendResponse(nil, &r))
			if err != nil {
				t.Fatalf("re-decode response: %v", err)
			}
			if len(r.Data) == 0 {
				r.Data = nil
			}
			if len(r2.Data) == 0 {
				r2.Data = nil
			}
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("response changed:\n%+v\n%+v", r, r2)
			}
		case 2:
			_, _ = DecodeHello(p)
			_, _, _ = ReadFrame(bufio.NewReader(bytes.NewReader(p)), 1<<16)
		}
	})
}

// TestEncodingPinned pins whole Glider frames to the bytes this protocol
// has always sent (captured before its framing moved to internal/frame).
func TestEncodingPinned(t *testing.T) {
	r := Request{Op: OpStreamData, A: 3, Data: []byte("xyz")}
	head := AppendRequestHead(nil, &r)
	data := append(append(AppendHeader(nil, KindRequest, 0x0102030405060708, len(head)+len(r.Data)), head...), r.Data...)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", AppendFrame(nil, KindHello, 0, AppendHello(nil, Hello{Role: RoleClient, Namespace: "t1", Token: []byte("tok")})), "00000019010000000000000000474c4944455230310102743103746f6b"},
		{"stream data", data, "000000190301020304050607082b00030000000000000000000378797a"},
		{"response", AppendFrame(nil, KindResponse, 300, AppendResponse(nil, &Response{Code: CodeNotFound, Msg: "no"})), "0000001404000000000000012c0100026e6f000000000000"},
	} {
		if h := hex.EncodeToString(c.got); h != c.want {
			t.Errorf("%s frame = %s, want %s", c.name, h, c.want)
		}
	}
}
