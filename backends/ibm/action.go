package ibm

import (
	"bufio"
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
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends"
)

// LogSentinel is the line an action container writes to both standard
// output and standard error after each activation, so the Invoker can cut
// the container's log streams into per-activation logs.
const LogSentinel = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"

// Environment variables of the worker side.
const (
	// EnvAPIHost is set by every OpenWhisk Invoker in its action
	// containers; its presence is how a Gale binary knows it runs as an
	// action.
	EnvAPIHost = "__OW_API_HOST"
	// EnvActionAddr overrides the action server's listen address (default
	// ":8080", the port the action interface fixes). Only the loopback
	// controller sets it, to run several containers on one machine.
	EnvActionAddr = "GALE_IBM_ACTION_ADDR"
	// EnvInstance overrides the instance id reported for this container.
	// Only the loopback controller sets it: its containers are processes
	// that share the host's cgroup.
	EnvInstance = "GALE_IBM_INSTANCE"
	// EnvProtocol forces the worker's protocol: "http" (the action
	// interface, /init and /run on port 8080) or "loop" (the ActionLoop
	// protocol of the native Go runtime). Empty: detect.
	EnvProtocol = "GALE_IBM_PROTOCOL"
	// envWaitForAck is set by ActionLoop runtimes that wait for the
	// executable's {"ok":true} before the first activation.
	envWaitForAck = "OW_WAIT_FOR_ACK"
)

// DefaultActionAddr is where the action interface listens in a container.
const DefaultActionAddr = ":8080"

// ActionConfig configures the worker side of the action interface.
type ActionConfig struct {
	// Stdout and Stderr receive the activation log sentinels (the
	// user's own output goes to the process's streams). Default
	// os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Instance is the instance id reported with every result. Default:
	// the container id in /proc/self/cgroup, else the host name if it
	// looks like a container id, else an id drawn when the worker starts.
	Instance string
	// SetEnv makes each activation set the __OW_* environment variables
	// (__OW_ACTIVATION_ID, __OW_NAMESPACE, __OW_ACTION_NAME,
	// __OW_DEADLINE, ...) of the action interface before running the
	// task, as every OpenWhisk runtime does for its function.
	SetEnv bool
}

// ServeAction is the worker entry of an OpenWhisk action: it serves Gale
// tasks with h until ctx is done. It speaks one of two protocols:
//
//   - the action interface, for a container whose entry point is this
//     binary (a blackbox action): HTTP on port 8080 (EnvActionAddr
//     overrides), POST /init once, then POST /run for each activation,
//     one at a time, with the log sentinel written after each;
//   - the ActionLoop protocol, for the binary deployed as the executable
//     `exec` of a native Go action (the runtime's proxy serves /init and
//     /run and starts `exec` once): activations arrive as JSON lines on
//     standard input and each result leaves as one JSON line on file
//     descriptor 3; the proxy writes the sentinels.
//
// EnvProtocol chooses; when it is empty, standard input and file
// descriptor 3 both being pipes means ActionLoop. ServeAction returns nil
// when the ActionLoop proxy closes standard input.
func ServeAction(ctx context.Context, h backends.Handler) error {
	cfg := ActionConfig{Instance: os.Getenv(EnvInstance), SetEnv: true}
	proto := os.Getenv(EnvProtocol)
	if proto == "" {
		proto = "http"
		if isPipe(0) && isPipe(3) {
			proto = "loop"
		}
	}
	switch proto {
	case "loop":
		fd3 := os.NewFile(3, "ow-results")
		defer fd3.Close()
		return ServeActionLoop(ctx, cfg, h, os.Stdin, fd3, os.Getenv(envWaitForAck) != "")
	case "http":
		addr := os.Getenv(EnvActionAddr)
		if addr == "" {
			addr = DefaultActionAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("ibm: action interface: %w", err)
		}
		return ServeHTTPAction(ctx, cfg, h, ln)
	}
	return fmt.Errorf("ibm: %s=%q: want \"http\" or \"loop\"", EnvProtocol, proto)
}

// isPipe reports whether file descriptor fd is open on a pipe.
func isPipe(fd int) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFIFO
}

// runner runs activations one at a time and reports them in Gale's wire
// format; both protocols share it.
type runner struct {
	cfg      ActionConfig
	h        backends.Handler
	instance string

	mu   sync.Mutex // held while an activation runs
	cold bool       // no activation has run yet
}

