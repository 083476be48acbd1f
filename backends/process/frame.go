package process

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The protocol between a Backend and its worker processes runs over two
// pipes, one per direction. Each message is a frame: a 4-byte big-endian
// body length, a 1-byte type and the body. Hand-rolled because it is a
// dozen lines with nothing to negotiate: one request is in flight per
// process, the peers are the same binary, and the payloads are already
// serialized by the engine.
//
//	hello  (worker → backend, once at start): the protocol name, protocolName
//	task   (backend → worker): uvarint len(id), id, payload
//	result (worker → backend): start and end as int64 Unix nanoseconds,
//	       a flags byte (flagCold, flagError, flagNotStarted), then the
//	       result payload, or uvarint len(type), type, message on error
//
// A worker serves one task at a time: the backend sends the next task only
// after it has read the previous result. Closing the task pipe tells the
// worker to stop (it cancels a running task and exits).
const (
	frameHello  byte = 'H'
	frameTask   byte = 'T'
	frameResult byte = 'R'
)

// protocolName is the hello body; a worker built from another Gale
// version is refused by name.
const protocolName = "gale-process/1"

// MaxPayload is the largest task or result payload the protocol carries.
const MaxPayload = 256 << 20

const (
	flagCold       byte = 1 << 0
	flagError      byte = 1 << 1
	flagNotStarted byte = 1 << 2
)

var errFrameTooLarge = errors.New("process: frame larger than the protocol allows")

// appendFrame appends a frame of type typ whose body is the concatenation
// of parts.
func appendFrame(dst []byte, typ byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, typ)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// readFrame reads one frame. The body is newly allocated: the caller owns
// it. A clean end of input before a frame starts is io.EOF.
func readFrame(r *bufio.Reader) (typ byte, body []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("process: truncated frame header: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > MaxPayload+1024 {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("process: truncated frame body: %w", err)
	}
	return hdr[4], body, nil
}

// taskFrame encodes a task.
func taskFrame(id string, payload []byte) []byte {
	head := binary.AppendUvarint(nil, uint64(len(id)))
	head = append(head, id...)
	return appendFrame(make([]byte, 0, 5+len(head)+len(payload)), frameTask, head, payload)
}

// decodeTask decodes a task body.
func decodeTask(body []byte) (id string, payload []byte, err error) {
	n, k := binary.Uvarint(body)
	if k <= 0 || uint64(len(body)-k) < n {
		return "", nil, errors.New("process: malformed task frame")
	}
	return string(body[k : k+int(n)]), body[k+int(n):], nil
}

// result is a decoded result frame.
type result struct {
	start, end time.Time
	flags      byte
	payload    []byte // on success
	errType    string // on error
	errMsg     string
}

// resultFrame encodes r.
func resultFrame(r result) []byte {
	var head [17]byte
	binary.BigEndian.PutUint64(head[0:], uint64(r.start.UnixNano()))
	binary.BigEndian.PutUint64(head[8:], uint64(r.end.UnixNano()))
	head[16] = r.flags
	if r.flags&flagError == 0 {
		return appendFrame(make([]byte, 0, 5+len(head)+len(r.payload)), frameResult, head[:], r.payload)
	}
	typ := binary.AppendUvarint(nil, uint64(len(r.errType)))
	typ = append(typ, r.errType...)
	return appendFrame(nil, frameResult, head[:], typ, []byte(r.errMsg))
}

// decodeResult decodes a result body. The payload aliases body.
func decodeResult(body []byte) (result, error) {
	if len(body) < 17 {
		return result{}, errors.New("process: malformed result frame")
	}
	r := result{
		start: time.Unix(0, int64(binary.BigEndian.Uint64(body[0:]))),
		end:   time.Unix(0, int64(binary.BigEndian.Uint64(body[8:]))),
		flags: body[16],
	}
	rest := body[17:]
	if r.flags&flagError == 0 {
		r.payload = rest
		return r, nil
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return result{}, errors.New("process: malformed error result frame")
	}
	r.errType = string(rest[k : k+int(n)])
	r.errMsg = string(rest[k+int(n):])
	return r, nil
}
