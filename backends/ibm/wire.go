package ibm

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// The Gale wire format over OpenWhisk. Action parameters and results must
// be JSON objects, so a task travels as the parameters
//
//	{"gale_task": "<task id>", "payload": "<the payload as a JSON string>"}
//	{"gale_task": "<task id>", "payload_b64": "<base64>"} (bytes that are not UTF-8)
//
// A JSON string, not embedded JSON: OpenWhisk re-serializes parameters and
// results (spray-json objects do not keep key order or spacing), and a
// backend must deliver the payload byte for byte. A string survives any
// re-serialization unchanged once decoded; Gale's payloads are UTF-8 JSON
// text, so they cost only their escaped quotes rather than base64's third.
//
// and a completed activation returns the result object
//
//	{"gale": 1, "payload" | "payload_b64": ..., "start": ..., "end": ...,
//	 "instance": ..., "activation_id": ..., "cold": ..., "uptime_s": ...}
//
// A failed task makes the action respond with OpenWhisk's error shape, a
// non-200 status and {"error": {...}}, where the object holds the same
// timing fields plus "type", "message" and "not_started". OpenWhisk records
// that as an application error, which a blocking invocation returns with
// HTTP 502.

// taskParams is the action's input.
type taskParams struct {
	Task       string  `json:"gale_task"`
	Payload    *string `json:"payload,omitempty"`
	PayloadB64 []byte  `json:"payload_b64,omitempty"`
}

func encodeParams(id string, payload []byte) ([]byte, error) {
	p := taskParams{Task: id}
	p.Payload, p.PayloadB64 = packPayload(payload)
	return json.Marshal(p)
}

// packPayload returns b as a JSON string if it is UTF-8, else as base64.
func packPayload(b []byte) (*string, []byte) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b
}

// unpackPayload reverses packPayload.
func unpackPayload(s *string, b []byte) []byte {
	if s != nil {
		return []byte(*s)
	}
	if b == nil {
		return []byte{}
	}
	return b
}

// payload returns the task payload carried by p.
func (p *taskParams) payload() []byte { return unpackPayload(p.Payload, p.PayloadB64) }

// resultEnvelope is the action's result, or the body of its error.
type resultEnvelope struct {
	Gale         int       `json:"gale,omitempty"`
	Payload      *string   `json:"payload,omitempty"`
	PayloadB64   []byte    `json:"payload_b64,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Instance     string    `json:"instance,omitempty"`
	ActivationID string    `json:"activation_id,omitempty"`
	Cold         bool      `json:"cold,omitempty"`
	// UptimeS is the host's uptime in seconds when the task ended: a hint
	// of which Invoker VM ran the container (containers on one VM read
	// nearly the same uptime).
	UptimeS float64 `json:"uptime_s,omitempty"`
	// Failures only.
	Type       string `json:"type,omitempty"`
	Message    string `json:"message,omitempty"`
	NotStarted bool   `json:"not_started,omitempty"`
}

func (e *resultEnvelope) setPayload(b []byte) { e.Payload, e.PayloadB64 = packPayload(b) }

func (e *resultEnvelope) payload() []byte { return unpackPayload(e.Payload, e.PayloadB64) }

// errorBody is what the action answers on failure: {"error": envelope}.
type errorBody struct {
	Error json.RawMessage `json:"error"`
}

// errNotGale means a result did not come from a Gale worker.
var errNotGale = errors.New("ibm: the action's result is not a Gale result")

// decodeResult parses a successful activation's result object.
func decodeResult(b []byte) (*resultEnvelope, error) {
	var e resultEnvelope
	if err := json.Unmarshal(b, &e); err != nil || e.Gale == 0 {
		return nil, fmt.Errorf("%w (is the action a Gale worker deployed by gale deploy --backend ibm?): %s", errNotGale, snippet(b))
	}
	return &e, nil
}

// snippet returns the start of b for messages.
func snippet(b []byte) string {
	const max = 300
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
