// Package wire is the binary protocol spoken between Gale DSO clients and
// servers.
//
// Every message is a frame:
//
//	uint32 length (big endian) of what follows, at most the peer's limit
//	uint8  kind (Hello, Welcome, Call, Reply, Cancel, GoAway)
//	uint64 request id (big endian); 0 for Hello, Welcome and GoAway
//	payload (kind specific)
//
// The length is checked against the reader's limit before any buffer is
// allocated, so a peer cannot make the other side allocate more than the
// limit. Request ids let a client pipeline many calls on one connection; a
// server answers each Call with exactly one Reply carrying the same id, in
// any order. A Cancel frame names the id of a blocking call to abandon.
//
// Variable-length fields inside payloads are a uvarint length followed by
// the bytes; every length is checked against the bytes that remain, so a
// malformed payload yields an error, never a panic or an allocation larger
// than the frame. The decoders are fuzzed (FuzzDecode).
//
// The framing (length, kind and id; limits; reading and writing; the
// constant-time token check) is internal/frame's, shared with Glider's
// protocol; this package owns the DSO's kinds, magic and payloads.
//
// This package imports only the standard library and internal/frame, and
// starts no goroutines.
package wire
