package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends"
)

// ErrUnauthorized is returned (wrapped, with backends.ErrNotStarted) when
// the Functions host refused the function key: HTTP 401 or 403.
var ErrUnauthorized = errors.New("azure: function key refused")

// ErrNotDeployed is returned (wrapped, with backends.ErrNotStarted) when
// the app has no such function: HTTP 404.
var ErrNotDeployed = errors.New("azure: function not deployed")

// ErrThrottled is returned (wrapped, with backends.ErrNotStarted) when the
// app kept answering HTTP 429 or 503 for Config.MaxAttempts attempts.
var ErrThrottled = errors.New("azure: invocation throttled")

// maxErrorBody is how much of an unexpected response body a message quotes.
const maxErrorBody = 2 << 10

// Stats counts a backend's requests.
type Stats struct {
	// Invocations is how many tasks were sent; Requests how many HTTP
	// requests that took, retries included.
	Invocations, Requests int64
	// Throttled is how many responses were HTTP 429 or 503 (each one
	// retried after a backoff, unless it was the last attempt).
	Throttled int64
}

// Backend invokes an HTTP-triggered Azure Function whose custom handler is
// a Gale worker (ServeCustomHandler). It is safe for concurrent use.
type Backend struct {
	cfg      Config
	endpoint string
	client   *http.Client
	sem      chan struct{}

	// closeCtx ends with Close; in-flight invocations are cancelled then.
	// A context rather than a channel so that Invoke can tie its own to
	// it with context.AfterFunc, without a goroutine per call.
	closeCtx context.Context
	closeAll context.CancelFunc
	inflight sync.WaitGroup
	mu       sync.Mutex // guards closed against inflight.Add
	closed   bool

	invocations, requests, throttled atomic.Int64
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
)

// New returns a backend for cfg. It validates cfg and sends no request:
// a missing app, function or key shows on the first Invoke.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	closeCtx, closeAll := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	tr.MaxConnsPerHost = 0
	return &Backend{
		cfg:      cfg,
		endpoint: cfg.endpoint(),
		client:   &http.Client{Transport: tr},
		sem:      make(chan struct{}, cfg.Concurrency),
		closeCtx: closeCtx,
		closeAll: closeAll,
	}, nil
}

// Endpoint returns the URL invocations are sent to (without the key).
func (b *Backend) Endpoint() string { return b.endpoint }

// Traits implements backends.Describer.
func (b *Backend) Traits() backends.Traits { return b.cfg.Traits() }

// Stats returns the backend's request counters.
func (b *Backend) Stats() Stats {
	return Stats{Invocations: b.invocations.Load(), Requests: b.requests.Load(), Throttled: b.throttled.Load()}
}

// Close stops new invocations, cancels those in flight (they may have run)
// and waits for them to return. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.closeAll()
	b.inflight.Wait()
	b.client.CloseIdleConnections()
	return nil
}

// Invoke implements backends.Backend: it POSTs the task to the function
// and maps the answer. HTTP 2xx carries the worker's result or its
// failure (a *backends.FunctionError); 429 and 503 are retried with
// backoff, then fail with ErrThrottled; 401 and 403 fail with
// ErrUnauthorized; 404 with ErrNotDeployed; a refused connection or an
// unknown host likewise certainly did not run. All of those wrap
// backends.ErrNotStarted. A 5xx after the request was accepted, a broken
// connection or a timeout means the task may have run.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.inflight.Add(1)
	b.mu.Unlock()
	defer b.inflight.Done()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(b.closeCtx, func() {
		cancel(errors.New("azure: backend closed while the task was in flight (it may have run)"))
	})
	defer stop()

	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return backends.Result{}, fmt.Errorf("azure: task %s: waiting for a free invocation slot: %w", t.ID, context.Cause(ctx))
	}
	defer func() { <-b.sem }()
	b.invocations.Add(1)

	body, err := json.Marshal(Request{V: WireVersion, ID: t.ID, Payload: t.Payload})
	if err != nil {
		return backends.Result{}, err
	}
	if len(body) > MaxPayloadBytes {
		return backends.Result{}, fmt.Errorf("azure: task %s: request of %d bytes exceeds Azure's %d-byte HTTP request limit; send large task inputs through object storage: %w",
			t.ID, len(body), MaxPayloadBytes, backends.ErrNotStarted)
	}
	for attempt := 1; ; attempt++ {
		res, retryAfter, err := b.attempt(ctx, t, body)
		if !errors.Is(err, errRetry) {
			return res, err
		}
		b.throttled.Add(1)
		if attempt >= b.cfg.MaxAttempts {
			return backends.Result{}, fmt.Errorf("%w: task %s: %s answered %v %d times; lower concurrency in backends.azure or raise the app's scale limit: %w",
				ErrThrottled, t.ID, b.endpoint, err, attempt, backends.ErrNotStarted)
		}
		d := b.backoff(attempt, retryAfter)
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			// Every attempt so far was refused: the task never started.
			return backends.Result{}, fmt.Errorf("azure: task %s: throttled, then %w: %w", t.ID, context.Cause(ctx), backends.ErrNotStarted)
		}
	}
}

// errRetry marks a throttled attempt.
var errRetry = errors.New("azure: throttled")

// backoff returns the wait before attempt+1 (backends.Backoff).
func (b *Backend) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return backends.Backoff{Base: b.cfg.RetryBase, Max: b.cfg.RetryMax}.Wait(attempt, retryAfter)
}

