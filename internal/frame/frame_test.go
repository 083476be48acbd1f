package frame

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"testing"
)

// kind is a protocol's kind type as the wire packages declare theirs.
type kind uint8

const lastKind kind = 6

// TestEncodingPinned pins the bytes of a frame, written each of the three
// ways, to the format both Gale protocols have always used: a big-endian
// uint32 length of what follows, the kind byte, a big-endian uint64 id and
// the payload. Changing any of them breaks every deployed peer.
func TestEncodingPinned(t *testing.T) {
	const want = "0000000b" + "03" + "0102030405060708" + "6869" // len 11, kind 3, id, "hi"
	const id = 0x0102030405060708
	payload := []byte("hi")

	appended := Append(nil, kind(3), id, payload)
	started, off := Start([]byte(nil), kind(3), id)
	started = append(started, payload...)
	if n := Finish(started, off); n != 11 {
		t.Errorf("Finish = %d, want 11", n)
	}
	header := append(AppendHeader(nil, kind(3), id, len(payload)), payload...)
	for name, got := range map[string][]byte{"Append": appended, "Start/Finish": started, "AppendHeader": header} {
		if h := hex.EncodeToString(got); h != want {
			t.Errorf("%s = %s, want %s", name, h, want)
		}
	}

	// Frames appended after others, an empty payload, and the largest id.
	got := Append([]byte{0xaa}, kind(1), 0, nil)
	got, off = Start(got, kind(6), ^uint64(0))
	Finish(got, off)
	if h, w := hex.EncodeToString(got), "aa"+"00000009"+"01"+"0000000000000000"+"00000009"+"06"+"ffffffffffffffff"; h != w {
		t.Errorf("two frames = %s, want %s", h, w)
	}
}

func TestReadRoundTrip(t *testing.T) {
	var stream []byte
	payloads := [][]byte{[]byte("first"), nil, bytes.Repeat([]byte{7}, 1000), []byte("last")}
	for i, p := range payloads {
		stream = Append(stream, kind(i+1), uint64(100+i), p)
	}

	// Read, reusing one buffer: it grows once, for the 1000-byte payload.
	br := bufio.NewReader(bytes.NewReader(stream))
	var buf []byte
	for i, p := range payloads {
		var f Frame[kind]
		var err error
		f, buf, err = Read(br, 1<<20, lastKind, buf)
		if err != nil {
			t.Fatalf("Read frame %d: %v", i, err)
		}
		if f.Kind != kind(i+1) || f.ID != uint64(100+i) || !bytes.Equal(f.Payload, p) {
			t.Fatalf("Read frame %d = %d %d %q", i, f.Kind, f.ID, f.Payload)
		}
		if len(f.Payload) > 0 && &f.Payload[0] != &buf[HeaderSize] {
			t.Fatalf("Read frame %d: payload does not alias the returned buffer", i)
		}
	}
	if cap(buf) != HeaderSize+1000 {
		t.Errorf("buffer capacity %d, want %d (reused, grown once)", cap(buf), HeaderSize+1000)
	}
	if _, _, err := Read(br, 1<<20, lastKind, buf); err != io.EOF {
		t.Fatalf("Read at the end: %v, want io.EOF", err)
	}

	// ReadFresh: every payload in its own buffer, sizes accounted.
	br = bufio.NewReader(bytes.NewReader(stream))
	var got []Frame[kind]
	total := 0
	for {
		f, n, err := ReadFresh(br, 1<<20, lastKind)
		if err == io.EOF && n == 0 {
			break
		}
		if err != nil {
			t.Fatalf("ReadFresh: %v", err)
		}
		total += n
		got = append(got, f)
	}
	if total != len(stream) || len(got) != len(payloads) {
		t.Fatalf("ReadFresh read %d frames, %d bytes; want %d, %d", len(got), total, len(payloads), len(stream))
	}
	for i, f := range got {
		if f.Kind != kind(i+1) || f.ID != uint64(100+i) || !bytes.Equal(f.Payload, payloads[i]) {
			t.Fatalf("ReadFresh frame %d = %d %d %q", i, f.Kind, f.ID, f.Payload)
		}
	}
	// Fresh buffers: overwriting one frame's payload leaves the others.
	got[0].Payload[0] = 'X'
	if string(got[3].Payload) != "last" {
		t.Fatal("ReadFresh payloads share a buffer")
	}
}

