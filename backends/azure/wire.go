package azure

import (
	"encoding/json"
	"time"
)

// WireVersion is the version of Gale's invocation envelope, carried in
// both directions so a client and a worker of different releases notice.
const WireVersion = 1

// Request is the body Gale POSTs to its HTTP-triggered function. The task
// payload travels base64-encoded inside JSON, so it survives both ways the
// Functions host hands a request to a custom handler: forwarded as is, or
// as the string Data.req.Body of the payload mode.
type Request struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	Payload []byte `json:"payload"`
}

// Response is the body the worker answers with, HTTP 200 whether the task
// succeeded or failed: the function ran either way. Error is set when the
// handler failed; NotStarted when the handler itself reported that the
// task did not start (it wrapped backends.ErrNotStarted).
type Response struct {
	V          int        `json:"v"`
	Payload    []byte     `json:"payload,omitempty"`
	Start      time.Time  `json:"start"`
	End        time.Time  `json:"end"`
	Instance   string     `json:"instance"`
	Cold       bool       `json:"cold"`
	Error      *WireError `json:"error,omitempty"`
	NotStarted bool       `json:"notStarted,omitempty"`
}

// WireError is a failed task's error.
type WireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// InvokeRequest is the custom-handler request payload the Functions host
// POSTs to /FUNCTION when it does not forward the HTTP request itself:
// Data holds the trigger and input bindings by binding name (for an HTTP
// trigger named "req", Data["req"] is an HTTPData), Metadata the trigger
// metadata and a "sys" object.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]any             `json:"Metadata"`
}

// HTTPData is an HTTP trigger's value in an InvokeRequest.
type HTTPData struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      json.RawMessage     `json:"Query,omitempty"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Body       json.RawMessage     `json:"Body"`
	Identities json.RawMessage     `json:"Identities,omitempty"`
}

// InvokeResponse is the custom-handler response payload: Outputs by output
// binding name (an "http" output binding's value is an HTTPResponse), Logs
// for the invocation log, and ReturnValue for a "$return" binding.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// HTTPResponse is an http output binding's value in an InvokeResponse.
// The Functions host requires all four members (it fails the invocation
// with "Output body should have 'StatusCode', 'Status', 'Body', and
// 'Headers'" otherwise) and reads the codes as strings.
type HTTPResponse struct {
	StatusCode string            `json:"statusCode"`
	Status     string            `json:"status"`
	Body       string            `json:"body"`
	Headers    map[string]string `json:"headers"`
}
