// Package host is a local Azure Functions host for custom-handler apps:
// the stand-in Gale runs its Azure backend against where no Functions host
// can be installed. It follows the documented custom-handler contract:
//
//   - it reads the app directory as deployed: host.json (customHandler.
//     description's defaultExecutablePath, arguments with %VAR%
//     expansion and workingDirectory; enableForwardingHttpRequest;
//     extensions.http routePrefix, maxConcurrentRequests and
//     maxOutstandingRequests) and FUNCTION/function.json for each
//     function (its httpTrigger's authLevel and methods, its outputs);
//   - it starts the executable as Config.Instances worker processes
//     (instances), each with FUNCTIONS_CUSTOMHANDLER_PORT set to a port of
//     its own and WEBSITE_INSTANCE_ID to an instance id, and waits until
//     each answers an HTTP request on that port;
//   - it serves http://ADDR/ROUTEPREFIX/FUNCTION, checking function keys
//     (x-functions-key header or code query parameter) by authLevel:
//     401 without a valid key;
//   - it forwards each invocation to the least busy instance, as the
//     caller's HTTP request itself (forwarding, for functions with only an
//     HTTP trigger and an http output when host.json enables it) or as a
//     POST of {"Data": {"req": {...}}, "Metadata": {...}} to /FUNCTION,
//     whose {"Outputs", "Logs", "ReturnValue"} answer it turns back into
//     the HTTP response (the http output binding's statusCode, status,
//     body and headers, all four required);
//   - a handler's non-2xx answer in the payload mode, or a worker that
//     cannot be reached, fails the invocation with HTTP 500; an instance
//     whose process exits is restarted; requests beyond
//     maxOutstandingRequests per instance get 429; requests while no
//     instance is up get 503.
//
// What it does not reproduce: the Scale Controller (the instance count is
// fixed), other triggers and bindings, Application Insights, the
// functionTimeout, Easy Auth and the admin API.
//
// This package may import the standard library and backends/azure. A Host
// owns its HTTP server's goroutines and, per instance, a supervisor
// goroutine that starts, restarts and stops the worker process and one
// copying its output; Close stops and waits for all of them.
package host

import (
	"bufio"
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
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends/azure"
)

// Version is the host version the adapter reports to handlers.
const Version = "4.0.0-gale"

// Config configures a Host.
type Config struct {
	// Dir is the app directory: host.json, FUNCTION/function.json and the
	// executable, as azure.Package lays them out. Required.
	Dir string
	// Instances is how many worker processes (instances) serve the app.
	// Default 1.
	Instances int
	// FunctionKeys are the keys accepted for functions with authLevel
	// "function", by function name; HostKeys are accepted for every
	// function; MasterKey for every function, "admin" ones included.
	FunctionKeys map[string][]string
	HostKeys     []string
	MasterKey    string
	// Env holds app settings: KEY=VALUE entries added to the workers'
	// environment (on top of this process's) and used for %VAR%
	// expansion in host.json's arguments.
	Env []string
	// StartTimeout bounds how long an instance may take to answer on its
	// port. Default 60 s, the Functions host's limit.
	StartTimeout time.Duration
	// Output receives the workers' output, line by line, prefixed with
	// their instance id, and host messages. Default os.Stderr.
	Output io.Writer
	// LogInvocations also writes the Logs each invocation returns to
	// Output, as the Functions host writes them to its invocation log.
	LogInvocations bool
}

// app is the parsed app directory.
type app struct {
	host       azure.HostJSON
	forwarding bool
	prefix     string
	maxConc    int // per instance; 0 unbounded
	maxOut     int // per instance; 0 unbounded
	functions  map[string]*function
	exe        string
	args       []string
	workDir    string
}

type function struct {
	name      string
	trigger   azure.BindingJSON
	outputs   []azure.BindingJSON
	httpOnly  bool // one HTTP trigger and one http output: forwardable
	httpOut   string
	methods   []string // upper case; empty: any
	routePath string   // the path after the prefix
}

// Host is a running local Functions host.
type Host struct {
	cfg    Config
	app    *app
	url    string
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	insts  []*instance
	client *http.Client

	mu      sync.Mutex
	closeMu sync.Once
}

// instance is one worker process.
type instance struct {
	id       string
	port     atomic.Int64
	busy     atomic.Int64  // invocations in flight
	slots    chan struct{} // maxConcurrentRequests; nil: unbounded
	up       atomic.Bool
	recycle  chan struct{} // a failed invocation asks the supervisor to restart the worker
	ready    chan struct{} // closed when first up
	readyErr error
	once     sync.Once
}

