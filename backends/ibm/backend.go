package ibm

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends"
)

// Sentinel errors. Each is wrapped with the action and the fix.
var (
	// ErrCredentials means OpenWhisk rejected the API key (401) or it may
	// not use the namespace or action (403). It wraps ErrNotStarted.
	ErrCredentials = fmt.Errorf("ibm: OpenWhisk rejected the credentials: %w", backends.ErrNotStarted)
	// ErrNotDeployed means the action does not exist (404). It wraps
	// ErrNotStarted.
	ErrNotDeployed = fmt.Errorf("ibm: action not deployed: %w", backends.ErrNotStarted)
	// ErrThrottled means OpenWhisk kept answering 429 (too many requests
	// per minute or in flight) after every retry. It wraps ErrNotStarted.
	ErrThrottled = fmt.Errorf("ibm: throttled by OpenWhisk: %w", backends.ErrNotStarted)
	// ErrPayloadTooLarge means the parameters exceed the platform's limit
	// (413). It wraps ErrNotStarted.
	ErrPayloadTooLarge = fmt.Errorf("ibm: task payload too large for OpenWhisk: %w", backends.ErrNotStarted)
)

// activationHeader carries the activation id of a blocking invocation's
// response (OpenWhisk's respondWithActivationIdHeader).
const activationHeader = "X-Openwhisk-Activation-Id"

// maxThrottleBackoff caps the wait between throttled activations.
const maxThrottleBackoff = 10 * time.Second

// Backend invokes an OpenWhisk action (IBM Cloud Functions or any other
// OpenWhisk deployment) through the platform's REST API. It is safe for
// concurrent use.
type Backend struct {
	cfg     Config
	client  *http.Client
	base    *url.URL
	user    string
	key     string
	invoke  string // the action's invoke URL, without query
	actName string // namespace/action, for messages

	throttled atomic.Int64 // 429 answers seen

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // Invoke, Start and Wait calls in flight
	stop   chan struct{}  // closed by Close
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Describer = (*Backend)(nil)
)

// New returns a Backend for cfg. It validates cfg and sends no request:
// a missing action or bad credentials show on the first Invoke.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base, _ := apiBase(cfg.APIHost)
	user, key, _ := strings.Cut(cfg.Auth, ":")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(cfg.Concurrency, 2)
	tr.MaxIdleConns = max(cfg.Concurrency, 100)
	if cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	b := &Backend{
		cfg:     cfg,
		client:  &http.Client{Transport: tr},
		base:    base,
		user:    user,
		key:     key,
		actName: cfg.Namespace + "/" + cfg.Action,
		stop:    make(chan struct{}),
	}
	b.invoke = b.url("namespaces", cfg.Namespace, "actions") + "/" + escapeAction(cfg.Action)
	return b, nil
}

// url joins path segments (escaped) to the API's /api/v1.
func (b *Backend) url(segs ...string) string {
	var sb strings.Builder
	sb.WriteString(b.base.String())
	sb.WriteString("/api/v1")
	for _, s := range segs {
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(s))
	}
	return sb.String()
}

func escapeAction(a string) string {
	parts := strings.Split(a, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// Traits describes the platform as configured: the thesis's Table 3.1 and
// IBM's public limits and prices.
func (b *Backend) Traits() backends.Traits { return TraitsFor(b.cfg) }

// TraitsFor returns the traits of an action configured by cfg, without
// building a backend.
func TraitsFor(cfg Config) backends.Traits {
	cfg = cfg.withDefaults()
	return backends.Traits{
		Name:             "ibm",
		MaxConcurrency:   cfg.Concurrency,
		MemoryMiB:        cfg.MemoryMiB,
		VCPUs:            vcpus(cfg.MemoryMiB),
		MaxPayloadBytes:  MaxPayloadBytes,
		Timeout:          cfg.Timeout,
		PricePerGBSecond: PricePerGBSecond,
		PricePerRequest:  PricePerRequest,
	}
}

// vcpus is the CPU share guaranteed at memory MiB on a full Invoker VM:
// proportional to memory, 2 GiB ≈ 1 CPU (thesis, Table 3.1). A container
// alone on its VM may use up to 4.
func vcpus(memMiB int) float64 { return float64(memMiB) / 2048 }

// Throttled returns how many 429 answers this backend has received
// (each one retried or, after the last retry, failed with ErrThrottled).
func (b *Backend) Throttled() int64 { return b.throttled.Load() }

// enter registers a call in flight, or fails after Close.
func (b *Backend) enter() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return backends.ErrClosed
	}
	b.wg.Add(1)
	return nil
}

