package frame

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Kind is the constraint on a protocol's frame kind type: one byte on the
// wire. Kinds are numbered from 1; 0 is never valid.
type Kind interface{ ~uint8 }

// LengthSize is the size of the big-endian length that precedes every frame.
const LengthSize = 4

// HeaderSize is the fixed part of a frame after its length: kind and id.
const HeaderSize = 1 + 8

// HelloLimit is the largest frame a server reads before the peer is
// authenticated.
const HelloLimit = 4096

// Errors returned by the readers and the handshake helpers. Protocols
// built on frames return ErrMalformed for their payloads too. The texts
// keep the words peers have always seen in GoAway reasons ("frame too
// large", "malformed frame", "wrong token").
var (
	// ErrTooLarge means a frame's declared length exceeds the reader's
	// limit.
	ErrTooLarge = errors.New("frame: frame too large")
	// ErrMalformed means a frame or its payload does not decode.
	ErrMalformed = errors.New("frame: malformed frame")
	// ErrBadToken means a Hello carried the wrong token.
	ErrBadToken = errors.New("frame: wrong token")
)

// Frame is one decoded frame. Payload aliases the buffer the frame was read
// into (see Read and ReadFresh).
type Frame[K Kind] struct {
	Kind    K
	ID      uint64
	Payload []byte
}

// Parse decodes a frame body (everything after the length). Kinds outside
// 1..last are malformed. Payload aliases b.
func Parse[K Kind](b []byte, last K) (Frame[K], error) {
	if len(b) < HeaderSize {
		return Frame[K]{}, fmt.Errorf("%w: %d bytes shorter than header", ErrMalformed, len(b))
	}
	k := K(b[0])
	if k < 1 || k > last {
		return Frame[K]{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, b[0])
	}
	return Frame[K]{Kind: k, ID: binary.BigEndian.Uint64(b[1:HeaderSize]), Payload: b[HeaderSize:]}, nil
}

// Read reads one frame from r whose kind is in 1..last. A frame whose
// declared length exceeds limit is refused with ErrTooLarge before anything
// is allocated. buf is reused when large enough, else replaced by a buffer
// of exactly the frame's size; Read returns the buffer in use, and the
// frame's Payload aliases it, so the payload is valid only until buf is
// passed to Read again. A stream that ends between frames yields io.EOF,
// one that ends inside a frame io.ErrUnexpectedEOF.
func Read[K Kind](r *bufio.Reader, limit int, last K, buf []byte) (Frame[K], []byte, error) {
	n, err := readLength(r)
	if err == nil {
		err = checkLength(n, limit)
	}
	if err != nil {
		return Frame[K]{}, buf, err
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if err := readBody(r, buf); err != nil {
		return Frame[K]{}, buf, err
	}
	f, err := Parse(buf, last)
	return f, buf, err
}

// ReadFresh is Read into a newly allocated buffer, for a reader that hands
// payloads to other goroutines. It also returns the number of bytes it
// consumed from r, for accounting: LengthSize plus the frame's length, or
// only LengthSize if the frame is refused or cut short, or 0 if the length
// could not be read.
func ReadFresh[K Kind](r *bufio.Reader, limit int, last K) (Frame[K], int, error) {
	n, err := readLength(r)
	if err != nil {
		return Frame[K]{}, 0, err
	}
	if err := checkLength(n, limit); err != nil {
		return Frame[K]{}, LengthSize, err
	}
	buf := make([]byte, n)
	if err := readBody(r, buf); err != nil {
		return Frame[K]{}, LengthSize, err
	}
	f, err := Parse(buf, last)
	return f, LengthSize + int(n), err
}

// readLength reads a frame's length. It peeks rather than reading into a
// local array so the length costs no allocation (an array passed to
// io.ReadFull through the io.Reader interface escapes to the heap).
func readLength(r *bufio.Reader) (uint32, error) {
	h, err := r.Peek(LengthSize)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n := binary.BigEndian.Uint32(h)
	_, _ = r.Discard(LengthSize) // cannot fail: the bytes are buffered
	return n, nil
}

// checkLength checks a frame's declared length against the reader's limit
// and the header size.
func checkLength(n uint32, limit int) error {
	if uint64(n) > uint64(limit) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	if n < HeaderSize {
		return fmt.Errorf("%w: length %d shorter than header", ErrMalformed, n)
	}
	return nil
}

func readBody(r *bufio.Reader, buf []byte) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// Buffered reports whether r holds a whole frame, so reading it will not
// block.
func Buffered(r *bufio.Reader) bool {
	if r.Buffered() < LengthSize {
		return false
	}
	h, _ := r.Peek(LengthSize)
	return r.Buffered() >= LengthSize+int(binary.BigEndian.Uint32(h))
}

// Start appends a frame header with a placeholder length to dst; append
// the payload, then call Finish with the returned offset.
func Start[K Kind](dst []byte, k K, id uint64) ([]byte, int) {
	off := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(k))
	dst = binary.BigEndian.AppendUint64(dst, id)
	return dst, off
}

// Finish patches the length of the frame started at off, which must end at
// len(dst). It returns the frame's length field: its size on the wire less
// LengthSize.
func Finish(dst []byte, off int) int {
	n := len(dst) - off - LengthSize
	binary.BigEndian.PutUint32(dst[off:], uint32(n))
	return n
}

// AppendHeader appends the length, kind and id of a frame whose payload is
// payloadLen bytes; the caller writes the payload after it (separately, to
// avoid copying bulk data).
func AppendHeader[K Kind](dst []byte, k K, id uint64, payloadLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HeaderSize+payloadLen))
	dst = append(dst, byte(k))
	return binary.BigEndian.AppendUint64(dst, id)
}

// Append appends a complete frame with the given payload.
func Append[K Kind](dst []byte, k K, id uint64, payload []byte) []byte {
	dst = AppendHeader(dst, k, id, len(payload))
	return append(dst, payload...)
}

// CutMagic checks that a Hello payload opens with magic and returns the
// rest. Otherwise it returns ErrMalformed naming the magic and peer, what a
// valid sender is ("a Glider peer").
func CutMagic(p []byte, magic, peer string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(p, []byte(magic))
	if !ok {
		return nil, fmt.Errorf("%w: hello without %q magic (not %s, or another protocol version)", ErrMalformed, magic, peer)
	}
	return rest, nil
}

// CheckToken compares a presented token with the expected one in constant
// time: both are hashed to fixed-size digests first, so neither contents
// nor length leak through timing. It returns ErrBadToken if they differ.
func CheckToken(got, want []byte) error {
	g := sha256.Sum256(got)
	w := sha256.Sum256(want)
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return ErrBadToken
	}
	return nil
}
