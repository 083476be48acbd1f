// Package frame is the framing shared by Gale's binary protocols (the DSO
// protocol in state/internal/wire and Glider's in glider/internal/wire):
// how a message is delimited on a byte stream, read with a size limit and
// written, and the pieces of the handshake both protocols share. Each
// protocol keeps its own frame kinds, magic and payload encodings; this
// package knows none of them.
//
// A frame on the wire is
//
//	uint32 length (big endian) of everything after it
//	uint8  kind   (1..the protocol's largest kind)
//	uint64 id     (big endian; the request a frame belongs to, or 0)
//	payload       (length - HeaderSize bytes, kind specific)
//
// A reader refuses a frame whose declared length exceeds its limit
// (ErrTooLarge) before allocating anything for it, so a peer cannot make the
// other side allocate more than the limit; a length below HeaderSize or an
// unknown kind is ErrMalformed. Read reuses the caller's buffer, for a
// reader that is done with a payload before the next frame; ReadFresh
// allocates each payload, for one that hands payloads to other goroutines.
// Writers append to a byte slice: Append for a whole frame, Start and
// Finish around a payload appended in place, and AppendHeader for a header
// whose payload the caller writes separately (bulk data is then never
// copied).
//
// A minimal reader loop, with K a protocol's kind type and last its largest
// kind:
//
//	var buf []byte
//	for {
//		f, b, err := frame.Read(br, limit, last, buf)
//		if err != nil {
//			return err // io.EOF, ErrTooLarge, ErrMalformed, ...
//		}
//		buf = b
//		handle(f.Kind, f.ID, f.Payload) // Payload aliases buf
//	}
//
// A connection opens with a Hello frame whose payload starts with the
// protocol's magic (CutMagic) and carries a token that the server compares
// in constant time (CheckToken). HelloLimit bounds frames read before the
// peer is authenticated.
//
// Imports: the standard library only. No goroutines, no state: every
// function works on the reader, writer or slice it is given and is safe for
// concurrent use on distinct ones.
package frame
