package aws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// envelopeVersion marks Gale's Lambda envelopes. A response body without it
// is not from a Gale worker: a platform error (errorMessage/errorType), or
// the emulator's plain-text timeout message.
const envelopeVersion = "gale.lambda/v1"

// request is the JSON document a Lambda invocation carries. Lambda requires
// the invocation payload to be JSON, so a task payload that is valid JSON
// travels as is (Payload) and any other payload as base64 (PayloadB64).
// A payload too large for a synchronous invocation travels through the
// staging store (StagedKey) instead.
type request struct {
	V string `json:"gale"`
	// Task is the task's ID, for the worker's logs.
	Task       string          `json:"task,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadB64 []byte          `json:"payload_b64,omitempty"`
	// StagedKey names the staged payload in Store.
	StagedKey string `json:"staged_key,omitempty"`
	// Store is the staging store's URL with its client options in the
	// query (s3://bucket/prefix?endpoint=...&path_style=true&region=...),
	// as S3Opener reads it; empty when no staging store is configured.
	Store string `json:"store,omitempty"`
	// ResultKey, set for asynchronous invocations, is where in Store the
	// worker writes its response envelope; a synchronous invocation
	// returns it instead. For synchronous invocations it is the key a
	// result too large to return inline is staged under.
	ResultKey string `json:"result_key,omitempty"`
	// Async marks an asynchronous invocation: the worker always writes its
	// response to ResultKey.
	Async bool `json:"async,omitempty"`
}

// response is what a Gale worker returns (or, for an asynchronous
// invocation, writes to the staging store).
type response struct {
	V string `json:"gale"`
	// Start and End are the in-function times, Unix nanoseconds.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Instance identifies the sandbox; Cold marks its first invocation.
	Instance   string          `json:"instance"`
	Cold       bool            `json:"cold,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadB64 []byte          `json:"payload_b64,omitempty"`
	// StagedKey names a result staged in the request's Store.
	StagedKey string `json:"staged_key,omitempty"`
	// Error is set when the handler failed; the invocation itself
	// succeeded as far as Lambda is concerned.
	Error *wireError `json:"error,omitempty"`
}

// wireError is a handler failure.
type wireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	// NotStarted reports that the handler refused the task before doing
	// any of it (it returned an error wrapping backends.ErrNotStarted).
	NotStarted bool `json:"not_started,omitempty"`
}

// setPayload stores p in the envelope's inline fields.
func setPayload(p []byte, raw *json.RawMessage, b64 *[]byte) {
	if len(p) > 0 && json.Valid(p) {
		*raw = json.RawMessage(p)
		return
	}
	if p == nil {
		p = []byte{}
	}
	*b64 = p
}

// payloadOf returns the inline payload.
func payloadOf(raw json.RawMessage, b64 []byte) []byte {
	if len(raw) > 0 {
		return []byte(raw)
	}
	return b64
}

// inlineSize is the size of p once carried inline in an envelope: as is
// when it is JSON, else base64.
func inlineSize(p []byte) int {
	if len(p) > 0 && json.Valid(p) {
		return len(p)
	}
	return base64.StdEncoding.EncodedLen(len(p)) + 2
}

// envelopeOverhead bounds the fields of an envelope around its payload
// (version, keys, store URL, times, instance): the payload limit check
// leaves this much room.
const envelopeOverhead = 4 << 10

// errNotEnvelope reports a body that is not a Gale envelope.
var errNotEnvelope = errors.New("aws: not a Gale envelope")

// decodeResponse parses a worker's response envelope.
func decodeResponse(body []byte) (*response, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil || r.V != envelopeVersion {
		return nil, errNotEnvelope
	}
	return &r, nil
}

// decodeRequest parses an invocation's request envelope.
func decodeRequest(body []byte) (*request, error) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("aws: worker: the invocation payload is not a Gale request (invoke Gale functions through aws.Lambda): %w", err)
	}
	if r.V != envelopeVersion {
		return nil, fmt.Errorf("aws: worker: the invocation payload is not a Gale request (no %q version field; invoke Gale functions through aws.Lambda)", envelopeVersion)
	}
	return &r, nil
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
