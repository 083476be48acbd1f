package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
)

// AsyncInvoker is the optional capability of starting a task without
// waiting for it, the way the thesis ran 1000 one-minute tasks on AWS: the
// platform queues the event and the worker writes its result to object
// storage, where the caller collects it. Backends that lack it are driven
// through Invoke from as many goroutines as tasks.
type AsyncInvoker interface {
	// InvokeAsync starts t and returns once the platform has accepted it.
	// An error wrapping backends.ErrNotStarted means it was not accepted.
	InvokeAsync(ctx context.Context, t backends.Task) (*Pending, error)
	// Wait blocks until the task's result is available, and returns it
	// as Invoke would.
	Wait(ctx context.Context, p *Pending) (backends.Result, error)
}

var _ AsyncInvoker = (*Lambda)(nil)

// Pending is an asynchronous invocation that has been accepted.
type Pending struct {
	// Task is the task's ID.
	Task string
	// ResultKey is where, in the staging store, the worker writes the
	// result.
	ResultKey string
	// Sent is when the invocation was sent; Accepted when Lambda accepted
	// it (with the emulator, which runs Event invocations synchronously,
	// when the task finished).
	Sent, Accepted time.Time
}

// InvokeAsync starts t as an asynchronous (Event) invocation and returns
// when Lambda has queued it (HTTP 202). It needs a staging store
// (LambdaConfig.Staging, else ErrNoStaging): the worker writes its response
// envelope — the result, or the handler's error, with its timing and
// instance — to the staging store under Pending.ResultKey, and Wait reads
// it from there. A payload over MaxAsyncPayload is staged too. Throttling
// is retried as for Invoke.
//
// A runtime failure (timeout, out of memory, crash) leaves no result; Lambda
// retries a failed event up to twice unless the function's event invoke
// config says otherwise (gale deploy sets MaximumRetryAttempts to 0, since
// Gale retries tasks itself), and Wait gives up after
// LambdaConfig.AsyncResultTimeout with ErrLostResult.
func (l *Lambda) InvokeAsync(ctx context.Context, t backends.Task) (*Pending, error) {
	if l.closed.Load() {
		return nil, backends.ErrClosed
	}
	if l.staging == nil {
		return nil, fmt.Errorf("aws: %s: task %s: asynchronous invocations return their results through object storage: %w (staging: s3://bucket/prefix in the backends.aws section): %w",
			l.where, t.ID, ErrNoStaging, backends.ErrNotStarted)
	}
	req, _, err := l.prepare(ctx, t, true, MaxAsyncPayload)
	if err != nil {
		return nil, err
	}
	// The staged payload, if any, is not deleted here: the function reads
	// it later. Wait deletes it with the result.
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	p := &Pending{Task: t.ID, ResultKey: req.ResultKey, Sent: time.Now()}
	out, raw, err := l.send(ctx, t, body, types.InvocationTypeEvent)
	p.Accepted = time.Now()
	if err != nil {
		l.deleteStaged(ctx, req.StagedKey)
		return nil, err
	}
	if out.StatusCode != 202 && out.StatusCode != 200 {
		return nil, fmt.Errorf("aws: %s: task %s: asynchronous invocation answered HTTP %d, not 202", l.where, t.ID, out.StatusCode)
	}
	if out.FunctionError != nil && *out.FunctionError != "" {
		// Only a runtime that handles Event invocations synchronously
		// (the emulator) can answer with a function error here.
		_, err := l.decode(ctx, t, out.FunctionError, out.Payload, raw, "")
		l.deleteStaged(ctx, req.StagedKey)
		return nil, err
	}
	return p, nil
}

// Wait polls the staging store every AsyncPoll until p's result appears,
// then returns it (deleting it and any staged payload) as Invoke would
// have: a *backends.FunctionError if the handler failed, ErrLostResult
// after AsyncResultTimeout.
func (l *Lambda) Wait(ctx context.Context, p *Pending) (backends.Result, error) {
	if l.staging == nil {
		return backends.Result{}, fmt.Errorf("aws: %s: task %s: %w", l.where, p.Task, ErrNoStaging)
	}
	deadline := p.Accepted.Add(l.cfg.AsyncResultTimeout)
	tick := time.NewTicker(l.cfg.AsyncPoll)
	defer tick.Stop()
	for {
		b, err := readObject(ctx, l.staging, p.ResultKey)
		if err == nil {
			l.deleteStaged(ctx, p.ResultKey, stagedInputOf(p.ResultKey))
			t := backends.Task{ID: p.Task}
			res, err := l.decode(ctx, t, nil, b, nil, "")
			res.Invocation.Sent = p.Sent
			res.Invocation.Returned = time.Now()
			return res, err
		}
		if !errors.Is(err, objstore.ErrNotExist) {
			return backends.Result{}, fmt.Errorf("aws: %s: task %s: reading its result %s: %w", l.where, p.Task, p.ResultKey, err)
		}
		if time.Now().After(deadline) {
			return backends.Result{}, fmt.Errorf("aws: %s: task %s: %w after %s at %s in %s (the function may have timed out or run out of memory: see its CloudWatch logs)",
				l.where, p.Task, ErrLostResult, l.cfg.AsyncResultTimeout, p.ResultKey, l.staging)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return backends.Result{}, fmt.Errorf("aws: %s: task %s: waiting for its result: %w", l.where, p.Task, ctx.Err())
		}
	}
}

// stagedInputOf returns the key a payload staged with the result key k
// would have.
func stagedInputOf(resultKey string) string {
	return resultKey[:len(resultKey)-len("out")] + "in"
}

// deleteStaged deletes staging objects, best effort, even if ctx is done.
func (l *Lambda) deleteStaged(ctx context.Context, keys ...string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	for _, k := range keys {
		if k != "" {
			_ = l.staging.Delete(dctx, k)
		}
	}
}
