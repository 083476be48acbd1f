package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
)

// RuntimeAPIEnv is the environment variable Lambda (and the Runtime
// Interface Emulator) sets in a function's sandbox: the address of the
// Runtime API the function polls for invocations. Its presence is how a
// Gale binary knows it was started as a Lambda function.
const RuntimeAPIEnv = "AWS_LAMBDA_RUNTIME_API"

// ErrNotLambda is returned by ServeLambda outside a Lambda sandbox.
var ErrNotLambda = errors.New("aws: not running as a Lambda function (" + RuntimeAPIEnv + " is not set)")

// IsLambda reports whether this process was started by Lambda's runtime
// (RuntimeAPIEnv is set).
func IsLambda() bool { return os.Getenv(RuntimeAPIEnv) != "" }

// ServeLambda serves Gale tasks as a Lambda function with a custom runtime:
// the program is the function's `bootstrap`, and aws-lambda-go's runtime
// loop fetches invocations from the Runtime API and hands their payloads to
// h. Each response reports the in-function start and end times, the
// sandbox's identity (the sandbox-root id in /proc/self/cgroup on Lambda,
// else an id drawn when the process started) and whether this was the
// sandbox's first invocation (a cold start).
//
// ServeLambda returns ErrNotLambda at once if RuntimeAPIEnv is not set.
// Otherwise it does not return: like lambda.Start, the runtime loop runs
// for the life of the sandbox and ends the process itself if the Runtime
// API fails, which is how Lambda expects a runtime to end (the platform
// then starts a fresh sandbox). ctx is the parent of every invocation's
// context, which also carries the invocation's deadline.
//
// A handler error or panic is reported in the response envelope with its
// type ("error", "panic", or a backends.FunctionError's Type), not as a
// Lambda function error, so the caller still learns the task's timing and
// instance; Lambda function errors thus mean the runtime itself failed
// (timeout, out of memory, a crashed process).
func ServeLambda(ctx context.Context, h backends.Handler) error {
	if !IsLambda() {
		return ErrNotLambda
	}
	w := newLambdaWorker(h, instanceID(readCgroup()))
	// lambda.StartWithOptions owns the runtime loop and never returns.
	lambda.StartWithOptions(w, lambda.WithContext(ctx))
	return errors.New("aws: the Lambda runtime loop returned")
}

// lambdaWorker is the lambda.Handler ServeLambda runs.
type lambdaWorker struct {
	h        backends.Handler
	instance string
	served   atomic.Bool // an invocation has started in this sandbox

	mu     sync.Mutex
	stores map[string]objstore.Store // staging stores by URL
}

var _ lambda.Handler = (*lambdaWorker)(nil)

func newLambdaWorker(h backends.Handler, instance string) *lambdaWorker {
	return &lambdaWorker{h: h, instance: instance, stores: map[string]objstore.Store{}}
}

// Invoke implements lambda.Handler.
func (w *lambdaWorker) Invoke(ctx context.Context, body []byte) ([]byte, error) {
	start := time.Now()
	cold := w.served.CompareAndSwap(false, true)
	req, err := decodeRequest(body)
	if err != nil {
		return nil, err
	}
	resp := &response{V: envelopeVersion, Start: start.UnixNano(), Instance: w.instance, Cold: cold}
	var store objstore.Store
	if req.Store != "" {
		if store, err = w.store(ctx, req.Store); err != nil {
			return w.finish(ctx, req, store, resp, nil, &wireError{Type: "error", Message: err.Error(), NotStarted: true})
		}
	}
	payload := payloadOf(req.Payload, req.PayloadB64)
	if req.StagedKey != "" {
		if store == nil {
			return w.finish(ctx, req, store, resp, nil, &wireError{Type: "error", NotStarted: true,
				Message: fmt.Sprintf("aws: worker: task %s: staged payload %s names no staging store", req.Task, req.StagedKey)})
		}
		if payload, err = readObject(ctx, store, req.StagedKey); err != nil {
			return w.finish(ctx, req, store, resp, nil, &wireError{Type: "error", NotStarted: true,
				Message: fmt.Sprintf("aws: worker: task %s: reading the staged payload: %v", req.Task, err)})
		}
	}
	out, werr := runHandler(ctx, w.h, payload)
	return w.finish(ctx, req, store, resp, out, werr)
}