// Start reads the app in cfg.Dir, starts its instances, waits until they
// answer and serves the app on addr (e.g. "127.0.0.1:0"). The host runs
// until Close.
func Start(ctx context.Context, cfg Config, addr string) (*Host, error) {
	if cfg.Dir == "" {
		return nil, errors.New("azure host: Config.Dir (the app directory) is required")
	}
	if cfg.Instances < 0 || cfg.StartTimeout < 0 {
		return nil, errors.New("azure host: Config.Instances and Config.StartTimeout must not be negative")
	}
	if cfg.Instances == 0 {
		cfg.Instances = 1
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	a, err := loadApp(cfg.Dir, cfg.Env)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("azure host: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &Host{cfg: cfg, app: a, url: "http://" + ln.Addr().String(), cancel: cancel,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}}
	var out sync.Mutex
	for i := range cfg.Instances {
		inst := &instance{id: fmt.Sprintf("%s-%d", randomID(), i), ready: make(chan struct{}), recycle: make(chan struct{}, 1)}
		if a.maxConc > 0 {
			inst.slots = make(chan struct{}, a.maxConc)
		}
		h.insts = append(h.insts, inst)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.supervise(rctx, inst, &out)
		}()
	}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.srv.Serve(ln)
	}()
	for _, inst := range h.insts {
		select {
		case <-inst.ready:
			if inst.readyErr != nil {
				h.Close()
				return nil, inst.readyErr
			}
		case <-ctx.Done():
			h.Close()
			return nil, ctx.Err()
		}
	}
	return h, nil
}

// URL returns the host's base URL, e.g. "http://127.0.0.1:7071".
func (h *Host) URL() string { return h.url }

// Close stops serving, stops the worker processes (SIGTERM, then SIGKILL
// after 5 s) and waits for every goroutine of the host. It is idempotent.
func (h *Host) Close() error {
	h.closeMu.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h.srv.Shutdown(sctx)
		cancel()
		h.srv.Close()
		h.cancel()
	})
	h.wg.Wait()
	h.client.CloseIdleConnections()
	return nil
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loadApp reads host.json and every FUNCTION/function.json under dir.
func loadApp(dir string, env []string) (*app, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("azure host: the app directory %s needs a host.json: %w", dir, err)
	}
	a := &app{functions: map[string]*function{}, prefix: "api"}
	if err := json.Unmarshal(raw, &a.host); err != nil {
		return nil, fmt.Errorf("azure host: %s: %w", filepath.Join(dir, "host.json"), err)
	}
	var errs []error
	if a.host.Version != "2.0" {
		errs = append(errs, fmt.Errorf(`host.json: version %q, want "2.0"`, a.host.Version))
	}
	ch := a.host.CustomHandler
	if ch == nil || ch.Description.DefaultExecutablePath == "" {
		errs = append(errs, errors.New("host.json: customHandler.description.defaultExecutablePath is required for a custom-handler app"))
	} else {
		a.forwarding = ch.EnableForwardingHTTPRequest || ch.EnableProxyingHTTPRequest
		a.workDir = dir
		if wd := ch.Description.WorkingDirectory; wd != "" {
			a.workDir = filepath.Join(dir, wd)
		}
		a.exe = ch.Description.DefaultExecutablePath
		if !filepath.IsAbs(a.exe) {
			if p := filepath.Join(dir, a.exe); fileExists(p) {
				a.exe = p
			} else if p, err := exec.LookPath(a.exe); err == nil {
				a.exe = p
			} else {
				errs = append(errs, fmt.Errorf("host.json: defaultExecutablePath %q is neither in the app directory nor on PATH", ch.Description.DefaultExecutablePath))
			}
		}
		for _, arg := range ch.Description.Arguments {
			a.args = append(a.args, expand(arg, env))
		}
	}
	if x := a.host.Extensions; x != nil && x.HTTP != nil {
		if x.HTTP.RoutePrefix != nil {
			a.prefix = strings.Trim(*x.HTTP.RoutePrefix, "/")
		}
		a.maxConc = max(0, x.HTTP.MaxConcurrentRequests)
		a.maxOut = max(0, x.HTTP.MaxOutstandingRequests)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("azure host: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name(), "function.json")
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := parseFunction(e.Name(), raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if f != nil {
			a.functions[strings.ToLower(f.name)] = f
		}
	}
	if len(a.functions) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no FUNCTION/function.json with an httpTrigger binding"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("azure host: app %s: %w", dir, err)
	}
	return a, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

var settingRef = regexp.MustCompile(`%([A-Za-z0-9_.]+)%`)

// expand replaces %NAME% with the app setting or environment variable.
func expand(s string, env []string) string {
	return settingRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
				return v
			}
		}
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return m
	})
}