// Close stops polling and retry waits of calls in flight (they return an
// error saying the backend closed; their tasks may still run), waits for
// them and releases idle connections. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.client.CloseIdleConnections()
	return nil
}

// Invoke runs t on the action and waits for its result: one blocking
// invocation (Config.Blocking), or a non-blocking one followed by polling
// its activation record. When a blocking invocation outlasts OpenWhisk's
// blocking wait, the 202 answer's activation is polled until it ends, for
// at most the action's timeout plus a minute.
func (b *Backend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	if err := b.enter(); err != nil {
		return backends.Result{}, err
	}
	defer b.wg.Done()
	sent := time.Now()
	res, id, err := b.post(ctx, t, b.cfg.Blocking)
	if err != nil || id == "" {
		res.Invocation.Sent, res.Invocation.Returned = sent, time.Now()
		return res, err
	}
	res, err = b.wait(ctx, t.ID, id)
	res.Invocation.Sent, res.Invocation.Returned = sent, time.Now()
	return res, err
}

// Start invokes t without blocking and returns its activation id, for
// Wait: the optional asynchronous capability. A returned error wraps
// ErrNotStarted when the activation certainly was not created.
func (b *Backend) Start(ctx context.Context, t backends.Task) (activationID string, err error) {
	if err := b.enter(); err != nil {
		return "", err
	}
	defer b.wg.Done()
	_, id, err := b.post(ctx, t, false)
	return id, err
}

// Wait polls the activation until it ends and returns its result the way
// Invoke does (Sent and Returned are the span of the polling).
func (b *Backend) Wait(ctx context.Context, activationID string) (backends.Result, error) {
	if err := b.enter(); err != nil {
		return backends.Result{}, err
	}
	defer b.wg.Done()
	sent := time.Now()
	res, err := b.wait(ctx, activationID, activationID)
	res.Invocation.Sent, res.Invocation.Returned = sent, time.Now()
	return res, err
}

// post sends the invocation, retrying 429s. It returns a result when the
// response carried one, else the activation id to poll.
func (b *Backend) post(ctx context.Context, t backends.Task, blocking bool) (backends.Result, string, error) {
	params, err := encodeParams(t.ID, t.Payload)
	if err != nil {
		return backends.Result{}, "", fmt.Errorf("ibm: task %s: encoding parameters: %w", t.ID, err)
	}
	if len(params) > MaxPayloadBytes {
		return backends.Result{}, "", fmt.Errorf("%w: task %s: %d bytes of parameters exceed OpenWhisk's %d (pass large task inputs through object storage, never inline)", ErrPayloadTooLarge, t.ID, len(params), MaxPayloadBytes)
	}
	q := "?blocking=false"
	if blocking {
		q = "?blocking=true&result=true"
	}
	backoff := backends.Backoff{Base: b.cfg.ThrottleBackoff, Max: maxThrottleBackoff}
	for attempt := 0; ; attempt++ {
		status, hdr, body, err := b.do(ctx, http.MethodPost, b.invoke+q, params)
		if err != nil {
			return backends.Result{}, "", b.netError(ctx, t.ID, err)
		}
		switch status {
		case http.StatusOK:
			res, err := b.result(t.ID, hdr.Get(activationHeader), body)
			return res, "", err
		case http.StatusAccepted:
			var a struct {
				ActivationID string `json:"activationId"`
			}
			if err := json.Unmarshal(body, &a); err != nil || a.ActivationID == "" {
				return backends.Result{}, "", fmt.Errorf("ibm: task %s: %s answered 202 without an activation id: %s", t.ID, b.actName, snippet(body))
			}
			return backends.Result{}, a.ActivationID, nil
		case http.StatusBadGateway:
			// The activation ran and failed: an application error or
			// an action developer error, with the result as body.
			return backends.Result{}, "", b.failure(t.ID, hdr.Get(activationHeader), body)
		case http.StatusTooManyRequests:
			b.throttled.Add(1)
			if b.cfg.MaxThrottleRetries < 0 || attempt >= b.cfg.MaxThrottleRetries {
				return backends.Result{}, "", fmt.Errorf("%w: task %s on %s after %d retries: %s (lower --workers or ibm.concurrency, or ask IBM to raise the namespace's limits of %d concurrent activations and 5000 per minute)",
					ErrThrottled, t.ID, b.actName, attempt, apiError(body), MaxNamespaceConcurrency)
			}
			var retryAfter time.Duration
			if s, err := strconv.Atoi(hdr.Get("Retry-After")); err == nil && s > 0 {
				retryAfter = time.Duration(s) * time.Second
			}
			if err := b.sleep(ctx, backoff.Wait(attempt+1, retryAfter)); err != nil {
				return backends.Result{}, "", fmt.Errorf("ibm: task %s: throttled, then %w: %w", t.ID, err, backends.ErrNotStarted)
			}
		default:
			return backends.Result{}, "", b.statusError(t.ID, status, body)
		}
	}
}

