package gcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/galeproject/gale/backends"
)

// ErrCredentials is returned (wrapped) when no identity token could be
// obtained for the function, or the function refused the one sent.
var ErrCredentials = errors.New("gcp: no usable Google credentials for the function")

// Headers of the wire contract between Backend and FunctionHandler.
const (
	headerTask      = "X-Gale-Task"
	headerStart     = "X-Gale-Start"
	headerEnd       = "X-Gale-End"
	headerInstance  = "X-Gale-Instance"
	headerCold      = "X-Gale-Cold"
	headerErrorType = "X-Gale-Error-Type"
	// headerNotStarted marks a refusal by the worker before the task ran
	// (it is shutting down, or its handler returned ErrNotStarted).
	headerNotStarted = "X-Gale-Not-Started"
)

// maxErrorBody bounds how much of an error response is read for messages.
const maxErrorBody = 64 << 10

// Stats counts a Backend's invocations.
type Stats struct {
	// Invocations is how many Invoke calls sent at least one request.
	Invocations int64
	// Throttled is how many requests the platform rejected before running
	// them (429, no available instance) and were retried or given up on.
	Throttled int64
	// GaveUp is how many invocations ended in ErrNotStarted after
	// MaxAttempts rejections.
	GaveUp int64
}

// Backend invokes an HTTP-triggered Cloud Function, one request per task.
// It is safe for concurrent use.
type Backend struct {
	cfg       Config
	client    *http.Client
	ownClient bool
	tokens    oauth2.TokenSource // nil: no token
	slots     chan struct{}      // bounds invocations in flight
	done      chan struct{}      // closed by Close

	mu       sync.Mutex
	inflight []int // per endpoint
	next     int   // round-robin start among equally loaded endpoints
	closed   bool
	wg       sync.WaitGroup // Invoke calls in progress

	invocations, throttled, gaveUp atomic.Int64
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
)

// New returns a Backend for the function cfg names. It validates cfg and
// prepares the token source (reading credentials, not fetching a token);
// it sends no request.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Backend{
		cfg:   cfg,
		slots: make(chan struct{}, cfg.Concurrency),
		done:  make(chan struct{}),
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{cfg.URL}
		b.cfg.Endpoints = cfg.Endpoints
	}
	b.inflight = make([]int, len(cfg.Endpoints))
	b.client = cfg.HTTPClient
	if b.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.Concurrency
		b.client = &http.Client{Transport: t}
		b.ownClient = true
	}
	ts, err := tokenSource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.tokens = ts
	return b, nil
}

// tokenSource returns the identity-token source cfg asks for, or nil.
func tokenSource(ctx context.Context, cfg Config) (oauth2.TokenSource, error) {
	if cfg.TokenSource != nil {
		return cfg.TokenSource, nil
	}
	need := cfg.Auth == AuthIDToken
	if cfg.Auth == AuthAuto {
		for _, u := range cfg.Endpoints {
			if !isLoopback(u) {
				need = true
			}
		}
	}
	if !need {
		return nil, nil
	}
	// The audience of a Cloud Functions identity token is the function's
	// URL. With several endpoints (unusual outside stand-ins) the first
	// one's URL is the audience.
	audience := cfg.Endpoints[0]
	var opts []idtoken.ClientOption
	if cfg.CredentialsFile != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	}
	ts, err := idtoken.NewTokenSource(ctx, audience, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: identity tokens for %s: %w (run `gcloud auth application-default login` with a service account, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key, or set gcp.credentials_file; gcp.auth: none for a function that allows unauthenticated calls)",
			ErrCredentials, audience, err)
	}
	return ts, nil
}

// Traits implements backends.Describer.
func (b *Backend) Traits() backends.Traits { return b.cfg.Traits() }

// Stats returns the invocation counters so far.
func (b *Backend) Stats() Stats {
	return Stats{Invocations: b.invocations.Load(), Throttled: b.throttled.Load(), GaveUp: b.gaveUp.Load()}
}

// Close implements backends.Backend: it refuses new invocations, waits
// for those in progress and closes idle connections. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.wg.Wait()
	if b.ownClient {
		b.client.CloseIdleConnections()
	}
	return nil
}

