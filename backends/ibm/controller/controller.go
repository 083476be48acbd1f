package controller

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends/ibm"
)

// Config configures a Controller.
type Config struct {
	// Namespace is the namespace of the credentials; "_" in a URL means
	// it. Default "guest".
	Namespace string
	// Auth is the accepted API key, "user:key". Required.
	Auth string
	// Command and Args start a container of an action whose code does not
	// carry its own executable: a Gale binary and the arguments that reach
	// its worker entry (e.g. the gale command and "worker"). Required.
	Command string
	Args    []string
	// Env is added to each container's environment (after the
	// controller's own, before the action interface's variables).
	Env []string
	// Actions names the actions that exist from the start, running
	// Command; others must be created with PUT.
	Actions []string
	// MaxContainers is the most containers per action. Default 4.
	MaxContainers int
	// ConcurrentLimit is the most activations in flight (running or
	// queued) in the namespace; more get HTTP 429. 0 means no limit.
	ConcurrentLimit int
	// BlockingWait is how long a blocking invocation waits before it
	// answers 202 with the activation id. Default 60 s, as OpenWhisk.
	BlockingWait time.Duration
	// Timeout is an action's time limit unless it sets its own. Default
	// 60 s.
	Timeout time.Duration
	// StartTimeout bounds a container's start until it accepts
	// connections. Default 15 s.
	StartTimeout time.Duration
	// Output receives container output that belongs to no activation.
	// Default io.Discard.
	Output io.Writer
}

// DefaultConfig returns the defaults; Auth and Command stay empty.
func DefaultConfig() Config {
	return Config{Namespace: "guest", MaxContainers: 4, BlockingWait: 60 * time.Second, Timeout: 60 * time.Second, StartTimeout: 15 * time.Second}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if u, k, ok := strings.Cut(c.Auth, ":"); !ok || u == "" || k == "" {
		errs = append(errs, errors.New("controller: Config.Auth must be user:key"))
	}
	if c.Command == "" {
		errs = append(errs, errors.New("controller: Config.Command (the worker binary) is required"))
	}
	if c.MaxContainers < 0 || c.ConcurrentLimit < 0 || c.BlockingWait < 0 || c.Timeout < 0 || c.StartTimeout < 0 {
		errs = append(errs, errors.New("controller: limits and durations must not be negative"))
	}
	return errors.Join(errs...)
}

// Controller is the loopback OpenWhisk controller.
type Controller struct {
	cfg  Config
	ctx  context.Context // ends every activation and container
	stop context.CancelFunc
	wg   sync.WaitGroup // activations and container goroutines
	dir  string         // extracted action executables

	mu          sync.Mutex
	url         string
	actions     map[string]*action
	activations map[string]*record // ended activations
	inflight    int
	closed      bool
	srvs        []*http.Server
}

// action is one deployed action and its container pool.
type action struct {
	name    string
	doc     json.RawMessage // the stored action, as PUT (or built in)
	command string
	timeout time.Duration
	free    chan *container // idle warm containers
	slots   chan struct{}   // one token per live container
}

// record is an activation record, as GET /activations/{id} returns it.
type record struct {
	Namespace    string        `json:"namespace"`
	Name         string        `json:"name"`
	ActivationID string        `json:"activationId"`
	Start        int64         `json:"start"`
	End          int64         `json:"end"`
	Duration     int64         `json:"duration"`
	Response     recordResp    `json:"response"`
	Logs         []string      `json:"logs"`
	Annotations  []keyValue    `json:"annotations"`
	done         chan struct{} // closed when the record is complete
}

type recordResp struct {
	Status     string          `json:"status"`
	StatusCode int             `json:"statusCode"`
	Success    bool            `json:"success"`
	Result     json.RawMessage `json:"result"`
}

type keyValue struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Activation statuses, as OpenWhisk records them.
const (
	statusSuccess  = "success"
	statusAppError = "application error"
	statusDevError = "action developer error"
	statusInternal = "whisk internal error"
)

// New returns a controller for cfg; it starts nothing.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := DefaultConfig()
	if cfg.Namespace == "" {
		cfg.Namespace = d.Namespace
	}
	if cfg.MaxContainers == 0 {
		cfg.MaxContainers = d.MaxContainers
	}
	if cfg.BlockingWait == 0 {
		cfg.BlockingWait = d.BlockingWait
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = d.StartTimeout
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	dir, err := os.MkdirTemp("", "gale-ow-controller-")
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Controller{cfg: cfg, ctx: ctx, stop: stop, dir: dir, actions: map[string]*action{}, activations: map[string]*record{}}
	for _, name := range cfg.Actions {
		doc, _ := json.Marshal(map[string]any{"namespace": cfg.Namespace, "name": name, "exec": map[string]any{"kind": "blackbox"}})
		c.actions[name] = c.newAction(name, doc, cfg.Command, cfg.Timeout)
	}
	return c, nil
}

