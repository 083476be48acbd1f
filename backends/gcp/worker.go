package gcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/galeproject/gale/backends"
)

// FunctionTarget is the entry point name Gale deploys its function under
// (the FUNCTION_TARGET the platform sets in the instance).
const FunctionTarget = "Gale"

// Function is the worker side of a Backend: an http.Handler that runs each
// POSTed payload through a backends.Handler. Create it with NewFunction.
type Function struct {
	h        backends.Handler
	instance string
	served   atomic.Bool // an invocation has started: later ones are warm

	mu       sync.Mutex
	draining bool
	running  sync.WaitGroup
}

// NewFunction returns the function serving h. Its instance id is drawn
// now, once per process: Cloud Functions exposes no container id, so, as
// in the thesis's experiments, code run at cold start names the instance.
func NewFunction(h backends.Handler) *Function {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := "gcp-" + hex.EncodeToString(b[:])
	if rev := os.Getenv("K_REVISION"); rev != "" {
		id = rev + "/" + id
	}
	return &Function{h: h, instance: id}
}

// Instance returns the instance id the function reports.
func (f *Function) Instance() string { return f.instance }

// Drain makes the function refuse new invocations (as not started, so the
// client retries them elsewhere) and waits for those running, or for ctx.
func (f *Function) Drain(ctx context.Context) error {
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// The waiter ends when the running tasks do; the process is
		// about to exit anyway.
		return ctx.Err()
	}
}

// ServeHTTP runs one invocation: the request body is the payload; the
// response is 200 with the result, or 500 with X-Gale-Error-Type and the
// error text. Start and end times, the instance id and the cold flag go in
// X-Gale-* headers either way.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "gale function: POST a task payload", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	if f.draining {
		f.mu.Unlock()
		w.Header().Set(headerNotStarted, "true")
		http.Error(w, "gale function: instance shutting down", http.StatusServiceUnavailable)
		return
	}
	f.running.Add(1)
	f.mu.Unlock()
	defer f.running.Done()

	payload, err := io.ReadAll(r.Body)
	if err != nil {
		w.Header().Set(headerNotStarted, "true")
		w.Header().Set(headerErrorType, "request")
		http.Error(w, "gale function: reading the payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	cold := !f.served.Swap(true)
	start := time.Now()
	out, typ, msg, notStarted := f.run(r.Context(), payload)
	end := time.Now()
	h := w.Header()
	h.Set(headerStart, start.UTC().Format(time.RFC3339Nano))
	h.Set(headerEnd, end.UTC().Format(time.RFC3339Nano))
	h.Set(headerInstance, f.instance)
	h.Set(headerCold, fmt.Sprint(cold))
	if typ != "" {
		h.Set(headerErrorType, typ)
		if notStarted {
			h.Set(headerNotStarted, "true")
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, msg)
		return
	}
	if len(out) > MaxPayloadBytes {
		h.Set(headerErrorType, "error")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "result of %d bytes exceeds the %d-byte response limit; write large results to object storage", len(out), MaxPayloadBytes)
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// run calls the handler, turning an error or a panic into a failure type
// and message.
func (f *Function) run(ctx context.Context, payload []byte) (out []byte, typ, msg string, notStarted bool) {
	defer func() {
		if p := recover(); p != nil {
			out, typ, msg, notStarted = nil, "panic", fmt.Sprintf("%v\n%s", p, debug.Stack()), false
		}
	}()
	out, err := f.h(ctx, payload)
	if err == nil {
		return out, "", "", false
	}
	typ, msg = "error", err.Error()
	var fe *backends.FunctionError
	if errors.As(err, &fe) {
		typ, msg = fe.Type, fe.Message
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		typ = "timeout"
	}
	return nil, typ, msg, errors.Is(err, backends.ErrNotStarted)
}

// ServeFunction is the worker entry of a program the platform started as
// a Cloud Function (FUNCTION_TARGET or K_SERVICE set): it registers h with
// the Functions Framework for Go and serves it on PORT (default 8080), all
// interfaces, as the platform's container contract requires; HOST, if set,
// narrows the address (stand-ins listen on 127.0.0.1).
//
// It returns the server's error, or, when ctx is done, nil after the
// running invocations finish (new ones are refused as not started). The
// Functions Framework offers no way to stop its listener
// (funcframework.StartHostPort wraps http.ListenAndServe), so the server
// goroutine outlives ServeFunction: the caller is a worker process that
// exits next, and the platform stops instances by ending the process.
func ServeFunction(ctx context.Context, h backends.Handler) error {
	f := NewFunction(h)
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/", f.ServeHTTP); err != nil {
		return fmt.Errorf("gcp: registering the function: %w", err)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gcp: serving the function on port %s: %w", port, err)
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.Drain(dctx); err != nil {
			return fmt.Errorf("gcp: invocations still running at shutdown: %w", err)
		}
		return nil
	}
}
