// Package wire is Glider's binary protocol: length-prefixed frames that
// carry a kind, a request id and a payload. Requests and responses are
// union messages (Request, Response) with one encoding each, so the same
// decoder serves the metadata, storage and active servers and is fuzzed as
// a whole.
//
// A frame on the wire is
//
//	uint32 length (big endian, of everything after it)
//	uint8  kind (Hello, Welcome, Request, Response, GoAway)
//	uint64 id   (big endian; the request id a response answers)
//	payload
//
// Ids let a connection carry many requests at once (pipelined,
// asynchronous): a response names the request it answers and may arrive in
// any order. A reader refuses a frame whose declared length exceeds its
// limit before allocating anything.
//
// The framing (length, kind and id; limits; reading and writing; the
// constant-time token check) is internal/frame's, shared with the DSO's
// protocol; this package owns Glider's kinds, magic and payloads.
//
// Imports: the standard library and internal/frame. No goroutines, no
// state.
package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"

	"github.com/galeproject/gale/internal/frame"
)

// Kind is the type of a frame.
type Kind uint8

// Frame kinds. They are part of the protocol: do not renumber.
const (
	// KindHello is the first frame of a connection; payload is a Hello.
	KindHello Kind = 1
	// KindWelcome accepts a Hello; payload is empty.
	KindWelcome Kind = 2
	// KindRequest carries a Request.
	KindRequest Kind = 3
	// KindResponse carries the Response to the request with the same id.
	KindResponse Kind = 4
	// KindGoAway tells the peer why the connection is closing (text).
	KindGoAway Kind = 5
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindWelcome:
		return "welcome"
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	case KindGoAway:
		return "goaway"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// lastKind is the largest kind; kinds are numbered from 1.
const lastKind = KindGoAway

// HeaderSize is the fixed part of a frame after its length: kind and id.
const HeaderSize = frame.HeaderSize

// Magic opens every Hello and names the protocol version.
const Magic = "GLIDER01"

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

// Frame is one decoded frame. Payload aliases the buffer it was read into.
type Frame = frame.Frame[Kind]

// ReadFrame reads one frame from r into a freshly allocated buffer (the
// payload is handed to other goroutines, so buffers are not reused) and
// returns the bytes it consumed. A frame whose declared length exceeds
// limit is refused with ErrFrameTooLarge before anything is allocated.
func ReadFrame(r *bufio.Reader, limit int) (Frame, int, error) {
	return frame.ReadFresh(r, limit, lastKind)
}

// ParseFrame decodes a frame body (everything after the length).
func ParseFrame(b []byte) (Frame, error) { return frame.Parse(b, lastKind) }

// AppendHeader appends a frame header for a payload of payloadLen bytes.
// The payload may then be written separately (to avoid copying bulk data).
func AppendHeader(dst []byte, k Kind, id uint64, payloadLen int) []byte {
	return frame.AppendHeader(dst, k, id, payloadLen)
}

// AppendFrame appends a complete frame with the given payload.
func AppendFrame(dst []byte, k Kind, id uint64, payload []byte) []byte {
	return frame.Append(dst, k, id, payload)
}

// Role says who opens a connection.
type Role uint8

// Connection roles.
const (
	// RoleClient is a tenant's client, bound to one namespace.
	RoleClient Role = 1
	// RoleServer is another Glider server, authenticated by the cluster
	// secret.
	RoleServer Role = 2
)

// Hello is the payload of the first frame of every connection.
type Hello struct {
	Role      Role
	Namespace string
	// Token is the namespace token (clients) or the cluster secret
	// (servers).
	Token []byte
}

// AppendHello appends h's encoding to dst.
func AppendHello(dst []byte, h Hello) []byte {
	dst = append(dst, Magic...)
	dst = append(dst, byte(h.Role))
	dst = appendString(dst, h.Namespace)
	return appendBytes(dst, h.Token)
}

// DecodeHello decodes a Hello payload. Token aliases p.
func DecodeHello(p []byte) (Hello, error) {
	rest, err := frame.CutMagic(p, Magic, "a Glider peer")
	if err != nil {
		return Hello{}, err
	}
	d := decoder{b: rest}
	h := Hello{Role: Role(d.byte("role")), Namespace: d.string("namespace"), Token: d.bytes("token")}
	d.end("hello")
	if d.err != nil {
		return Hello{}, d.err
	}
	if h.Role != RoleClient && h.Role != RoleServer {
		return Hello{}, fmt.Errorf("%w: unknown role %d", ErrMalformed, h.Role)
	}
	return h, nil
}

// CheckToken compares a presented token with the expected one in constant
// time (neither contents nor length leak through timing); it returns
// ErrBadToken if they differ.
func CheckToken(got, want []byte) error { return frame.CheckToken(got, want) }

// Op is the operation a Request asks for.
type Op uint8

// Operations. They are part of the protocol: do not renumber.
const (
	// Metadata server, from clients.
	OpMkdir        Op = 1  // Path; Flags&FlagParents creates missing parents
	OpCreateFile   Op = 2  // Path, Class -> A = write handle, B = block size
	OpAlloc        Op = 3  // A = handle, B = count -> Blocks
	OpCommit       Op = 4  // A = handle, B = size, IDs = bytes per block -> Nodes[0]
	OpAbort        Op = 5  // A = handle
	OpLookup       Op = 6  // Path -> Nodes[0] with blocks / action placement
	OpList         Op = 7  // Path -> Nodes (children, no blocks)
	OpDelete       Op = 8  // Path; Flags&FlagRecursive for directories
	OpCreateAction Op = 9  // Path, Name = type, Class, Flags&FlagInterleave, Options -> Nodes[0]
	OpClusterStats Op = 10 // -> Stats
	OpRename       Op = 11 // Path = from, Name = to (files only; replaces a file at to)

	// Metadata server, from storage and active servers.
	OpJoin Op = 20 // Name = role, Class, Addr, A = capacity, B = block size -> A = server id

	// Storage servers.
	OpWriteBlock Op = 30 // A = block, B = offset, Data
	OpReadBlock  Op = 31 // A = block, B = offset, C = length -> Data
	OpFreeBlocks Op = 32 // Namespace, IDs (from the metadata server)
	OpServerStat Op = 33 // -> Stats (from the metadata server)

	// Active servers.
	OpActionNew    Op = 40 // Namespace, A = action, Path, Name = type, Flags, Options (from metadata)
	OpActionDelete Op = 41 // Namespace, A = action (from metadata)
	OpStreamOpen   Op = 42 // A = action, Flags&FlagRead; the request id names the stream
	OpStreamData   Op = 43 // A = stream, Data; answered when the action consumed it
	OpStreamEnd    Op = 44 // A = stream; answered with the method's result
	OpStreamRead   Op = 45 // A = stream, C = max bytes -> Data, Flags&FlagEOF
	OpStreamAbort  Op = 46 // A = stream
)

// MaxOp is the largest known operation code.
const MaxOp = OpStreamAbort

// Request flags.
const (
	FlagParents    uint8 = 1 << 0
	FlagRecursive  uint8 = 1 << 1
	FlagInterleave uint8 = 1 << 2
	FlagRead       uint8 = 1 << 3
	FlagEOF        uint8 = 1 << 4
	// FlagReplace on OpCreateFile: the commit replaces a file already at
	// the path instead of failing.
	FlagReplace uint8 = 1 << 5
)

// Limits on list lengths inside one message, checked before allocating.
const (
	MaxIDs     = 1 << 20
	MaxOptions = 1 << 10
	MaxNodes   = 1 << 20
	MaxBlocks  = 1 << 20
)

// Request is the payload of a KindRequest frame: a union of every
// operation's fields. Byte slices alias the frame.
type Request struct {
	Op        Op
	Flags     uint8
	A, B, C   uint64
	Namespace string
	Path      string
	Name      string
	Class     string
	Addr      string
	IDs       []uint64
	Options   map[string]string
	// Data is written last so bulk payloads can be sent without copying.
	Data []byte
}

// AppendRequestHead appends every field of r except Data's bytes: it ends
// with Data's length, so the caller writes r.Data right after it.
func AppendRequestHead(dst []byte, r *Request) []byte {
	dst = append(dst, byte(r.Op), r.Flags)
	dst = binary.AppendUvarint(dst, r.A)
	dst = binary.AppendUvarint(dst, r.B)
	dst = binary.AppendUvarint(dst, r.C)
	dst = appendString(dst, r.Namespace)
	dst = appendString(dst, r.Path)
	dst = appendString(dst, r.Name)
	dst = appendString(dst, r.Class)
	dst = appendString(dst, r.Addr)
	dst = appendIDs(dst, r.IDs)
	dst = appendOptions(dst, r.Options)
	return binary.AppendUvarint(dst, uint64(len(r.Data)))
}

// AppendRequest appends r's complete encoding.
func AppendRequest(dst []byte, r *Request) []byte {
	return append(AppendRequestHead(dst, r), r.Data...)
}

// DecodeRequest decodes a Request payload; Data aliases p.
func DecodeRequest(p []byte) (Request, error) {
	d := decoder{b: p}
	r := Request{Op: Op(d.byte("op")), Flags: d.byte("flags")}
	r.A, r.B, r.C = d.uvarint("a"), d.uvarint("b"), d.uvarint("c")
	r.Namespace = d.string("namespace")
	r.Path = d.string("path")
	r.Name = d.string("name")
	r.Class = d.string("class")
	r.Addr = d.string("addr")
	r.IDs = d.ids()
	r.Options = d.options()
	r.Data = d.bytes("data")
	d.end("request")
	if d.err != nil {
		return Request{}, d.err
	}
	if r.Op == 0 || r.Op > MaxOp {
		return Request{}, fmt.Errorf("%w: unknown op %d", ErrMalformed, r.Op)
	}
	return r, nil
}

// Code is a response status. Codes are part of the protocol.
type Code uint8

// Response codes. CodeOK carries a result; the others carry a message.
const (
	CodeOK           Code = 0
	CodeNotFound     Code = 1
	CodeExists       Code = 2
	CodeNotEmpty     Code = 3
	CodeNotDir       Code = 4
	CodeWrongKind    Code = 5
	CodeBadRequest   Code = 6
	CodeUnknownType  Code = 7
	CodeNoSpace      Code = 8
	CodeServerGone   Code = 9
	CodeActionFailed Code = 10
	CodeStreamBroken Code = 11
	CodeDenied       Code = 12
	CodeShutdown     Code = 13
	CodeInternal     Code = 14
	CodeDataLost     Code = 15
)

// MaxCode is the largest known code.
const MaxCode = CodeDataLost

// NodeKind is the type of a namespace node.
type NodeKind uint8

// Node kinds.
const (
	NodeDir    NodeKind = 1
	NodeFile   NodeKind = 2
	NodeAction NodeKind = 3
)

// Block names one block of a file on one storage server.
type Block struct {
	ID     uint64
	Server uint64
	Addr   string
	Len    uint64
}

// Node describes a namespace node.
type Node struct {
	Kind  NodeKind
	Flags uint8 // FlagInterleave for actions
	ID    uint64
	Size  uint64
	// ModTime is when the node was created or last replaced (Unix
	// nanoseconds).
	ModTime uint64
	Path    string
	Class   string
	// Type is an action's type name.
	Type string
	// Addr is the active server of an action.
	Addr   string
	Blocks []Block
}

// Stats is a server's or the cluster's accounting.
type Stats struct {
	StorageServers, ActiveServers uint64
	BytesStored                   uint64 // file blocks held by storage servers
	Blocks                        uint64
	ActionBytes                   uint64 // state reported by actions (Sizer)
	Actions                       uint64
}

// Response is the payload of a KindResponse frame.
type Response struct {
	Code  Code
	Flags uint8
	// Msg is the error message when Code is not CodeOK.
	Msg    string
	A, B   uint64
	Nodes  []Node
	Blocks []Block
	Stats  *Stats
	Data   []byte
}

// AppendResponseHead appends every field of r except Data's bytes (see
// AppendRequestHead).
func AppendResponseHead(dst []byte, r *Response) []byte {
	dst = append(dst, byte(r.Code), r.Flags)
	dst = appendString(dst, r.Msg)
	dst = binary.AppendUvarint(dst, r.A)
	dst = binary.AppendUvarint(dst, r.B)
	dst = binary.AppendUvarint(dst, uint64(len(r.Nodes)))
	for i := range r.Nodes {
		n := &r.Nodes[i]
		dst = append(dst, byte(n.Kind), n.Flags)
		dst = binary.AppendUvarint(dst, n.ID)
		dst = binary.AppendUvarint(dst, n.Size)
		dst = binary.AppendUvarint(dst, n.ModTime)
		dst = appendString(dst, n.Path)
		dst = appendString(dst, n.Class)
		dst = appendString(dst, n.Type)
		dst = appendString(dst, n.Addr)
		dst = appendBlocks(dst, n.Blocks)
	}
	dst = appendBlocks(dst, r.Blocks)
	if r.Stats == nil {
		dst = append(dst, 0)
	} else {
		s := r.Stats
		dst = append(dst, 1)
		for _, v := range []uint64{s.StorageServers, s.ActiveServers, s.BytesStored, s.Blocks, s.ActionBytes, s.Actions} {
			dst = binary.AppendUvarint(dst, v)
		}
	}
	return binary.AppendUvarint(dst, uint64(len(r.Data)))
}

// AppendResponse appends r's complete encoding.
func AppendResponse(dst []byte, r *Response) []byte {
	return append(AppendResponseHead(dst, r), r.Data...)
}

// DecodeResponse decodes a Response payload; Data aliases p.
func DecodeResponse(p []byte) (Response, error) {
	d := decoder{b: p}
	r := Response{Code: Code(d.byte("code")), Flags: d.byte("flags"), Msg: d.string("message")}
	r.A, r.B = d.uvarint("a"), d.uvarint("b")
	n := d.count("node count", MaxNodes, 8)
	if n > 0 {
		r.Nodes = make([]Node, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			nd := Node{Kind: NodeKind(d.byte("node kind")), Flags: d.byte("node flags")}
			nd.ID, nd.Size = d.uvarint("node id"), d.uvarint("node size")
			nd.ModTime = d.uvarint("node time")
			nd.Path, nd.Class = d.string("node path"), d.string("node class")
			nd.Type, nd.Addr = d.string("node type"), d.string("node addr")
			nd.Blocks = d.blocks()
			if d.err == nil && (nd.Kind < NodeDir || nd.Kind > NodeAction) {
				d.fail("node kind")
			}
			r.Nodes = append(r.Nodes, nd)
		}
	}
	r.Blocks = d.blocks()
	if d.byte("stats flag") == 1 {
		s := &Stats{}
		for _, v := range []*uint64{&s.StorageServers, &s.ActiveServers, &s.BytesStored, &s.Blocks, &s.ActionBytes, &s.Actions} {
			*v = d.uvarint("stats")
		}
		r.Stats = s
	}
	r.Data = d.bytes("data")
	d.end("response")
	if d.err != nil {
		return Response{}, d.err
	}
	if r.Code > MaxCode {
		return Response{}, fmt.Errorf("%w: unknown code %d", ErrMalformed, r.Code)
	}
	return r, nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendIDs(dst []byte, ids []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, v := range ids {
		dst = binary.AppendUvarint(dst, v)
	}
	return dst
}

func appendOptions(dst []byte, o map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(o)))
	// Map order does not matter to the decoder; encodings of equal maps
	// may differ in order, which no one compares.
	for k, v := range o {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

func appendBlocks(dst []byte, bs []Block) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(bs)))
	for _, b := range bs {
		dst = binary.AppendUvarint(dst, b.ID)
		dst = binary.AppendUvarint(dst, b.Server)
		dst = appendString(dst, b.Addr)
		dst = binary.AppendUvarint(dst, b.Len)
	}
	return dst
}

// decoder reads fields from a payload and remembers the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrMalformed, what)
	}
	d.b = nil
}

func (d *decoder) end(what string) {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + " (trailing bytes)")
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
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

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
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

func (d *decoder) string(what string) string { return string(d.bytes(what)) }

// count reads a list length and checks it against max and against the bytes
// left (each element takes at least minSize bytes), so a forged count
// cannot make the decoder allocate more than the frame justifies.
func (d *decoder) count(what string, max, minSize int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) ids() []uint64 {
	n := d.count("id count", MaxIDs, 1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ids = append(ids, d.uvarint("id"))
	}
	return ids
}

func (d *decoder) options() map[string]string {
	n := d.count("option count", MaxOptions, 2)
	if n == 0 {
		return nil
	}
	o := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string("option key")
		o[k] = d.string("option value")
	}
	return o
}

func (d *decoder) blocks() []Block {
	n := d.count("block count", MaxBlocks, 4)
	if n == 0 {
		return nil
	}
	bs := make([]Block, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		bs = append(bs, Block{ID: d.uvarint("block id"), Server: d.uvarint("block server"), Addr: d.string("block addr"), Len: d.uvarint("block length")})
	}
	return bs
}