func newRunner(cfg ActionConfig, h backends.Handler) *runner {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	inst := cfg.Instance
	if inst == "" {
		inst = containerID()
	}
	return &runner{cfg: cfg, h: h, instance: inst, cold: true}
}

// activation is one /run body or ActionLoop line: the parameters under
// "value" and the activation context beside them.
type activation struct {
	Value   json.RawMessage            `json:"value"`
	Context map[string]json.RawMessage `json:"-"`
}

func parseActivation(b []byte) (*activation, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("the activation is not a JSON object: %w", err)
	}
	a := &activation{Value: all["value"], Context: all}
	delete(a.Context, "value")
	return a, nil
}

// contextString returns an activation context field as a string (the
// Invoker sends deadline as a string of milliseconds; accept numbers too).
func (a *activation) contextString(key string) string {
	raw, ok := a.Context[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// run runs one activation and returns the JSON result and whether it is
// an error ({"error": ...}).
func (r *runner) run(ctx context.Context, a *activation) (out []byte, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cold := r.cold
	r.cold = false
	actID := a.contextString("activation_id")
	if r.cfg.SetEnv {
		for k := range a.Context {
			os.Setenv("__OW_"+strings.ToUpper(k), a.contextString(k))
		}
	}
	if ms, err := strconv.ParseInt(a.contextString("deadline"), 10, 64); err == nil && ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(ms))
		defer cancel()
	}
	env := resultEnvelope{Gale: 1, Instance: r.instance, ActivationID: actID, Cold: cold}
	fail := func(typ, msg string, notStarted bool) ([]byte, bool) {
		env.Gale = 0
		env.Type, env.Message, env.NotStarted = typ, msg, notStarted
		e, _ := json.Marshal(&env)
		b, _ := json.Marshal(errorBody{Error: e})
		return b, true
	}
	var p taskParams
	if err := json.Unmarshal(a.Value, &p); err != nil || p.Task == "" && p.Payload == nil && p.PayloadB64 == nil {
		env.Start, env.End = time.Now(), time.Now()
		return fail("error", "ibm: the activation's parameters are not a Gale task (invoke the action through Gale's ibm backend): "+snippet(a.Value), true)
	}
	env.Start = time.Now()
	res, err := r.call(ctx, p.payload())
	env.End = time.Now()
	env.UptimeS = hostUptime()
	if err != nil {
		var fe *backends.FunctionError
		typ, msg := "error", err.Error()
		if errors.As(err, &fe) {
			typ, msg = fe.Type, fe.Message
		}
		return fail(typ, msg, errors.Is(err, backends.ErrNotStarted))
	}
	env.setPayload(res)
	b, err := json.Marshal(&env)
	if err != nil {
		return fail("error", "ibm: encoding the result: "+err.Error(), false)
	}
	return b, false
}

// call runs the handler, turning a panic into a FunctionError.
func (r *runner) call(ctx context.Context, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &backends.FunctionError{Backend: "ibm", Type: "panic", Message: fmt.Sprintf("%v\n%s", p, debug.Stack())}
		}
	}()
	return r.h(ctx, payload)
}

// sentinel marks the end of an activation's logs on both streams.
func (r *runner) sentinel() {
	io.WriteString(r.cfg.Stdout, LogSentinel+"\n")
	io.WriteString(r.cfg.Stderr, LogSentinel+"\n")
}