func (c *Controller) newAction(name string, doc []byte, command string, timeout time.Duration) *action {
	return &action{name: name, doc: doc, command: command, timeout: timeout,
		free: make(chan *container, c.cfg.MaxContainers), slots: make(chan struct{}, c.cfg.MaxContainers)}
}

// Serve answers the REST API on ln until ctx is done or Close is called.
// It closes ln.
func (c *Controller) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(c.serveHTTP), ReadHeaderTimeout: 30 * time.Second}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ln.Close()
		return errors.New("controller: closed")
	}
	c.url = "http://" + ln.Addr().String()
	c.srvs = append(c.srvs, srv)
	c.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		srv.Close()
		<-errc
		return ctx.Err()
	}
}

// Close stops the API, ends every activation, kills every container and
// waits for them. It is idempotent.
func (c *Controller) Close() error {
	c.mu.Lock()
	srvs := c.srvs
	c.srvs = nil
	c.closed = true
	c.mu.Unlock()
	for _, s := range srvs {
		s.Close()
	}
	c.stop()
	c.wg.Wait()
	return os.RemoveAll(c.dir)
}

// InFlight returns how many activations are running or queued.
func (c *Controller) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight
}

// reply writes a JSON response.
func reply(w http.ResponseWriter, status int, v any) {
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// apiError answers OpenWhisk's error shape.
func apiError(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg, "code": newID()[:16]})
}