// parseFunction reads a function.json; a function without an HTTP
// trigger is skipped (nil), as this host serves HTTP triggers only.
func parseFunction(name string, raw []byte) (*function, error) {
	var fj azure.FunctionJSON
	if err := json.Unmarshal(raw, &fj); err != nil {
		return nil, err
	}
	f := &function{name: name}
	found := false
	for _, b := range fj.Bindings {
		switch {
		case strings.EqualFold(b.Type, "httpTrigger") && strings.EqualFold(b.Direction, "in"):
			if found {
				return nil, errors.New("two httpTrigger bindings")
			}
			found = true
			f.trigger = b
		case strings.EqualFold(b.Direction, "out"):
			f.outputs = append(f.outputs, b)
			if strings.EqualFold(b.Type, "http") {
				f.httpOut = b.Name
			}
		}
	}
	if !found {
		return nil, nil
	}
	if f.trigger.Name == "" {
		return nil, errors.New("the httpTrigger binding has no name")
	}
	switch lvl := strings.ToLower(f.trigger.AuthLevel); lvl {
	case "":
		f.trigger.AuthLevel = "function"
	case "anonymous", "function", "admin":
		f.trigger.AuthLevel = lvl
	default:
		return nil, fmt.Errorf("authLevel %q is not anonymous, function or admin", f.trigger.AuthLevel)
	}
	for _, m := range f.trigger.Methods {
		f.methods = append(f.methods, strings.ToUpper(m))
	}
	f.routePath = name
	if f.trigger.Route != "" {
		f.routePath = strings.Trim(f.trigger.Route, "/")
	}
	f.httpOnly = len(f.outputs) == 1 && f.httpOut != ""
	return f, nil
}

// supervise runs an instance's worker process, restarting it when it
// exits, until ctx ends.
func (h *Host) supervise(ctx context.Context, inst *instance, out *sync.Mutex) {
	defer inst.once.Do(func() { inst.readyErr = errors.New("azure host: stopped"); close(inst.ready) })
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := h.runInstance(ctx, inst, out)
		inst.up.Store(false)
		if ctx.Err() != nil {
			return
		}
		failed := false
		inst.once.Do(func() {
			inst.readyErr = fmt.Errorf("azure host: instance %s did not start: %w", inst.id, err)
			close(inst.ready)
			failed = true
		})
		if failed {
			return
		}
		fmt.Fprintf(h.cfg.Output, "azure host: instance %s: %v; restarting it\n", inst.id, err)
		select {
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		case <-ctx.Done():
			return
		}
	}
}

// runInstance starts the worker process, waits for it to answer, marks
// the instance up and waits for the process to exit or ctx to end.
func (h *Host) runInstance(ctx context.Context, inst *instance, out *sync.Mutex) error {
	select { // a request to recycle the previous process is moot
	case <-inst.recycle:
	default:
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(h.app.exe, h.app.args...)
	cmd.Dir = h.app.workDir
	cmd.Env = append(os.Environ(), h.cfg.Env...)
	cmd.Env = append(cmd.Env, azure.PortEnv+"="+strconv.Itoa(port), azure.InstanceEnv+"="+inst.id,
		"FUNCTIONS_WORKER_RUNTIME=Custom", "AzureWebJobsScriptRoot="+h.app.workDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail tailBuffer
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("starting %s: %w", h.app.exe, err)
	}
	pw.Close()
	copied := make(chan struct{})
	go func() { // owned: ends when the process's output closes, waited below
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			tail.add(sc.Text())
			out.Lock()
			fmt.Fprintf(h.cfg.Output, "azure instance %s: %s\n", inst.id, sc.Text())
			out.Unlock()
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned: ends with the process, waited below
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		<-copied
	}

	inst.port.Store(int64(port))
	// Wait until the handler answers anything on its port, as the
	// Functions host does before it sends invocations.
	deadline := time.Now().Add(h.cfg.StartTimeout)
	for {
		if h.ping(ctx, port) {
			break
		}
		select {
		case err := <-exited:
			<-copied
			return fmt.Errorf("the worker exited before answering on %s=%d (%v); its last output:\n%s", azure.PortEnv, port, err, tail.String())
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("the worker did not answer on %s=%d within %s; its last output:\n%s", azure.PortEnv, port, h.cfg.StartTimeout, tail.String())
		}
	}
	inst.up.Store(true)
	inst.once.Do(func() { close(inst.ready) })
	select {
	case err := <-exited:
		<-copied
		return fmt.Errorf("the worker process exited (%v); its last output:\n%s", err, tail.String())
	case <-inst.recycle:
		stop()
		return errors.New("an invocation could not reach the worker; recycled it")
	case <-ctx.Done():
		inst.up.Store(false)
		stop()
		return ctx.Err()
	}
}

func (h *Host) ping(ctx context.Context, port int) bool {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps a process's last lines of output for messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(no output)"
	}
	return strings.Join(t.lines, "\n")
}

