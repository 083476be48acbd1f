package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/galeproject/gale/backends"
)

// ErrUnknownKind is wrapped by Mux.Handle when no handler is registered
// for a payload's kind.
var ErrUnknownKind = errors.New("engine: unknown payload kind")

// Mux is the worker-side router of a Gale worker: every payload a backend
// delivers is a JSON object whose top-level "kind" field names what it is
// ("gale.stage/v1" for stage tasks, "gale.thread/v1" for cloud threads),
// and Mux hands it to the handler registered for that kind. One worker
// binary thus serves every kind of Gale invocation through one entry
// point.
//
// Register handlers before the first Handle; Handle is safe for
// concurrent use, and so is Register (a worker may add handlers late).
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]backends.Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[string]backends.Handler{}} }

// Register routes payloads of the given kind to h. It panics if kind is
// empty, h is nil or kind is already registered: those are programming
// errors, as with http.ServeMux.
func (m *Mux) Register(kind string, h backends.Handler) {
	if kind == "" || h == nil {
		panic("engine: Mux.Register needs a non-empty kind and a non-nil handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[kind]; dup {
		panic(fmt.Sprintf("engine: Mux.Register(%q) called twice", kind))
	}
	m.handlers[kind] = h
}

// Kinds lists the registered kinds in order.
func (m *Mux) Kinds() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	kinds := make([]string, 0, len(m.handlers))
	for k := range m.handlers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Handle routes payload to the handler of its kind and returns that
// handler's result. It is a backends.Handler. A payload that is not a JSON
// object with a string "kind" field, or whose kind has no handler, fails
// with an error naming the kind and the kinds this worker knows.
func (m *Mux) Handle(ctx context.Context, payload []byte) ([]byte, error) {
	kind, err := PayloadKind(payload)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	h, ok := m.handlers[kind]
	m.mu.RUnlock()
	if !ok {
		known := m.Kinds()
		if len(known) == 0 {
			known = []string{"none"}
		}
		return nil, fmt.Errorf("%w %q: this worker serves %s; register a handler for it in the worker binary",
			ErrUnknownKind, kind, strings.Join(known, ", "))
	}
	return h(ctx, payload)
}

// PayloadKind returns the top-level "kind" field of a JSON payload. It
// reads only as far as that field (Gale puts it first), so routing a large
// task descriptor costs little.
func PayloadKind(payload []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("engine: payload is not a Gale invocation (%s); want a JSON object with a \"kind\" field", why)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad("not JSON: " + err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err.Error())
		}
		key, _ := tok.(string)
		if key == "kind" {
			var kind string
			if err := dec.Decode(&kind); err != nil {
				return bad("\"kind\" is not a string")
			}
			if kind == "" {
				return bad("\"kind\" is empty")
			}
			return kind, nil
		}
		if err := skipValue(dec); err != nil {
			return bad(err.Error())
		}
	}
	return bad("no \"kind\" field")
}

// skipValue consumes one JSON value from dec without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