// Invoke implements backends.Backend.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.Result{}, backends.ErrClosed
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()

	if len(t.Payload) > MaxPayloadBytes {
		return backends.Result{}, fmt.Errorf("gcp: task %s: payload of %d bytes exceeds Cloud Functions' %d-byte request limit (send large inputs through object storage): %w",
			t.ID, len(t.Payload), MaxPayloadBytes, backends.ErrNotStarted)
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return backends.Result{}, fmt.Errorf("gcp: task %s: waiting for a free slot: %w: %w", t.ID, backends.ErrNotStarted, ctx.Err())
	case <-b.done:
		return backends.Result{}, backends.ErrClosed
	}
	defer func() { <-b.slots }()
	b.invocations.Add(1)

	var last error
	for attempt := 1; ; attempt++ {
		res, retryAfter, err := b.once(ctx, t)
		if err == nil || retryAfter < 0 {
			return res, err
		}
		// Rejected before it ran: back off and try again.
		b.throttled.Add(1)
		last = err
		if attempt >= b.cfg.MaxAttempts {
			b.gaveUp.Add(1)
			return backends.Result{}, fmt.Errorf("gcp: task %s: rejected %d times, giving up (raise the function's max instances or lower gcp.concurrency): %w", t.ID, attempt, last)
		}
		wait := b.backoff(attempt, retryAfter)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return backends.Result{}, fmt.Errorf("gcp: task %s: backing off after a rejection: %w: %w", t.ID, backends.ErrNotStarted, ctx.Err())
		case <-b.done:
			timer.Stop()
			return backends.Result{}, fmt.Errorf("gcp: task %s: backend closed while backing off: %w", t.ID, last)
		}
	}
}

// backoff returns the wait before try attempt+1 (backends.Backoff).
func (b *Backend) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return backends.Backoff{Base: b.cfg.RetryBase, Max: b.cfg.RetryMax}.Wait(attempt, retryAfter)
}

// pick chooses the endpoint with the fewest invocations in flight.
func (b *Backend) pick() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.inflight)
	best := b.next % n
	for i := range n {
		j := (b.next + i) % n
		if b.inflight[j] < b.inflight[best] {
			best = j
		}
	}
	b.next = best + 1
	b.inflight[best]++
	return best
}

func (b *Backend) release(i int) {
	b.mu.Lock()
	b.inflight[i]--
	b.mu.Unlock()
}

// once sends one request. retryAfter >= 0 with an error means the platform
// rejected the request before running it and it may be retried (after at
// least retryAfter); retryAfter < 0 means the error (or nil) is final.
func (b *Backend) once(ctx context.Context, t backends.Task) (res backends.Result, retryAfter time.Duration, err error) {
	ep := b.pick()
	defer b.release(ep)
	url := b.cfg.Endpoints[ep]
	// The platform ends a request at the function's timeout (504); allow
	// a margin for cold start and transfer on top of it.
	rctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(t.Payload))
	if err != nil {
		return res, -1, fmt.Errorf("gcp: task %s: %w: %w", t.ID, backends.ErrNotStarted, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(headerTask, t.ID)
	backends.MarkReplayable(req.Header)
	if b.tokens != nil {
		tok, err := b.tokens.Token()
		if err != nil {
			return res, -1, fmt.Errorf("gcp: task %s: %w: getting an identity token for %s: %w (check Application Default Credentials, or gcp.credentials_file): %w",
				t.ID, ErrCredentials, url, err, backends.ErrNotStarted)
		}
		tok.SetAuthHeader(req)
	}
	sent := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return res, -1, fmt.Errorf("gcp: task %s: %w", t.ID, ctx.Err())
		case errors.Is(err, syscall.ECONNREFUSED) || isDialError(err):
			return res, -1, fmt.Errorf("gcp: task %s: cannot connect to %s (is the function deployed, or the stand-in running?): %w: %w", t.ID, url, backends.ErrNotStarted, err)
		case rctx.Err() != nil:
			return res, -1, &backends.FunctionError{Backend: "gcp", Type: "timeout", Message: fmt.Sprintf("no response from %s within the function timeout %s plus 30s", url, b.cfg.Timeout)}
		}
		return res, -1, fmt.Errorf("gcp: task %s: request to %s failed (the function may have run): %w", t.ID, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return res, -1, fmt.Errorf("gcp: task %s: reading the result from %s: %w", t.ID, url, err)
		}
		res.Payload = body
		res.Invocation = invocationFrom(resp.Header, sent, time.Now())
		return res, -1, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	retryAfter, err = b.classify(t, url, resp, body)
	return res, retryAfter, err
}