// statusError maps the API's refusals.
func (b *Backend) statusError(task string, status int, body []byte) error {
	msg := apiError(body)
	switch status {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: task %s: %s (set ibm.auth to the namespace's API key user:key, from ~/.wskprops or `ibmcloud fn property get --auth`)", ErrCredentials, task, msg)
	case http.StatusForbidden:
		return fmt.Errorf("%w: task %s: %s (the API key may not use namespace %q: check ibm.namespace, or use \"_\" for the key's own)", ErrCredentials, task, msg, b.cfg.Namespace)
	case http.StatusNotFound:
		return fmt.Errorf("%w: task %s: action %s does not exist at %s (run `gale deploy --backend ibm`, or fix ibm.namespace and ibm.action): %s", ErrNotDeployed, task, b.actName, b.base, msg)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: task %s: %s (pass large task inputs through object storage, never inline)", ErrPayloadTooLarge, task, msg)
	case http.StatusServiceUnavailable:
		// The load balancer refused the activation before scheduling it.
		return fmt.Errorf("ibm: task %s: OpenWhisk is unavailable (%d): %s: %w", task, status, msg, backends.ErrNotStarted)
	}
	// 500 is a "whisk internal error": the activation may have started.
	return fmt.Errorf("ibm: task %s: OpenWhisk answered %d: %s", task, status, msg)
}

// apiError extracts the "error" of an OpenWhisk error response.
func apiError(body []byte) string {
	var e struct {
		Error any    `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		s, ok := e.Error.(string)
		if !ok {
			bs, _ := json.Marshal(e.Error)
			s = string(bs)
		}
		if e.Code != "" {
			s += " (code " + e.Code + ")"
		}
		return s
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "no details"
	}
	return snippet(body)
}

// result decodes a successful activation's result.
func (b *Backend) result(task, activationID string, body []byte) (backends.Result, error) {
	env, err := decodeResult(body)
	if err != nil {
		return backends.Result{}, fmt.Errorf("ibm: task %s: activation %s of %s: %w", task, activationID, b.actName, err)
	}
	return backends.Result{Payload: env.payload(), Invocation: backends.Invocation{
		Start: env.Start, End: env.End, Instance: env.Instance, Cold: env.Cold,
	}}, nil
}

// failure maps a failed activation's result, {"error": ...}: Gale's own
// error object from the worker, or OpenWhisk's message when the platform
// ended the action (time limit, memory, a crash, a bad response).
func (b *Backend) failure(task, activationID string, body []byte) error {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
		return &backends.FunctionError{Backend: "ibm", Type: "error", Message: fmt.Sprintf("task %s: activation %s of %s failed: %s", task, activationID, b.actName, snippet(body))}
	}
	var env resultEnvelope
	if json.Unmarshal(eb.Error, &env) == nil && env.Type != "" {
		fe := &backends.FunctionError{Backend: "ibm", Type: env.Type, Message: env.Message}
		if env.NotStarted {
			return fmt.Errorf("ibm: task %s: %w: %w", task, fe, backends.ErrNotStarted)
		}
		return fe
	}
	var msg string
	if json.Unmarshal(eb.Error, &msg) != nil {
		msg = string(eb.Error)
	}
	typ := "error"
	switch {
	case strings.Contains(msg, "exceeded its time limits"):
		typ = "timeout"
		msg += " (raise ibm.timeout and redeploy, or use more, smaller tasks)"
	case strings.Contains(msg, "exhausted its memory"):
		typ = "oom"
		msg += " (raise ibm.memory_mib and redeploy, or use smaller tasks)"
	case strings.Contains(msg, "exited unexpectedly"), strings.Contains(msg, "did not produce a valid"):
		typ = "crash"
	case strings.Contains(msg, "failed during initialization"), strings.Contains(msg, "did not initialize"):
		typ = "init"
		msg += " (is the action a Gale worker deployed by gale deploy --backend ibm?)"
	}
	return &backends.FunctionError{Backend: "ibm", Type: typ, Message: fmt.Sprintf("activation %s of %s: %s", activationID, b.actName, msg)}
}

// activationRecord is the part of GET /activations/{id} Gale reads.
type activationRecord struct {
	ActivationID string `json:"activationId"`
	Response     struct {
		Status  string          `json:"status"`
		Success bool            `json:"success"`
		Result  json.RawMessage `json:"result"`
	} `json:"response"`
}

// wait polls GET /namespaces/{ns}/activations/{id}: 404 until the
// activation's record is stored, then the record.
func (b *Backend) wait(ctx context.Context, task, id string) (backends.Result, error) {
	limit := b.cfg.Timeout + time.Minute
	deadline := time.Now().Add(limit)
	u := b.url("namespaces", b.cfg.Namespace, "activations", id)
	interval := b.cfg.PollInterval
	for {
		status, _, body, err := b.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return backends.Result{}, fmt.Errorf("ibm: task %s: polling activation %s: %w", task, id, b.netError(ctx, task, err))
		}
		switch status {
		case http.StatusOK:
			var rec activationRecord
			if err := json.Unmarshal(body, &rec); err != nil {
				return backends.Result{}, fmt.Errorf("ibm: task %s: activation %s: unreadable record: %s", task, id, snippet(body))
			}
			if rec.Response.Success {
				return b.result(task, id, rec.Response.Result)
			}
			if rec.Response.Status == "whisk internal error" {
				return backends.Result{}, fmt.Errorf("ibm: task %s: activation %s of %s: OpenWhisk internal error: %s", task, id, b.actName, snippet(rec.Response.Result))
			}
			return backends.Result{}, b.failure(task, id, rec.Response.Result)
		case http.StatusNotFound:
			// Not finished yet.
		case http.StatusTooManyRequests:
			b.throttled.Add(1)
		default:
			// The activation may be running: any refusal here is not
			// ErrNotStarted.
			return backends.Result{}, fmt.Errorf("ibm: task %s: polling activation %s of %s (it may still run): OpenWhisk answered %d: %s", task, id, b.actName, status, apiError(body))
		}
		if time.Now().After(deadline) {
			return backends.Result{}, fmt.Errorf("ibm: task %s: activation %s of %s did not finish within %v (the action's timeout plus a minute); it may still run", task, id, b.actName, limit)
		}
		if err := b.sleep(ctx, interval); err != nil {
			return backends.Result{}, fmt.Errorf("ibm: task %s: waiting for activation %s (it may still run): %w", task, id, err)
		}
		interval = min(interval*2, time.Second)
	}
}

// do sends one authenticated request and reads the whole response.
func (b *Backend) do(ctx context.Context, method, u string, body []byte) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.SetBasicAuth(b.user, b.key)
	req.Header.Set("Accept", "application/json")
	// Invocations run tasks (which may run twice) and the rest are reads.
	backends.MarkReplayable(req.Header)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// netError classifies a transport failure: a refused connection or a
// failed name lookup certainly started nothing.
func (b *Backend) netError(ctx context.Context, task string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("ibm: task %s on %s: %w", task, b.actName, ctx.Err())
	}
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial") {
		return fmt.Errorf("ibm: task %s: cannot reach OpenWhisk at %s (check ibm.api_host and the network): %w: %w", task, b.base, err, backends.ErrNotStarted)
	}
	return fmt.Errorf("ibm: task %s on %s (it may have run): %w", task, b.actName, err)
}

// sleep waits d, or until ctx is done or the backend closes.
func (b *Backend) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errors.New("ibm: backend closed")
	}
}

// ThrottledRetries implements backends.Throttler.
func (b *Backend) ThrottledRetries() int64 { return b.Throttled() }

var _ backends.Throttler = (*Backend)(nil)
