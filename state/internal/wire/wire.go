package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"

	"github.com/galeproject/gale/internal/frame"
)

// Kind is the type of a frame.
type Kind uint8

// Frame kinds.
const (
	// KindHello is the client's first frame: Magic followed by the token.
	KindHello Kind = 1
	// KindWelcome is the server's answer to an accepted Hello.
	KindWelcome Kind = 2
	// KindCall invokes a method; its payload is an encoded Call.
	KindCall Kind = 3
	// KindReply answers the Call with the same id; payload is a Reply.
	KindReply Kind = 4
	// KindCancel abandons the blocking call with the same id.
	KindCancel Kind = 5
	// KindGoAway tells the peer why the connection is being closed; its
	// payload is the reason as text.
	KindGoAway Kind = 6
	// KindRaft carries replication messages between the servers of a
	// cluster; its payload is a RaftBatch. A connection that sends one is a
	// peer connection (authenticated with the same token as clients).
	KindRaft Kind = 7
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindWelcome:
		return "welcome"
	case KindCall:
		return "call"
	case KindReply:
		return "reply"
	case KindCancel:
		return "cancel"
	case KindGoAway:
		return "goaway"
	case KindRaft:
		return "raft"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// lastKind is the largest kind; kinds are numbered from 1.
const lastKind = KindRaft

// HeaderSize is the fixed part of a frame after the length: kind and id.
const HeaderSize = frame.HeaderSize

// Magic opens every Hello payload and names the protocol version.
const Magic = "GALEDSO1"

// HelloLimit is the largest frame a server reads before the peer is
// authenticated.
const HelloLimit = frame.HelloLimit

// Errors returned by the decoders (the framing's own, see internal/frame).
var (
	// ErrFrameTooLarge means a frame's declared length exceeds the limit.
	ErrFrameTooLarge = frame.ErrTooLarge
	// ErrMalformed means a frame or payload does not decode.
	ErrMalformed = frame.ErrMalformed
	// ErrBadToken means a Hello carried the wrong token.
	ErrBadToken = frame.ErrBadToken
)

// Frame is one decoded frame. Payload aliases the buffer given to ReadFrame.
type Frame = frame.Frame[Kind]

// ReadFrame reads one frame from r. A frame whose declared length exceeds
// limit is refused with ErrFrameTooLarge before anything is allocated. buf is
// reused when large enough; the returned payload aliases it.
func ReadFrame(r *bufio.Reader, limit int, buf []byte) (Frame, []byte, error) {
	return frame.Read(r, limit, lastKind, buf)
}

// ParseFrame decodes a frame body (everything after the length).
func ParseFrame(b []byte) (Frame, error) { return frame.Parse(b, lastKind) }

// FrameBuffered reports whether r holds a whole frame, so reading it will
// not block.
func FrameBuffered(r *bufio.Reader) bool { return frame.Buffered(r) }

// StartFrame appends a frame header with a placeholder length to dst; call
// FinishFrame with the returned offset after appending the payload.
func StartFrame(dst []byte, k Kind, id uint64) ([]byte, int) { return frame.Start(dst, k, id) }

// FinishFrame patches the length of the frame started at off. It returns the
// frame's length field (its size on the wire less the 4-byte length), the
// figure a reader's limit bounds.
func FinishFrame(dst []byte, off int) int { return frame.Finish(dst, off) }

// AppendFrame appends a complete frame with the given payload.
func AppendFrame(dst []byte, k Kind, id uint64, payload []byte) []byte {
	return frame.Append(dst, k, id, payload)
}

// AppendBytes appends a uvarint length and b.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends a uvarint length and s.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decoder reads fields from a payload, remembering the first error.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first decoding error.
func (d *Decoder) Err() error { return d.err }

// Rest returns the bytes not read yet.
func (d *Decoder) Rest() []byte { return d.b }

func (d *Decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrMalformed, what)
	}
	d.b = nil
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Byte reads one byte.
func (d *Decoder) Byte(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Bytes reads a length-prefixed field; the result aliases the payload.
func (d *Decoder) Bytes(what string) []byte {
	n := d.Uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String reads a length-prefixed string.
func (d *Decoder) String(what string) string { return string(d.Bytes(what)) }

// Call flags.
const (
	// FlagPersistent asks that an object created by this call be persistent.
	FlagPersistent uint8 = 1 << 0
	// FlagSession says the call carries a session (client id, sequence
	// number, lowest sequence number still in flight) after its arguments,
	// so that a replicated call retried after a failover runs at most once.
	FlagSession uint8 = 1 << 1
)

// MaxArgs bounds the number of arguments of one call.
const MaxArgs = 1 << 16

// Call is the payload of a KindCall frame: invoke Method on the object
// (Type, Key), creating it with Init if it does not exist.
type Call struct {
	Type, Key, Method string
	Flags             uint8
	// Init carries creation parameters (parties of a barrier, permits of a
	// semaphore, ...). Objects check it against their own on every call.
	Init []byte
	// Args are the encoded arguments, one field per argument.
	Args [][]byte
	// Client, Seq and Low are the session fields, present with
	// FlagSession.
	Client, Seq, Low uint64
}

// AppendCall appends c's payload encoding to dst.
func AppendCall(dst []byte, c *Call) []byte {
	dst = AppendString(dst, c.Type)
	dst = AppendString(dst, c.Key)
	dst = AppendString(dst, c.Method)
	dst = append(dst, c.Flags)
	dst = AppendBytes(dst, c.Init)
	dst = binary.AppendUvarint(dst, uint64(len(c.Args)))
	for _, a := range c.Args {
		dst = AppendBytes(dst, a)
	}
	if c.Flags&FlagSession != 0 {
		dst = binary.AppendUvarint(dst, c.Client)
		dst = binary.AppendUvarint(dst, c.Seq)
		dst = binary.AppendUvarint(dst, c.Low)
	}
	return dst
}

// DecodeCall decodes a Call payload. The returned slices alias p.
func DecodeCall(p []byte) (Call, error) {
	d := NewDecoder(p)
	c := Call{
		Type:   d.String("type"),
		Key:    d.String("key"),
		Method: d.String("method"),
		Flags:  d.Byte("flags"),
		Init:   d.Bytes("init"),
	}
	n := d.Uvarint("argument count")
	if d.err == nil && (n > MaxArgs || n > uint64(len(d.b))) {
		// Every argument takes at least one byte (its length), so a count
		// above the bytes left is malformed; checking first keeps the
		// allocation below bounded by the frame.
		d.fail("argument count")
	}
	if d.err == nil && n > 0 {
		c.Args = make([][]byte, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			c.Args = append(c.Args, d.Bytes("argument"))
		}
	}
	if c.Flags&FlagSession != 0 {
		c.Client = d.Uvarint("session client")
		c.Seq = d.Uvarint("session seq")
		c.Low = d.Uvarint("session low")
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("call (trailing bytes)")
	}
	if d.err != nil {
		return Call{}, d.err
	}
	return c, nil
}

// Reply status codes. CodeOK carries a result; every other code carries an
// error message. The codes are part of the protocol: do not renumber.
const (
	CodeOK            uint8 = 0
	CodeUnknownType   uint8 = 1
	CodeUnknownMethod uint8 = 2
	CodeBadArgs       uint8 = 3
	CodeMethodError   uint8 = 4
	CodePanic         uint8 = 5
	CodeCancelled     uint8 = 6
	CodeMismatch      uint8 = 7
	CodeAlreadySet    uint8 = 8
	CodeShutdown      uint8 = 9
	CodeInternal      uint8 = 10
	CodeOutOfRange    uint8 = 11
	CodePersist       uint8 = 12
	CodeBroken        uint8 = 13
	// CodeNotLeader: the server does not serve this object now (it is not
	// the leader of its replicas, or not its owner in the current view);
	// the call did not run. Body: the address to try, if known.
	CodeNotLeader uint8 = 14
	// CodeUnavailable: the call may or may not have run (its replica group
	// lost its leader meanwhile); retrying it with the same session number
	// applies it at most once.
	CodeUnavailable uint8 = 15
)

// Reply is the payload of a KindReply frame.
type Reply struct {
	Code uint8
	// Body is the result when Code is CodeOK, else the error message.
	Body []byte
}

// AppendReply appends r's payload encoding to dst.
func AppendReply(dst []byte, r Reply) []byte {
	dst = append(dst, r.Code)
	return append(dst, r.Body...)
}

// DecodeReply decodes a Reply payload; Body aliases p.
func DecodeReply(p []byte) (Reply, error) {
	if len(p) < 1 {
		return Reply{}, fmt.Errorf("%w: empty reply", ErrMalformed)
	}
	if p[0] > CodeUnavailable {
		return Reply{}, fmt.Errorf("%w: unknown reply code %d", ErrMalformed, p[0])
	}
	return Reply{Code: p[0], Body: p[1:]}, nil
}

// AppendHello appends a Hello payload carrying token.
func AppendHello(dst []byte, token string) []byte {
	dst = append(dst, Magic...)
	return append(dst, token...)
}

// CheckHello reports whether a Hello payload carries the expected token:
// ErrMalformed without the magic, ErrBadToken with another token. The
// comparison is constant-time in the token's contents and length.
func CheckHello(p []byte, token string) error {
	got, err := frame.CutMagic(p, Magic, "a Gale DSO client")
	if err != nil {
		return err
	}
	return frame.CheckToken(got, []byte(token))
}

// RaftMsg is one replication message of a RaftBatch: Msg (an encoded
// raftpb.Message) for the replica group Group (0 is the membership group,
// g > 0 partition g-1) in its incarnation Inc.
type RaftMsg struct {
	Group, Inc uint64
	Msg        []byte
}

// MaxRaftBatch bounds the messages of one RaftBatch.
const MaxRaftBatch = 1 << 16

// AppendRaftBatch appends a KindRaft payload: a uvarint count, then for
// each message its group, incarnation (uvarints) and bytes.
func AppendRaftBatch(dst []byte, msgs []RaftMsg) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(msgs)))
	for _, m := range msgs {
		dst = binary.AppendUvarint(dst, m.Group)
		dst = binary.AppendUvarint(dst, m.Inc)
		dst = AppendBytes(dst, m.Msg)
	}
	return dst
}

// DecodeRaftBatch decodes a KindRaft payload; the messages alias p. Every
// count and length is checked against the bytes left before anything is
// allocated for it.
func DecodeRaftBatch(p []byte) ([]RaftMsg, error) {
	d := NewDecoder(p)
	n := d.Uvarint("raft batch count")
	// A message takes at least three bytes.
	if d.err == nil && (n > MaxRaftBatch || n > uint64(len(d.b))/3) {
		d.fail("raft batch count")
	}
	if d.err != nil {
		return nil, d.err
	}
	out := make([]RaftMsg, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		m := RaftMsg{Group: d.Uvarint("raft group"), Inc: d.Uvarint("raft incarnation")}
		m.Msg = d.Bytes("raft message")
		out = append(out, m)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("raft batch (trailing bytes)")
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}