// classify maps a non-200 response to an error; see once for retryAfter.
func (b *Backend) classify(t backends.Task, url string, resp *http.Response, body []byte) (retryAfter time.Duration, err error) {
	msg := strings.TrimSpace(string(body))
	code := resp.StatusCode
	if typ := resp.Header.Get(headerErrorType); typ != "" {
		if resp.Header.Get(headerNotStarted) != "" {
			return -1, fmt.Errorf("gcp: task %s: the worker at %s refused it (%s): %s: %w", t.ID, url, typ, msg, backends.ErrNotStarted)
		}
		return -1, &backends.FunctionError{Backend: "gcp", Type: typ, Message: msg}
	}
	if resp.Header.Get(headerNotStarted) != "" {
		// A worker shutting down: another instance may take it.
		return retryAfterOf(resp.Header), fmt.Errorf("gcp: task %s: %s: HTTP %d: %s: %w", t.ID, url, code, msg, backends.ErrNotStarted)
	}
	lower := strings.ToLower(msg)
	switch {
	case code == http.StatusTooManyRequests,
		(code == http.StatusInternalServerError || code == http.StatusServiceUnavailable) &&
			(strings.Contains(lower, "no available instance") || strings.Contains(lower, "rejected") ||
				strings.Contains(lower, "rate exceeded") || strings.Contains(lower, "scaling up")):
		// Rejected by the front end before an instance took the request.
		return retryAfterOf(resp.Header), fmt.Errorf("gcp: task %s: %s rejected the invocation (HTTP %d: %s): %w", t.ID, url, code, msg, backends.ErrNotStarted)
	case strings.Contains(lower, "memory limit"):
		return -1, &backends.FunctionError{Backend: "gcp", Type: "oom", Message: fmt.Sprintf("%s (raise gcp.memory_mib, now %d, and deploy again)", msg, b.cfg.MemoryMiB)}
	case code == http.StatusGatewayTimeout:
		return -1, &backends.FunctionError{Backend: "gcp", Type: "timeout", Message: fmt.Sprintf("the function ran past its timeout of %s (raise gcp.timeout and deploy again): %s", b.cfg.Timeout, msg)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return -1, fmt.Errorf("gcp: task %s: %s refused the call (HTTP %d): %w: grant the caller roles/run.invoker on the function, or check gcp.auth and the credentials: %w",
			t.ID, url, code, ErrCredentials, backends.ErrNotStarted)
	case code == http.StatusNotFound:
		return -1, fmt.Errorf("gcp: task %s: no function at %s (HTTP 404; deploy it with `gale deploy --backend gcp`, or fix gcp.url / project / region / function): %w", t.ID, url, backends.ErrNotStarted)
	case resp.Header.Get("X-Google-Status") == "crash" || resp.Header.Get("X-Google-Status") == "error":
		// The Functions Framework's own panic recovery.
		return -1, &backends.FunctionError{Backend: "gcp", Type: "panic", Message: msg}
	}
	return -1, fmt.Errorf("gcp: task %s: %s answered HTTP %d (the function may have run): %s", t.ID, url, code, msg)
}

// retryAfterOf returns the Retry-After delay in seconds, or 0.
func retryAfterOf(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// invocationFrom reads the worker's X-Gale-* headers.
func invocationFrom(h http.Header, sent, returned time.Time) backends.Invocation {
	inv := backends.Invocation{Sent: sent, Returned: returned, Instance: h.Get(headerInstance), Cold: h.Get(headerCold) == "true"}
	inv.Start, _ = time.Parse(time.RFC3339Nano, h.Get(headerStart))
	inv.End, _ = time.Parse(time.RFC3339Nano, h.Get(headerEnd))
	return inv
}

// isDialError reports whether err happened while connecting, so the
// request was never sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ThrottledRetries implements backends.Throttler.
func (b *Backend) ThrottledRetries() int64 { return b.Stats().Throttled }

var _ backends.Throttler = (*Backend)(nil)