// ServeHTTP routes, authorizes, throttles and dispatches one invocation.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	if h.app.prefix != "" {
		rest, ok := strings.CutPrefix(p, h.app.prefix+"/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		p = rest
	}
	var f *function
	for _, fn := range h.app.functions {
		if strings.EqualFold(fn.routePath, p) {
			f = fn
			break
		}
	}
	if f == nil || (len(f.methods) > 0 && !slices.Contains(f.methods, r.Method)) {
		http.NotFound(w, r)
		return
	}
	if !h.authorized(f, r) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	inst := h.pick()
	if inst == nil {
		http.Error(w, "Function host is not running.", http.StatusServiceUnavailable)
		return
	}
	defer inst.busy.Add(-1)
	if h.app.maxOut > 0 && int(inst.busy.Load()) > h.app.maxOut {
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if inst.slots != nil {
		select {
		case inst.slots <- struct{}{}:
			defer func() { <-inst.slots }()
		case <-r.Context().Done():
			return
		}
	}
	invocation := newInvocationID()
	if h.app.forwarding && f.httpOnly {
		h.forward(w, r, inst, invocation)
		return
	}
	h.invokePayload(w, r, f, inst, invocation)
}

// authorized checks the function key by the trigger's authLevel.
func (h *Host) authorized(f *function, r *http.Request) bool {
	if f.trigger.AuthLevel == "anonymous" {
		return true
	}
	key := r.Header.Get(azure.KeyHeader)
	if key == "" {
		key = r.URL.Query().Get(azure.KeyQuery)
	}
	if key == "" {
		return false
	}
	if h.cfg.MasterKey != "" && key == h.cfg.MasterKey {
		return true
	}
	if f.trigger.AuthLevel == "admin" {
		return false
	}
	return slices.Contains(h.cfg.HostKeys, key) || slices.Contains(h.cfg.FunctionKeys[f.name], key)
}

// pick returns the live instance with the fewest invocations in flight,
// with its count raised, or nil if none is up.
func (h *Host) pick() *instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	var best *instance
	for _, in := range h.insts {
		if in.up.Load() && (best == nil || in.busy.Load() < best.busy.Load()) {
			best = in
		}
	}
	if best != nil {
		best.busy.Add(1)
	}
	return best
}

func newInvocationID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func addHostHeaders(req *http.Request, invocation string) {
	req.Header.Set("X-Azure-Functions-HostVersion", Version)
	req.Header.Set(azure.InvocationIDHeader, invocation)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+Version)
}