// attempt sends one request. It returns an error wrapping errRetry (and
// the Retry-After delay, if any) for a throttled answer.
func (b *Backend) attempt(ctx context.Context, t backends.Task, body []byte) (backends.Result, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	url := b.endpoint
	if b.cfg.KeyInQuery {
		url += "?" + KeyQuery + "=" + neturl.QueryEscape(b.cfg.Key)
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return backends.Result{}, 0, fmt.Errorf("azure: task %s: %w: %w", t.ID, err, backends.ErrNotStarted)
	}
	req.Header.Set("Content-Type", "application/json")
	backends.MarkReplayable(req.Header)
	if b.cfg.Key != "" && !b.cfg.KeyInQuery {
		req.Header.Set(KeyHeader, b.cfg.Key)
	}
	b.requests.Add(1)
	sent := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return backends.Result{}, 0, b.transportError(ctx, actx, t, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 2*MaxPayloadBytes))
	returned := time.Now()
	if err != nil {
		return backends.Result{}, 0, b.transportError(ctx, actx, t, err)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return b.result(t, data, sent, returned)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return backends.Result{}, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("%w: HTTP %d", errRetry, code)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		fix := "set key in the backends.azure section to a function key of " + b.cfg.Function + " or the app's host key (`az functionapp function keys list` or the portal's Function Keys)"
		what := "refused the key"
		if b.cfg.Key == "" {
			what = "requires a key and none was sent"
		}
		return backends.Result{}, 0, fmt.Errorf("%w: task %s: %s %s (HTTP %d); %s: %w", ErrUnauthorized, t.ID, b.endpoint, what, code, fix, backends.ErrNotStarted)
	case code == http.StatusNotFound:
		return backends.Result{}, 0, fmt.Errorf("%w: task %s: %s answered 404: the app has no function %q; deploy it with `gale deploy --backend azure`, or check app, url, function and route_prefix in backends.azure: %w",
			ErrNotDeployed, t.ID, b.endpoint, b.cfg.Function, backends.ErrNotStarted)
	case code == http.StatusRequestEntityTooLarge:
		return backends.Result{}, 0, fmt.Errorf("azure: task %s: the request of %d bytes is too large for the app (HTTP 413); send large task inputs through object storage: %w", t.ID, len(body), backends.ErrNotStarted)
	case code == http.StatusGatewayTimeout || code == http.StatusRequestTimeout:
		return backends.Result{}, 0, &backends.FunctionError{Backend: "azure", Type: "timeout",
			Message: fmt.Sprintf("task %s: HTTP %d after %s (Azure ends HTTP-triggered invocations after %s): %s", t.ID, code, returned.Sub(sent).Round(time.Millisecond), HTTPTimeout, quote(data))}
	case code >= 500:
		// The host accepted the invocation and it failed: the worker
		// crashed, answered an error, or the host could not read its
		// answer. The task may have run.
		return backends.Result{}, 0, &backends.FunctionError{Backend: "azure", Type: "crash",
			Message: fmt.Sprintf("task %s: the Functions host answered HTTP %d: %s", t.ID, code, quote(data))}
	default:
		return backends.Result{}, 0, fmt.Errorf("azure: task %s: unexpected HTTP %d from %s: %s", t.ID, code, b.endpoint, quote(data))
	}
}

// result decodes a worker's Response.
func (b *Backend) result(t backends.Task, data []byte, sent, returned time.Time) (backends.Result, time.Duration, error) {
	var r Response
	if err := json.Unmarshal(data, &r); err != nil || r.V == 0 {
		return backends.Result{}, 0, fmt.Errorf("azure: task %s: %s did not answer as a Gale worker (is %q a Gale custom handler? deploy it with `gale deploy --backend azure`): %s",
			t.ID, b.endpoint, b.cfg.Function, quote(data))
	}
	if r.V != WireVersion {
		return backends.Result{}, 0, fmt.Errorf("azure: task %s: the worker speaks version %d, this driver %d; redeploy the function with this Gale release", t.ID, r.V, WireVersion)
	}
	inv := backends.Invocation{Sent: sent, Returned: returned, Start: r.Start, End: r.End, Instance: r.Instance, Cold: r.Cold}
	if r.Error != nil {
		fe := &backends.FunctionError{Backend: "azure", Type: r.Error.Type, Message: r.Error.Message}
		if r.NotStarted {
			return backends.Result{Invocation: inv}, 0, fmt.Errorf("azure: task %s: %w: %w", t.ID, fe, backends.ErrNotStarted)
		}
		return backends.Result{Invocation: inv}, 0, fe
	}
	return backends.Result{Payload: r.Payload, Invocation: inv}, 0, nil
}

// transportError maps a failed request: a refused connection or an
// unknown host certainly did not reach the function.
func (b *Backend) transportError(ctx, actx context.Context, t backends.Task, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("azure: task %s: %w (it may have run)", t.ID, context.Cause(ctx))
	}
	if actx.Err() != nil {
		return &backends.FunctionError{Backend: "azure", Type: "timeout",
			Message: fmt.Sprintf("task %s: no answer from %s within %s (backends.azure timeout)", t.ID, b.endpoint, b.cfg.Timeout)}
	}
	var dnsErr *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return fmt.Errorf("azure: task %s: cannot reach %s (%v); check app or url in backends.azure, and that the app or local host is running: %w",
			t.ID, b.endpoint, err, backends.ErrNotStarted)
	}
	return fmt.Errorf("azure: task %s: request to %s failed (it may have run): %w", t.ID, b.endpoint, err)
}

// retryAfter parses a Retry-After header in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func quote(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// ThrottledRetries implements backends.Throttler.
func (b *Backend) ThrottledRetries() int64 { return b.Stats().Throttled }

var _ backends.Throttler = (*Backend)(nil)