func TestReadRefusesBeforeAllocating(t *testing.T) {
	// Only the length is present: a reader that allocated and read the body
	// would fail with EOF, not ErrTooLarge.
	hdr := []byte{0x80, 0, 0, 0} // 2 GiB
	_, buf, err := Read(bufio.NewReader(bytes.NewReader(hdr)), 1<<20, lastKind, nil)
	if !errors.Is(err, ErrTooLarge) || cap(buf) != 0 {
		t.Fatalf("Read: err %v, buffer cap %d; want ErrTooLarge and no buffer", err, cap(buf))
	}
	_, n, err := ReadFresh(bufio.NewReader(bytes.NewReader(hdr)), 1<<20, lastKind)
	if !errors.Is(err, ErrTooLarge) || n != LengthSize {
		t.Fatalf("ReadFresh: err %v, n %d; want ErrTooLarge, %d", err, n, LengthSize)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		_, _, _ = Read(bufio.NewReaderSize(bytes.NewReader(hdr), 16), 1<<20, lastKind, nil)
		_, _, _ = ReadFresh(bufio.NewReaderSize(bytes.NewReader(hdr), 16), 1<<20, lastKind)
	}
	runtime.ReadMemStats(&after)
	// 200 refusals of a 2 GiB frame must cost a few KiB, not gigabytes.
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing 200 oversized frames allocated %d bytes", d)
	}
	// The limit is inclusive.
	f := Append(nil, kind(2), 1, []byte("abc"))
	if _, _, err := Read(bufio.NewReader(bytes.NewReader(f)), len(f)-LengthSize, lastKind, nil); err != nil {
		t.Fatalf("frame at the limit: %v", err)
	}
	if _, _, err := Read(bufio.NewReader(bytes.NewReader(f)), len(f)-LengthSize-1, lastKind, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("frame over the limit: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	good := Append(nil, kind(2), 9, []byte("payload"))
	for _, c := range []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"partial length", good[:2], io.ErrUnexpectedEOF},
		{"partial body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"length below header", []byte{0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0}, ErrMalformed},
		{"kind 0", Append(nil, kind(0), 1, nil), ErrMalformed},
		{"kind above last", Append(nil, lastKind+1, 1, nil), ErrMalformed},
	} {
		_, _, err := Read(bufio.NewReader(bytes.NewReader(c.input)), 1<<20, lastKind, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Read: %v, want %v", c.name, err, c.want)
		}
		_, _, err = ReadFresh(bufio.NewReader(bytes.NewReader(c.input)), 1<<20, lastKind)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: ReadFresh: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := Parse([]byte{1, 2, 3}, lastKind); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse of a short body: %v", err)
	}
}

func TestBuffered(t *testing.T) {
	f := Append(nil, kind(1), 1, []byte("0123456789"))
	r, w := io.Pipe()
	br := bufio.NewReader(r)
	go func() {
		_, _ = w.Write(f[:3])
		_, _ = w.Write(f[3 : len(f)-1])
		_, _ = w.Write(f[len(f)-1:])
		_ = w.Close()
	}()
	for _, want := range []int{3, len(f) - 1} {
		if _, err := br.Peek(want); err != nil {
			t.Fatal(err)
		}
		if Buffered(br) {
			t.Fatalf("Buffered with %d of %d bytes", want, len(f))
		}
	}
	if _, err := br.Peek(len(f)); err != nil {
		t.Fatal(err)
	}
	if !Buffered(br) {
		t.Fatalf("not Buffered with all %d bytes", len(f))
	}
}

func TestHelloHelpers(t *testing.T) {
	rest, err := CutMagic([]byte("PROTO001token"), "PROTO001", "a test peer")
	if err != nil || string(rest) != "token" {
		t.Fatalf("CutMagic = %q, %v", rest, err)
	}
	for _, p := range []string{"", "PROTO00", "PROTO002token", "xPROTO001"} {
		if _, err := CutMagic([]byte(p), "PROTO001", "a test peer"); !errors.Is(err, ErrMalformed) {
			t.Errorf("CutMagic(%q): %v, want ErrMalformed", p, err)
		}
	}
	if err := CheckToken([]byte("s3cret"), []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{"", "s3cre", "s3cret!", "S3cret"} {
		if err := CheckToken([]byte(got), []byte("s3cret")); !errors.Is(err, ErrBadToken) {
			t.Errorf("CheckToken(%q): %v, want ErrBadToken", got, err)
		}
	}
}

// FuzzRead feeds arbitrary bytes to both readers with a small limit: they
// must not panic or allocate beyond the limit, must agree frame by frame,
// and every frame read must re-encode to exactly the bytes it was read
// from.
func FuzzRead(f *testing.F) {
	f.Add(Append(Append(nil, kind(1), 0, []byte("hello")), kind(6), 1<<40, nil))
	f.Add([]byte{0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	const limit = 1 << 12
	f.Fuzz(func(t *testing.T, in []byte) {
		reuse := bufio.NewReaderSize(bytes.NewReader(in), 16)
		fresh := bufio.NewReaderSize(bytes.NewReader(in), 16)
		var buf []byte
		consumed := 0
		for {
			var a Frame[kind]
			var errA error
			a, buf, errA = Read(reuse, limit, lastKind, buf)
			b, n, errB := ReadFresh(fresh, limit, lastKind)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("readers disagree: Read %v, ReadFresh %v", errA, errB)
			}
			if cap(buf) > limit || len(b.Payload) > limit {
				t.Fatalf("buffer of %d bytes beyond the limit %d", cap(buf), limit)
			}
			if errA != nil {
				if !errors.Is(errA, io.EOF) && !errors.Is(errA, io.ErrUnexpectedEOF) &&
					!errors.Is(errA, ErrTooLarge) && !errors.Is(errA, ErrMalformed) {
					t.Fatalf("unexpected error %v", errA)
				}
				return
			}
			if a.Kind != b.Kind || a.ID != b.ID || !bytes.Equal(a.Payload, b.Payload) {
				t.Fatalf("readers disagree: %+v vs %+v", a, b)
			}
			if a.Kind < 1 || a.Kind > lastKind {
				t.Fatalf("kind %d accepted", a.Kind)
			}
			re := Append(nil, a.Kind, a.ID, a.Payload)
			if !bytes.Equal(re, in[consumed:consumed+n]) {
				t.Fatalf("frame re-encodes to %x, read from %x", re, in[consumed:consumed+n])
			}
			consumed += n
		}
	})
}