func (c *Controller) serveHTTP(w http.ResponseWriter, r *http.Request) {
	user, key, ok := r.BasicAuth()
	if !ok {
		apiError(w, http.StatusUnauthorized, "The resource requires authentication, which was not supplied with the request")
		return
	}
	if subtle.ConstantTimeCompare([]byte(user+":"+key), []byte(c.cfg.Auth)) != 1 {
		apiError(w, http.StatusUnauthorized, "The supplied authentication is invalid")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v1/namespaces/")
	if !ok {
		apiError(w, http.StatusNotFound, "The requested resource does not exist.")
		return
	}
	parts := strings.SplitN(rest, "/", 3)
	for i, p := range parts {
		parts[i], _ = url.PathUnescape(p)
	}
	if len(parts) < 3 || parts[2] == "" {
		apiError(w, http.StatusNotFound, "The requested resource does not exist.")
		return
	}
	ns, coll, name := parts[0], parts[1], parts[2]
	if ns != "_" && ns != c.cfg.Namespace {
		apiError(w, http.StatusForbidden, fmt.Sprintf("The supplied authentication is not authorized to access '%s'.", ns))
		return
	}
	switch {
	case coll == "actions" && r.Method == http.MethodPost:
		c.invoke(w, r, name)
	case coll == "actions" && r.Method == http.MethodPut:
		c.put(w, r, name)
	case coll == "actions" && r.Method == http.MethodGet:
		c.mu.Lock()
		a := c.actions[name]
		c.mu.Unlock()
		if a == nil {
			apiError(w, http.StatusNotFound, "The requested resource does not exist.")
			return
		}
		reply(w, http.StatusOK, []byte(a.doc))
	case coll == "activations" && r.Method == http.MethodGet:
		c.mu.Lock()
		rec := c.activations[name]
		c.mu.Unlock()
		if rec == nil {
			apiError(w, http.StatusNotFound, "The requested resource does not exist.")
			return
		}
		reply(w, http.StatusOK, rec)
	default:
		apiError(w, http.StatusMethodNotAllowed, "HTTP method not allowed, supported methods: GET, PUT, POST, DELETE.")
	}
}

// put creates or updates an action, as gale deploy does.
func (c *Controller) put(w http.ResponseWriter, r *http.Request, name string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Failed extracting request body.")
		return
	}
	var doc struct {
		Exec struct {
			Kind   string `json:"kind"`
			Code   string `json:"code"`
			Binary bool   `json:"binary"`
			Image  string `json:"image"`
		} `json:"exec"`
		Limits struct {
			Timeout int64 `json:"timeout"`
			Memory  int   `json:"memory"`
		} `json:"limits"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Exec.Kind == "" {
		apiError(w, http.StatusBadRequest, "The request content was malformed: an action needs exec.kind.")
		return
	}
	if doc.Limits.Memory != 0 && (doc.Limits.Memory < ibm.MinMemoryMiB || doc.Limits.Memory > ibm.MaxMemoryMiB) {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("memory %d MB below allowed threshold of %d MB or above %d MB.", doc.Limits.Memory, ibm.MinMemoryMiB, ibm.MaxMemoryMiB))
		return
	}
	if doc.Limits.Timeout < 0 || time.Duration(doc.Limits.Timeout)*time.Millisecond > ibm.MaxTimeout {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("Timeout must be number of milliseconds up to %d.", ibm.MaxTimeout.Milliseconds()))
		return
	}
	command := c.cfg.Command
	if doc.Exec.Binary && doc.Exec.Code != "" {
		command, err = c.extractExec(name, doc.Exec.Code)
		if err != nil {
			apiError(w, http.StatusBadRequest, "The action code is not a zip with an executable exec: "+err.Error())
			return
		}
	}
	timeout := c.cfg.Timeout
	if doc.Limits.Timeout > 0 {
		timeout = time.Duration(doc.Limits.Timeout) * time.Millisecond
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.actions[name]; old != nil && r.URL.Query().Get("overwrite") != "true" {
		apiError(w, http.StatusConflict, "resource already exists")
		return
	}
	// An updated action gets new containers; the old pool drains as its
	// activations end.
	c.actions[name] = c.newAction(name, body, command, timeout)
	reply(w, http.StatusOK, body)
}

// extractExec unpacks the executable `exec` of a base64 zip.
func (c *Controller) extractExec(name, code string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(code)
	if err != nil {
		return "", err
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	f, err := zr.Open("exec")
	if err != nil {
		return "", err
	}
	defer f.Close()
	path := filepath.Join(c.dir, strings.ReplaceAll(name, "/", "_")+"-"+newID()[:8])
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return "", err
	}
	return path, out.Close()
}

// invoke starts an activation and answers as OpenWhisk does.
func (c *Controller) invoke(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	blocking, result := q.Get("blocking") == "true", q.Get("result") == "true"
	params, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Failed extracting request body.")
		return
	}
	if len(bytes.TrimSpace(params)) == 0 {
		params = []byte("{}")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(params, &obj) != nil {
		apiError(w, http.StatusBadRequest, "The request content was malformed: parameters must be a JSON object.")
		return
	}
	c.mu.Lock()
	a := c.actions[name]
	if a == nil {
		c.mu.Unlock()
		apiError(w, http.StatusNotFound, "The requested resource does not exist.")
		return
	}
	if c.cfg.ConcurrentLimit > 0 && c.inflight >= c.cfg.ConcurrentLimit {
		n := c.inflight
		c.mu.Unlock()
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf("Too many concurrent requests in flight (count: %d, allowed: %d).", n, c.cfg.ConcurrentLimit))
		return
	}
	if c.closed {
		c.mu.Unlock()
		apiError(w, http.StatusServiceUnavailable, "System is overloaded, try again later.")
		return
	}
	c.inflight++
	c.wg.Add(1)
	c.mu.Unlock()

	rec := &record{Namespace: c.cfg.Namespace, Name: name, ActivationID: newID(), Start: time.Now().UnixMilli(), done: make(chan struct{}),
		Annotations: []keyValue{{"path", c.cfg.Namespace + "/" + name}, {"limits", map[string]any{"timeout": a.timeout.Milliseconds()}}}}
	go func() {
		defer c.wg.Done()
		c.activate(a, rec, obj)
		c.mu.Lock()
		c.inflight--
		c.activations[rec.ActivationID] = rec
		c.mu.Unlock()
		close(rec.done)
	}()

	w.Header().Set(http.CanonicalHeaderKey("x-openwhisk-activation-id"), rec.ActivationID)
	accepted := map[string]string{"activationId": rec.ActivationID}
	if !blocking {
		reply(w, http.StatusAccepted, accepted)
		return
	}
	t := time.NewTimer(c.cfg.BlockingWait)
	defer t.Stop()
	select {
	case <-rec.done:
	case <-t.C:
		reply(w, http.StatusAccepted, accepted)
		return
	case <-r.Context().Done():
		return
	}
	var body any = rec
	if result {
		body = []byte(rec.Response.Result)
	}
	switch rec.Response.Status {
	case statusSuccess:
		reply(w, http.StatusOK, body)
	case statusAppError, statusDevError:
		reply(w, http.StatusBadGateway, body)
	default:
		reply(w, http.StatusInternalServerError, body)
	}
}

// activate runs one activation on a container of a and fills rec.
func (c *Controller) activate(a *action, rec *record, params map[string]json.RawMessage) {
	finish := func(status string, result any) {
		b, ok := result.([]byte)
		if !ok {
			b, _ = json.Marshal(result)
		}
		codes := map[string]int{statusSuccess: 0, statusAppError: 1, statusDevError: 2, statusInternal: 3}
		rec.Response = recordResp{Status: status, StatusCode: codes[status], Success: status == statusSuccess, Result: b}
		rec.End = time.Now().UnixMilli()
		rec.Duration = rec.End - rec.Start
		if rec.Logs == nil {
			rec.Logs = []string{}
		}
	}
	errResult := func(msg string) map[string]string { return map[string]string{"error": msg} }

	ct, cold, err := c.acquire(a)
	if err != nil {
		finish(statusInternal, errResult("Failed to provision resources to run the action."))
		return
	}
	waitMs := time.Now().UnixMilli() - rec.Start
	rec.Annotations = append(rec.Annotations, keyValue{"waitTime", waitMs})
	if cold {
		t0 := time.Now()
		status, body, err := ct.post("/init", map[string]any{"value": map[string]any{"name": a.name, "main": "main", "code": "", "binary": false}}, a.timeout)
		rec.Annotations = append(rec.Annotations, keyValue{"initTime", time.Since(t0).Milliseconds()})
		if err != nil || status != http.StatusOK {
			msg := "The action did not initialize and exited unexpectedly."
			if err == nil {
				msg = "The action failed during initialization: " + string(body)
			}
			rec.Logs = ct.takeLogs(time.Second)
			c.discard(a, ct)
			finish(statusDevError, errResult(msg))
			return
		}
	}
	value, _ := json.Marshal(params)
	deadline := time.Now().Add(a.timeout)
	status, body, err := ct.post("/run", map[string]any{
		"value":         json.RawMessage(value),
		"namespace":     c.cfg.Namespace,
		"action_name":   "/" + c.cfg.Namespace + "/" + a.name,
		"activation_id": rec.ActivationID,
		"deadline":      strconv.FormatInt(deadline.UnixMilli(), 10),
		"api_key":       c.cfg.Auth,
	}, a.timeout)
	if err != nil {
		rec.Logs = ct.takeLogs(time.Second)
		c.discard(a, ct)
		if errors.Is(err, context.DeadlineExceeded) {
			finish(statusDevError, errResult(fmt.Sprintf("The action exceeded its time limits of %d milliseconds.", a.timeout.Milliseconds())))
			return
		}
		finish(statusDevError, errResult("The action did not produce a valid response and exited unexpectedly."))
		return
	}
	// The container wrote its sentinels after answering; wait for them.
	rec.Logs = ct.takeLogs(5 * time.Second)
	c.release(a, ct)
	var obj map[string]json.RawMessage
	isObj := json.Unmarshal(body, &obj) == nil
	switch {
	case status == http.StatusOK && isObj:
		finish(statusSuccess, body)
	case status != http.StatusOK && isObj && obj["error"] != nil:
		finish(statusAppError, map[string]json.RawMessage{"error": obj["error"]})
	default:
		finish(statusDevError, errResult("The action did not produce a valid JSON response: "+string(body)))
	}
}

// acquire returns an idle warm container of a, or starts one (cold), or
// waits for one to free up.
func (c *Controller) acquire(a *action) (*container, bool, error) {
	for {
		select {
		case ct := <-a.free:
			if ct.alive() {
				return ct, false, nil
			}
			c.discard(a, ct)
			continue
		default:
		}
		select {
		case ct := <-a.free:
			if ct.alive() {
				return ct, false, nil
			}
			c.discard(a, ct)
		case a.slots <- struct{}{}:
			ct, err := c.startContainer(a)
			if err != nil {
				<-a.slots
				return nil, false, err
			}
			return ct, true, nil
		case <-c.ctx.Done():
			return nil, false, c.ctx.Err()
		}
	}
}

func (c *Controller) release(a *action, ct *container) { a.free <- ct }

// discard destroys a container and frees its slot.
func (c *Controller) discard(a *action, ct *container) {
	ct.kill()
	<-a.slots
}

// newID returns 32 hex digits, the shape of OpenWhisk's activation ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
