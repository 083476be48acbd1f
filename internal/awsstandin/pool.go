//go:build unix

package awsstandin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FunctionName is the function name the emulator serves, and so the name
// clients invoke.
const FunctionName = "function"

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Emulator is the aws-lambda-rie binary; default Tool(EmulatorTool).
	Emulator string
	// Bootstrap is the worker binary each emulator runs as the function.
	// Required.
	Bootstrap string
	// Args are the bootstrap's arguments (Lambda passes none).
	Args []string
	// Dir is the processes' working directory; default the current one.
	Dir string
	// Size is the number of emulators, i.e. of sandboxes that run at
	// once. Default 2.
	Size int
	// Env holds extra KEY=VALUE entries for the emulators and so for the
	// function (the emulator forwards its environment), on top of this
	// process's.
	Env []string
	// Timeout is the function timeout (whole seconds). Default 60 s.
	Timeout time.Duration
	// MemoryMiB is the memory the function is told it has. Default 1769.
	MemoryMiB int
	// Throttle makes the front end answer 429 TooManyRequestsException
	// when every emulator is busy, instead of waiting for one.
	Throttle bool
	// Output receives the emulators' and functions' output; nil discards
	// it.
	Output io.Writer
}

// PoolStats counts what the front end did.
type PoolStats struct {
	// Invocations is the number of invocations handed to an emulator.
	Invocations int64
	// Throttled is the number of 429 answers.
	Throttled int64
	// NotFound is the number of 404 answers for an unknown function.
	NotFound int64
	// Restarts is the number of emulators restarted after they exited.
	Restarts int64
	// MaxBusy is the most emulators busy at once.
	MaxBusy int64
}

// Pool is a local stand-in for Lambda's invoke API (see the package
// documentation).
type Pool struct {
	cfg  PoolConfig
	ln   net.Listener
	srv  *http.Server
	url  string
	idle chan *instance

	ctx    context.Context // cancelled by Close: ends Event runs
	cancel context.CancelFunc
	serveW sync.WaitGroup // the server goroutine
	events sync.WaitGroup // background Event invocations
	procs  sync.WaitGroup // emulator supervisors

	mu        sync.Mutex
	instances []*instance
	closed    bool

	busy                                                atomic.Int64
	invocations, throttled, notFound, restarts, maxBusy atomic.Int64
	closeOnce                                           sync.Once
}

// instance is one emulator process.
type instance struct {
	n    int
	addr string // its invoke endpoint, host:port
	p    *proc
}