// ServeHTTPAction serves the action interface on ln until ctx is done:
// POST /init accepts the first initialization (the binary already is the
// action; the code, if any, is ignored, and the "env" map is applied to
// the environment) and refuses any later one with 403; POST /run runs one
// activation at a time and answers 200 with the result object, or 502
// with {"error": ...} when the task failed; after each activation it
// writes LogSentinel to cfg.Stdout and cfg.Stderr. It closes ln. It owns
// the HTTP server's goroutines and waits for them.
func ServeHTTPAction(ctx context.Context, cfg ActionConfig, h backends.Handler, ln net.Listener) error {
	r := newRunner(cfg, h)
	var (
		initMu sync.Mutex
		inited bool
	)
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
	errJSON := func(msg string) []byte {
		b, _ := json.Marshal(map[string]string{"error": msg})
		return b
	}
	mux.HandleFunc("POST /init", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			reply(w, http.StatusBadRequest, errJSON("reading the init request: "+err.Error()))
			return
		}
		initMu.Lock()
		defer initMu.Unlock()
		if inited {
			reply(w, http.StatusForbidden, errJSON("Cannot initialize the action more than once."))
			return
		}
		var in struct {
			Value struct {
				Env map[string]any `json:"env"`
			} `json:"value"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				reply(w, http.StatusBadRequest, errJSON("the init request is not a JSON object: "+err.Error()))
				return
			}
		}
		for k, v := range in.Value.Env {
			if s, ok := v.(string); ok {
				os.Setenv(k, s)
			} else if b, err := json.Marshal(v); err == nil {
				os.Setenv(k, string(b))
			}
		}
		inited = true
		reply(w, http.StatusOK, []byte(`{"ok":true}`))
	})
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, req *http.Request) {
		initMu.Lock()
		ok := inited
		initMu.Unlock()
		if !ok {
			reply(w, http.StatusInternalServerError, errJSON("the action was not initialized: POST /init first"))
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			reply(w, http.StatusBadRequest, errJSON("reading the run request: "+err.Error()))
			return
		}
		a, err := parseActivation(body)
		if err != nil {
			reply(w, http.StatusBadRequest, errJSON(err.Error()))
			return
		}
		if !r.mu.TryLock() {
			// The platform never overlaps activations on one container.
			reply(w, http.StatusConflict, errJSON("another activation is running in this container"))
			return
		}
		r.mu.Unlock()
		out, failed := r.run(req.Context(), a)
		status := http.StatusOK
		if failed {
			status = http.StatusBadGateway
		}
		reply(w, status, out)
		r.sentinel()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ibm: action interface: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return ctx.Err()
}

// ServeActionLoop serves the ActionLoop protocol: it writes {"ok":true}
// to out first if ack is set (runtimes that set OW_WAIT_FOR_ACK wait for
// it), then reads activations from in, one JSON object per line, and
// writes each result as one JSON line to out. It returns nil when in ends,
// ctx.Err() when ctx is done (closing in, if it is an io.Closer, to stop
// reading). It owns one reader goroutine and waits for it.
func ServeActionLoop(ctx context.Context, cfg ActionConfig, h backends.Handler, in io.Reader, out io.Writer, ack bool) error {
	r := newRunner(cfg, h)
	if ack {
		if _, err := io.WriteString(out, "{\"ok\":true}\n"); err != nil {
			return fmt.Errorf("ibm: action loop: acknowledging: %w", err)
		}
	}
	type line struct {
		b   []byte
		err error
	}
	lines := make(chan line)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		br := bufio.NewReaderSize(in, 1<<20)
		for {
			b, err := br.ReadBytes('\n')
			if len(b) == 0 && err == nil {
				continue
			}
			select {
			case lines <- line{b, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if c, ok := in.(io.Closer); ok {
			c.Close()
		}
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l := <-lines:
			if len(strings.TrimSpace(string(l.b))) > 0 {
				var res []byte
				a, err := parseActivation(l.b)
				if err != nil {
					res, _ = json.Marshal(map[string]string{"error": err.Error()})
				} else {
					res, _ = r.run(ctx, a)
				}
				if _, err := out.Write(append(res, '\n')); err != nil {
					return fmt.Errorf("ibm: action loop: writing a result: %w", err)
				}
			}
			if l.err == io.EOF {
				return nil
			}
			if l.err != nil {
				return fmt.Errorf("ibm: action loop: reading activations: %w", l.err)
			}
		}
	}
}

// containerIDRE matches a container id in a cgroup path: Docker's 64 hex
// digits (docker/<id>, docker-<id>.scope, cri-containerd-<id>.scope,
// kubepods/.../<id>) or a shorter runtime's 32.
var containerIDRE = regexp.MustCompile(`[0-9a-f]{64}|[0-9a-f]{32}`)

// containerID returns this container's id: from /proc/self/cgroup (the
// thesis's instance identity for IBM), else the host name when it looks
// like Docker's short id, else an id drawn now, at the worker's cold start.
func containerID() string {
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		if id := cgroupContainerID(string(b)); id != "" {
			return id
		}
	}
	if h, err := os.Hostname(); err == nil && regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(h) {
		return h
	}
	var b [8]byte
	rand.Read(b[:])
	return "ow-" + hex.EncodeToString(b[:])
}

// cgroupContainerID finds a container id in the text of /proc/self/cgroup.
func cgroupContainerID(cgroup string) string {
	for _, l := range strings.Split(cgroup, "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if id := containerIDRE.FindString(parts[2]); id != "" {
			return id
		}
	}
	return ""
}

// hostUptime returns the host's uptime in seconds from /proc/uptime, or 0.
func hostUptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[0], 64)
	return u
}
