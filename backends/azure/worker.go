package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends"
)

// Environment variables the Functions host sets for a custom handler.
const (
	// PortEnv names the loopback port the custom handler must listen on.
	PortEnv = "FUNCTIONS_CUSTOMHANDLER_PORT"
	// InstanceEnv identifies the instance (the VM or container) the host
	// runs on; the thesis used it to count Azure's instances.
	InstanceEnv = "WEBSITE_INSTANCE_ID"
	// InvocationIDHeader carries the host's invocation id on every request
	// it sends to the custom handler.
	InvocationIDHeader = "X-Azure-Functions-InvocationId"
)

// shutdownTimeout bounds how long Serve waits for running tasks after its
// context ends before it closes their connections.
const shutdownTimeout = 10 * time.Second

// ServeCustomHandler is the worker entry of an Azure Functions custom
// handler: it serves Gale tasks with h over HTTP on 127.0.0.1 at the port
// the Functions host names in FUNCTIONS_CUSTOMHANDLER_PORT, until ctx is
// done (it returns nil then: the host stops a custom handler by ending its
// process). The instance identity is WEBSITE_INSTANCE_ID, or an id drawn
// at start when the host does not set it.
func ServeCustomHandler(ctx context.Context, h backends.Handler) error {
	port := os.Getenv(PortEnv)
	if port == "" {
		return fmt.Errorf("azure: %s is not set: this process was not started by an Azure Functions host", PortEnv)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("azure: %s=%q is not a TCP port", PortEnv, port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("azure: custom handler: listening on the port in %s: %w", PortEnv, err)
	}
	err = Serve(ctx, h, ln, os.Getenv(InstanceEnv))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Serve serves Gale tasks with h as a custom handler on ln, which it
// closes, until ctx is done; it then stops accepting requests, gives
// running tasks up to 10 seconds, and returns ctx.Err(). instance names
// this worker's instance; empty draws a random id.
//
// It follows the custom-handler contract in both of its forms:
//
//   - forwarded HTTP (host.json customHandler.enableForwardingHttpRequest):
//     the host sends the caller's request to the same path, and the
//     handler's response goes back to the caller as is;
//   - the payload mode: the host POSTs {"Data": {...}, "Metadata": {...}}
//     to /FUNCTION, the caller's request being Data["req"] (Url, Method,
//     Headers, Body, ...), and the handler answers {"Outputs": {"res":
//     {statusCode, status, body, headers}}, "Logs": [...], "ReturnValue":
//     ...}; the HTTP response is set both as Outputs["res"] and as
//     ReturnValue, so either name of the http output binding works.
//
// Any GET answers 200: the host pings the handler until it answers before
// it sends invocations. Tasks run concurrently, as Azure sends many
// invocations to one instance at once; h must be safe for that. A panic
// in h is a task failure of type "panic". Serve owns the HTTP server's
// goroutines and waits for them.
func Serve(ctx context.Context, h backends.Handler, ln net.Listener, instance string) error {
	if instance == "" {
		var b [8]byte
		rand.Read(b[:])
		instance = "azure-" + hex.EncodeToString(b[:])
	}
	w := &worker{h: h, instance: instance}
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("azure: custom handler: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return ctx.Err()
}

type worker struct {
	h        backends.Handler
	instance string
	served   atomic.Bool // a task has started: the next ones are warm
}

func (w *worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(rw, "gale custom handler, instance "+w.instance+"\n")
		return
	case http.MethodPost:
	default:
		rw.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(rw, "gale custom handler: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*MaxPayloadBytes))
	if err != nil {
		http.Error(rw, "gale custom handler: reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var probe struct {
		Data json.RawMessage `json:"Data"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		http.Error(rw, "gale custom handler: the request is not JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if probe.Data == nil {
		// Forwarded HTTP: the body is Gale's request itself.
		resp, err := w.run(r.Context(), body)
		if err != nil {
			http.Error(rw, "gale custom handler: "+err.Error(), http.StatusBadRequest)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(resp)
		return
	}
	w.servePayload(rw, r, body)
}

// servePayload answers the payload mode's InvokeRequest.
func (w *worker) servePayload(rw http.ResponseWriter, r *http.Request, body []byte) {
	var ir InvokeRequest
	if err := json.Unmarshal(body, &ir); err != nil {
		http.Error(rw, "gale custom handler: malformed invocation request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := httpTrigger(ir)
	if err != nil {
		http.Error(rw, "gale custom handler: "+err.Error(), http.StatusBadRequest)
		return
	}
	inner, err := triggerBody(req.Body)
	if err != nil {
		http.Error(rw, "gale custom handler: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := w.run(r.Context(), inner)
	if err != nil {
		http.Error(rw, "gale custom handler: "+err.Error(), http.StatusBadRequest)
		return
	}
	var gr Response
	json.Unmarshal(resp, &gr)
	logs := []string{fmt.Sprintf("gale: invocation %s ran on %s (cold %t) from %s to %s", r.Header.Get(InvocationIDHeader),
		gr.Instance, gr.Cold, gr.Start.Format(time.RFC3339Nano), gr.End.Format(time.RFC3339Nano))}
	if gr.Error != nil {
		logs = append(logs, fmt.Sprintf("gale: task failed (%s): %s", gr.Error.Type, gr.Error.Message))
	}
	res := HTTPResponse{StatusCode: "200", Status: "200", Body: string(resp),
		Headers: map[string]string{"Content-Type": "application/json"}}
	out, _ := json.Marshal(InvokeResponse{Outputs: map[string]any{"res": res}, Logs: logs, ReturnValue: res})
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(out)
}

// httpTrigger finds the HTTP trigger's value among the invocation's
// inputs: the binding named "req" (the usual name, and the one Gale's
// function.json uses), else the one input that looks like an HTTP request.
func httpTrigger(ir InvokeRequest) (HTTPData, error) {
	var req HTTPData
	if raw, ok := ir.Data["req"]; ok {
		if err := json.Unmarshal(raw, &req); err != nil {
			return req, fmt.Errorf("Data.req is not an HTTP trigger value: %w", err)
		}
		return req, nil
	}
	for _, raw := range ir.Data {
		var d HTTPData
		if json.Unmarshal(raw, &d) == nil && d.Method != "" {
			return d, nil
		}
	}
	return req, errors.New(`the invocation has no HTTP trigger input (Data has no "req"); the function must have an httpTrigger binding`)
}

// triggerBody returns the Gale request in an HTTP trigger's Body: the host
// passes the caller's body as a JSON string, or as the parsed JSON value.
func triggerBody(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, errors.New("the HTTP trigger's Body is empty")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("the HTTP trigger's Body: %w", err)
		}
		return []byte(s), nil
	}
	return raw, nil
}

// run decodes a Gale request, runs its task and returns the encoded
// Response; an error means the request was malformed and no task ran.
func (w *worker) run(ctx context.Context, body []byte) ([]byte, error) {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("malformed Gale request: %w", err)
	}
	if req.V != WireVersion {
		return nil, fmt.Errorf("Gale request version %d, this worker speaks %d; redeploy the function with the driver's Gale release", req.V, WireVersion)
	}
	resp := Response{V: WireVersion, Instance: w.instance, Cold: w.served.CompareAndSwap(false, true)}
	resp.Start = time.Now()
	out, err := w.call(ctx, req.Payload)
	resp.End = time.Now()
	if err != nil {
		var fe *backends.FunctionError
		resp.Error = &WireError{Type: "error", Message: err.Error()}
		if errors.As(err, &fe) {
			resp.Error = &WireError{Type: fe.Type, Message: fe.Message}
		}
		resp.NotStarted = errors.Is(err, backends.ErrNotStarted)
	} else {
		resp.Payload = out
	}
	return json.Marshal(resp)
}

// call runs h, turning a panic into a FunctionError of type "panic".
func (w *worker) call(ctx context.Context, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &backends.FunctionError{Backend: "azure", Type: "panic", Message: fmt.Sprintf("%v\n%s", p, debug.Stack())}
		}
	}()
	return w.h(ctx, payload)
}