// finish completes resp with the handler's outcome and returns the body
// Lambda sends back: resp itself, with a result too large for Lambda's
// response limit staged in store; or, for an asynchronous invocation, an
// acknowledgement after resp was written to req.ResultKey.
func (w *lambdaWorker) finish(ctx context.Context, req *request, store objstore.Store, resp *response, out []byte, werr *wireError) ([]byte, error) {
	resp.End = time.Now().UnixNano()
	resp.Error = werr
	if req.Async {
		if store == nil || req.ResultKey == "" {
			return nil, fmt.Errorf("aws: worker: asynchronous task %s names no store for its result", req.Task)
		}
		setPayload(out, &resp.Payload, &resp.PayloadB64)
		b, err := json.Marshal(resp)
		if err != nil {
			return nil, err
		}
		if err := store.Put(ctx, req.ResultKey, bytes.NewReader(b)); err != nil {
			// Returned as a Lambda function error: the task ran, but its
			// result is lost; Lambda's own async retries may run it again.
			return nil, fmt.Errorf("aws: worker: writing the result of task %s: %w", req.Task, err)
		}
		return json.Marshal(response{V: envelopeVersion, Start: resp.Start, End: resp.End, Instance: resp.Instance, Cold: resp.Cold})
	}
	if werr == nil && inlineSize(out)+envelopeOverhead > MaxSyncPayload {
		if store == nil || req.ResultKey == "" {
			resp.Error = &wireError{Type: "error", Message: fmt.Sprintf(
				"aws: task %s: result of %d bytes exceeds Lambda's %d-byte response limit; configure a staging store (backends.aws.staging) or write large results to object storage",
				req.Task, len(out), MaxSyncPayload)}
		} else if err := store.Put(ctx, req.ResultKey, bytes.NewReader(out)); err != nil {
			resp.Error = &wireError{Type: "error", Message: fmt.Sprintf("aws: worker: task %s: staging a %d-byte result: %v", req.Task, len(out), err)}
		} else {
			resp.StagedKey = req.ResultKey
		}
		out = nil
	}
	if resp.Error == nil && resp.StagedKey == "" {
		setPayload(out, &resp.Payload, &resp.PayloadB64)
	}
	return json.Marshal(resp)
}

// store opens (once per sandbox) the staging store a request names.
func (w *lambdaWorker) store(ctx context.Context, rawURL string) (objstore.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.stores[rawURL]; ok {
		return s, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" {
		return nil, fmt.Errorf("aws: worker: staging store %q is not an s3:// URL", rawURL)
	}
	s, err := S3Opener(S3Config{})(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("aws: worker: opening the staging store: %w", err)
	}
	w.stores[rawURL] = s
	return s, nil
}

// runHandler runs h, turning an error or a panic into a wireError.
func runHandler(ctx context.Context, h backends.Handler, payload []byte) (out []byte, werr *wireError) {
	defer func() {
		if p := recover(); p != nil {
			out, werr = nil, &wireError{Type: "panic", Message: fmt.Sprintf("%v\n%s", p, debug.Stack())}
		}
	}()
	out, err := h(ctx, payload)
	if err != nil {
		werr = &wireError{Type: "error", Message: err.Error(), NotStarted: errors.Is(err, backends.ErrNotStarted)}
		var fe *backends.FunctionError
		switch {
		case errors.As(err, &fe):
			werr.Type, werr.Message = fe.Type, fe.Message
		case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
			// The invocation's deadline (the function's timeout) passed
			// and the handler gave up: the same outcome as Lambda
			// stopping the runtime, which races with this answer.
			werr.Type = "timeout"
			werr.Message = "Task timed out: the function's timeout passed before the task finished (raise the function's timeout: timeout in the backends.aws section, then gale deploy --backend aws): " + err.Error()
		}
		return nil, werr
	}
	return out, nil
}

// readCgroup returns /proc/self/cgroup, or "" where there is none.
func readCgroup() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	return string(b)
}

// instanceID returns the sandbox's identity: on Lambda, the random
// "sandbox-root-..." component of the process's cgroup path, which names
// the microVM sandbox (the thesis's method); elsewhere (the emulator, a
// container) an id drawn now, once per process, so each sandbox still has
// its own.
func instanceID(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, seg := range strings.Split(parts[2], "/") {
			if strings.HasPrefix(seg, "sandbox-root") {
				return seg
			}
		}
	}
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return fmt.Sprintf("pid-%d", os.Getpid())
	}
	return "sandbox-" + hex.EncodeToString(b[:])
}