// forward sends the caller's request to the instance at the same path and
// copies the answer back as is.
func (h *Host) forward(w http.ResponseWriter, r *http.Request, inst *instance, invocation string) {
	u := "http://127.0.0.1:" + strconv.FormatInt(inst.port.Load(), 10) + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.ContentLength = r.ContentLength
	for k, v := range r.Header {
		req.Header[k] = slices.Clone(v)
	}
	addHostHeaders(req, invocation)
	resp, err := h.client.Do(req)
	if err != nil {
		h.sendFailed(w, r, inst, err, "Exception while executing function: "+err.Error())
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = slices.Clone(v)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// invokePayload sends the invocation as a Data/Metadata request payload
// and turns the handler's Outputs/ReturnValue into the HTTP response.
func (h *Host) invokePayload(w http.ResponseWriter, r *http.Request, f *function, inst *instance, invocation string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, azure.MaxPayloadBytes+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > azure.MaxPayloadBytes {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	queryJSON, _ := json.Marshal(query)
	reqURL := "http://" + r.Host + r.URL.RequestURI()
	trigger := azure.HTTPData{URL: reqURL, Method: r.Method, Query: mustJSON(string(queryJSON)), Headers: r.Header,
		Params: map[string]string{}, Body: mustJSON(string(body))}
	ir := azure.InvokeRequest{
		Data: map[string]json.RawMessage{f.trigger.Name: mustJSON(trigger)},
		Metadata: map[string]any{
			"Query":   query,
			"Headers": flatHeaders(r.Header),
			"sys": map[string]any{"MethodName": f.name, "UtcNow": time.Now().UTC().Format(time.RFC3339Nano),
				"RandGuid": newInvocationID()},
		},
	}
	payload, err := json.Marshal(ir)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://127.0.0.1:"+strconv.FormatInt(inst.port.Load(), 10)+"/"+f.name, bytes.NewReader(payload))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	addHostHeaders(req, invocation)
	resp, err := h.client.Do(req)
	if err != nil {
		h.sendFailed(w, r, inst, err, "Exception while executing function: Functions."+f.name+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "Exception while executing function: Functions."+f.name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The host's EnsureSuccessStatusCode: the invocation failed.
		http.Error(w, fmt.Sprintf("Exception while executing function: Functions.%s: the custom handler answered %d: %s", f.name, resp.StatusCode, data), http.StatusInternalServerError)
		return
	}
	var out struct {
		Outputs     map[string]json.RawMessage
		Logs        []string
		ReturnValue json.RawMessage
	}
	if err := json.Unmarshal(data, &out); err != nil {
		http.Error(w, fmt.Sprintf("Exception while executing function: Functions.%s: Invalid HttpResponseMessage: %v", f.name, err), http.StatusInternalServerError)
		return
	}
	for _, l := range out.Logs {
		if !h.cfg.LogInvocations {
			break
		}
		fmt.Fprintf(h.cfg.Output, "azure host: Functions.%s (%s): %s\n", f.name, invocation, l)
	}
	var raw json.RawMessage
	switch {
	case f.httpOut == "":
		w.WriteHeader(http.StatusNoContent)
		return
	case f.httpOut == "$return":
		raw = out.ReturnValue
	default:
		raw = caseInsensitive(out.Outputs, f.httpOut)
	}
	status, hdrs, respBody, err := httpOutput(raw)
	if err != nil {
		http.Error(w, fmt.Sprintf("Exception while executing function: Functions.%s: %v", f.name, err), http.StatusInternalServerError)
		return
	}
	for k, v := range hdrs {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	w.Write(respBody)
}

// sendFailed answers an invocation whose request to the worker failed:
// 503 if the worker refused the connection (the invocation never reached
// it), else 500, as the Functions host fails an invocation whose handler
// request failed.
//
// Either way, unless the caller went away, the instance is taken out of
// service and its worker restarted, as the host recycles a handler
// process it lost: the next invocations wait for (503) or go to a live
// instance instead of a dying one.
func (h *Host) sendFailed(w http.ResponseWriter, r *http.Request, inst *instance, err error, msg string) {
	if r.Context().Err() == nil {
		inst.up.Store(false)
		select {
		case inst.recycle <- struct{}{}:
		default:
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		http.Error(w, "Function host is not running.", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, msg, http.StatusInternalServerError)
}

func caseInsensitive(m map[string]json.RawMessage, name string) json.RawMessage {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// httpOutput decodes an http output binding's value the way the host
// does: statusCode, status, body and headers are all required (member
// names in any case), the codes may be strings or numbers.
func httpOutput(raw json.RawMessage) (int, map[string]string, []byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		// No value for the http output: an empty 200, as the host sends.
		return http.StatusOK, nil, nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, nil, nil, errors.New("Output body should have 'StatusCode', 'Status', 'Body', and 'Headers'")
	}
	get := func(name string) (json.RawMessage, bool) {
		v := caseInsensitive(m, name)
		return v, v != nil
	}
	sc, ok1 := get("statusCode")
	_, ok2 := get("status")
	body, ok3 := get("body")
	hdr, ok4 := get("headers")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, nil, nil, errors.New("Output body should have 'StatusCode', 'Status', 'Body', and 'Headers'")
	}
	code, err := codeOf(sc)
	if err != nil {
		return 0, nil, nil, err
	}
	headers := map[string]string{}
	if string(hdr) != "null" {
		var hm map[string]any
		if err := json.Unmarshal(hdr, &hm); err != nil {
			return 0, nil, nil, fmt.Errorf("http output headers: %w", err)
		}
		for k, v := range hm {
			headers[k] = fmt.Sprint(v)
		}
	}
	var b []byte
	var s string
	if json.Unmarshal(body, &s) == nil {
		b = []byte(s)
	} else if string(body) != "null" {
		b = body // an object or array body is sent as its JSON
	}
	return code, headers, b, nil
}

func codeOf(raw json.RawMessage) (int, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	if s == "" || s == "null" {
		return http.StatusOK, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("http output statusCode %q is not an HTTP status", s)
	}
	return n, nil
}

func flatHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		m[k] = strings.Join(v, ",")
	}
	return m
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain values always marshal
	}
	return b
}