// StartPool starts cfg.Size emulators and the front end. Close stops them.
func StartPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Bootstrap == "" {
		return nil, errors.New("awsstandin: PoolConfig.Bootstrap (the worker binary) is required")
	}
	if cfg.Emulator == "" {
		p, err := Tool(EmulatorTool)
		if err != nil {
			return nil, err
		}
		cfg.Emulator = p
	}
	if cfg.Size <= 0 {
		cfg.Size = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.MemoryMiB <= 0 {
		cfg.MemoryMiB = 1769
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &Pool{cfg: cfg, idle: make(chan *instance, cfg.Size), ctx: ctx, cancel: cancel}
	for i := range cfg.Size {
		inst, err := pl.start(i)
		if err != nil {
			pl.Close()
			return nil, err
		}
		pl.mu.Lock()
		pl.instances = append(pl.instances, inst)
		pl.mu.Unlock()
		pl.idle <- inst
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pl.Close()
		return nil, err
	}
	pl.ln = ln
	pl.url = "http://" + ln.Addr().String()
	pl.srv = &http.Server{Handler: http.HandlerFunc(pl.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	pl.serveW.Add(1)
	go func() {
		defer pl.serveW.Done()
		_ = pl.srv.Serve(ln)
	}()
	return pl, nil
}

// URL returns the front end's endpoint, for the Lambda client's
// BaseEndpoint.
func (pl *Pool) URL() string { return pl.url }

// Stats returns the front end's counters.
func (pl *Pool) Stats() PoolStats {
	return PoolStats{Invocations: pl.invocations.Load(), Throttled: pl.throttled.Load(), NotFound: pl.notFound.Load(),
		Restarts: pl.restarts.Load(), MaxBusy: pl.maxBusy.Load()}
}

// start starts emulator n, retrying if its ports were taken meanwhile.
func (pl *Pool) start(n int) (*instance, error) {
	var lastErr error
	for range 3 {
		inst, err := pl.startOnce(n)
		if err == nil {
			return inst, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("awsstandin: starting emulator %d: %w", n, lastErr)
}

func (pl *Pool) startOnce(n int) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--runtime-interface-emulator-address", addr, "--runtime-api-address", api, pl.cfg.Bootstrap}, pl.cfg.Args...)
	cmd := exec.Command(pl.cfg.Emulator, args...)
	cmd.Dir = pl.cfg.Dir
	cmd.Env = append(os.Environ(), pl.cfg.Env...)
	cmd.Env = append(cmd.Env,
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int((pl.cfg.Timeout+time.Second-1)/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(pl.cfg.MemoryMiB),
		"AWS_LAMBDA_FUNCTION_NAME="+FunctionName,
		"LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = pl.cfg.Output, pl.cfg.Output
	p, err := startProc(cmd, &pl.procs)
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, addr, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &instance{n: n, addr: addr, p: p}, nil
}

// acquire takes an idle emulator, restarting it if it exited, or reports
// false: throttled (Throttle set and none idle) or ctx done.
func (pl *Pool) acquire(ctx context.Context) (*instance, bool) {
	var inst *instance
	if pl.cfg.Throttle {
		select {
		case inst = <-pl.idle:
		default:
			return nil, false
		}
	} else {
		select {
		case inst = <-pl.idle:
		case <-ctx.Done():
			return nil, false
		case <-pl.ctx.Done():
			return nil, false
		}
	}
	if inst.p.exited() {
		fresh, err := pl.start(inst.n)
		if err != nil {
			fmt.Fprintf(pl.cfg.Output, "awsstandin: %v\n", err)
			pl.idle <- inst // try again on the next invocation
			return nil, false
		}
		pl.restarts.Add(1)
		pl.mu.Lock()
		pl.instances[inst.n] = fresh
		pl.mu.Unlock()
		inst = fresh
	}
	b := pl.busy.Add(1)
	for {
		m := pl.maxBusy.Load()
		if b <= m || pl.maxBusy.CompareAndSwap(m, b) {
			break
		}
	}
	return inst, true
}

func (pl *Pool) release(inst *instance) {
	pl.busy.Add(-1)
	pl.idle <- inst
}

const invokePrefix = "/2015-03-31/functions/"

// serveHTTP is the front end: Lambda's Invoke API.
func (pl *Pool) serveHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, invokePrefix)
	name, ok2 := strings.CutSuffix(name, "/invocations")
	if r.Method != http.MethodPost || !ok || !ok2 {
		lambdaError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation "+r.Method+" "+r.URL.Path)
		return
	}
	if name != FunctionName && !strings.HasSuffix(name, ":function:"+FunctionName) {
		pl.notFound.Add(1)
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:000000000000:function:"+name)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	event := r.Header.Get("X-Amz-Invocation-Type") == "Event"
	inst, ok := pl.acquire(r.Context())
	if !ok {
		if pl.cfg.Throttle {
			pl.throttled.Add(1)
			lambdaError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.")
			return
		}
		lambdaError(w, http.StatusServiceUnavailable, "ServiceException", "the stand-in is shutting down")
		return
	}
	pl.invocations.Add(1)
	if event {
		// Lambda queues an Event invocation and answers 202 at once.
		pl.events.Add(1)
		go func() {
			defer pl.events.Done()
			defer pl.release(inst)
			_, _, _, _ = pl.forward(pl.ctx, inst, body)
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	defer pl.release(inst)
	status, ctype, out, err := pl.forward(r.Context(), inst, body)
	if err != nil {
		lambdaError(w, http.StatusBadGateway, "ServiceException", "the emulator did not answer: "+err.Error())
		return
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.WriteHeader(status)
	w.Write(out)
}

// forward sends one invocation to an emulator.
func (pl *Pool) forward(ctx context.Context, inst *instance, body []byte) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+inst.addr+invokePrefix+FunctionName+"/invocations", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), out, err
}

// lambdaError writes an error the way Lambda's REST-JSON API does.
func lambdaError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"Type":"User","message":%q}`, msg)
}

// Close stops the front end, waits for background Event invocations,
// stops every emulator and waits for them. It is idempotent.
func (pl *Pool) Close() error {
	pl.closeOnce.Do(func() {
		pl.cancel() // ends waits for an emulator and Event runs
		if pl.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
			if err := pl.srv.Shutdown(ctx); err != nil {
				pl.srv.Close()
			}
			cancel()
			pl.serveW.Wait()
		}
		pl.events.Wait()
		pl.mu.Lock()
		insts := append([]*instance(nil), pl.instances...)
		pl.closed = true
		pl.mu.Unlock()
		var wg sync.WaitGroup
		for _, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst.p.stop()
			}()
		}
		wg.Wait()
		pl.procs.Wait()
	})
	return nil
}
