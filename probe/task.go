package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
)

// Kind is the payload kind of a probe invocation: the value of the
// top-level "kind" field that a worker's engine.Mux routes to Handler.
const Kind = "gale.probe/v1"

// ResultKind is the kind of the payload Handler returns.
const ResultKind = "gale.probe.result/v1"

// Task is what a probe invocation does inside the function.
type Task string

const (
	// Sleep sleeps for the requested duration: it measures scheduling and
	// instance creation without any demand on the CPU.
	Sleep Task = "sleep"
	// Compute estimates π by Monte Carlo sampling for as many iterations
	// as one full CPU runs in the requested duration: it also measures the
	// CPU share an invocation gets.
	Compute Task = "compute"
)

// ParseTask returns the task named s ("sleep" or "compute").
func ParseTask(s string) (Task, error) {
	switch Task(s) {
	case Sleep, Compute:
		return Task(s), nil
	}
	return "", fmt.Errorf("probe: unknown task %q; want sleep or compute", s)
}

// Request is the payload of a probe invocation.
type Request struct {
	// Kind is always Kind; it comes first so routing reads little.
	Kind string `json:"kind"`
	// Task is sleep or compute.
	Task Task `json:"task"`
	// DurationNS is the requested duration in nanoseconds: the sleep time,
	// or the compute time on one full CPU.
	DurationNS int64 `json:"duration_ns"`
	// Iterations, for compute, is the number of Monte Carlo iterations to
	// run. The driver sets it from its own calibration, so every instance
	// does the same work whatever its CPU share; zero makes the worker
	// size the loop with its own calibration.
	Iterations int64 `json:"iterations,omitempty"`
	// Seq numbers the invocation within its run, from 0.
	Seq int `json:"seq"`
	// Async marks an invocation of a large-scale asynchronous run. Its
	// result goes to object storage: when ResultURL is set, the handler
	// writes its Response as JSON to the store at that URL, under
	// ResultKey, and answers with a short acknowledgement instead.
	Async     bool   `json:"async,omitempty"`
	ResultURL string `json:"result_url,omitempty"`
	ResultKey string `json:"result_key,omitempty"`
}

// Response is the payload Handler returns.
type Response struct {
	// Kind is always ResultKind.
	Kind string `json:"kind"`
	// Seq echoes Request.Seq.
	Seq int `json:"seq"`
	// StartNS and EndNS are when the task began and finished, in Unix
	// nanoseconds on the function's clock.
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
	// Instance identifies the instance that ran the task, and
	// InstanceSource says where the identity came from: "cgroup"
	// (/proc/self/cgroup, as on AWS Lambda and OpenWhisk), "env:NAME" (an
	// environment variable such as WEBSITE_INSTANCE_ID on Azure), or
	// "random" (an id drawn once per worker process, as the thesis did on
	// Google Cloud Functions).
	Instance       string `json:"instance"`
	InstanceSource string `json:"instance_source"`
	// Cold is true for the first invocation a worker process serves.
	Cold bool `json:"cold"`
	// UptimeS is the host's uptime in seconds (/proc/uptime) when the task
	// started; zero where unavailable. Instances on one host read uptimes
	// that differ by about the difference of their start times.
	UptimeS float64 `json:"uptime_s,omitempty"`
	// Activation is the platform's id of this invocation where it exposes
	// one (__OW_ACTIVATION_ID on OpenWhisk).
	Activation string `json:"activation,omitempty"`
	// Iterations is how many Monte Carlo iterations ran, and Pi the
	// resulting estimate (compute only).
	Iterations int64   `json:"iterations,omitempty"`
	Pi         float64 `json:"pi,omitempty"`
}

// Start returns StartNS as a time.
func (r Response) Start() time.Time { return time.Unix(0, r.StartNS) }

// End returns EndNS as a time.
func (r Response) End() time.Time { return time.Unix(0, r.EndNS) }

// NewRequest returns the payload of invocation seq of a run.
func NewRequest(task Task, d time.Duration, iterations int64, seq int) []byte {
	b, _ := json.Marshal(Request{Kind: Kind, Task: task, DurationNS: int64(d), Iterations: iterations, Seq: seq})
	return b // cannot fail: plain fields
}

// ParseRequest decodes a probe payload and checks it.
func ParseRequest(payload []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("probe: decoding request: %w", err)
	}
	if r.Kind != Kind {
		return r, fmt.Errorf("probe: request kind is %q, want %q", r.Kind, Kind)
	}
	if _, err := ParseTask(string(r.Task)); err != nil {
		return r, err
	}
	if r.DurationNS < 0 || r.Iterations < 0 {
		return r, errors.New("probe: request duration and iterations must not be negative")
	}
	if r.ResultURL != "" {
		if err := objstore.ValidateKey(r.ResultKey); err != nil {
			return r, fmt.Errorf("probe: request result key: %w", err)
		}
	}
	return r, nil
}

// IsRequest reports whether payload is a probe request, judging by its
// kind alone.
func IsRequest(payload []byte) bool {
	var k struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(payload, &k) == nil && k.Kind == Kind
}

// AckKind is the kind of the short answer Handler gives to an
// asynchronous request whose result it wrote to object storage.
const AckKind = "gale.probe.ack/v1"

// Ack is Handler's answer to a request with a ResultURL: where it put the
// Response.
type Ack struct {
	Kind string `json:"kind"`
	Seq  int    `json:"seq"`
	Key  string `json:"key"`
}

// StoreOpener opens the object store at a URL (a local directory,
// file://, s3://bucket/prefix, ...).
type StoreOpener func(ctx context.Context, url string) (objstore.Store, error)

// HandlerOption configures Handler.
type HandlerOption func(*worker)

// WithStoreOpener makes Handler open result stores with open (for
// example gale.OpenStore, which knows s3:// URLs) instead of the default,
// which opens local directories and file:// URLs only.
func WithStoreOpener(open StoreOpener) HandlerOption {
	return func(w *worker) { w.open = open }
}

// Handler returns the worker side of the probe: a backends.Handler that
// runs probe requests and returns their Response as JSON, or, for a
// request that names a ResultURL (an asynchronous run), writes the
// Response to that store under ResultKey and returns an Ack.
//
// The handler's state is its instance identity, drawn or read when
// Handler is called, whether it has served an invocation yet (the first
// is cold), and the result stores it has opened. A worker process creates
// one Handler; every call on it is then an invocation on the same
// instance. The handler is safe for concurrent use (a platform may run
// several invocations on one instance, as Azure Functions does).
func Handler(opts ...HandlerOption) backends.Handler {
	w := &worker{open: defaultOpener, stores: map[string]objstore.Store{}}
	w.instance, w.source = instanceIdentity()
	for _, o := range opts {
		o(w)
	}
	return w.handle
}

// defaultOpener opens local directories and file:// URLs.
func defaultOpener(ctx context.Context, url string) (objstore.Store, error) {
	return objstore.NewResolver().Open(ctx, url)
}

type worker struct {
	instance, source string
	served           atomic.Int64
	open             StoreOpener

	mu     sync.Mutex
	stores map[string]objstore.Store // result stores by URL
}

func (w *worker) handle(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := ParseRequest(payload)
	if err != nil {
		return nil, err
	}
	d := time.Duration(req.DurationNS)
	iters := req.Iterations
	if req.Task == Compute && iters == 0 {
		iters = IterationsFor(d)
	}
	cold := w.served.Add(1) == 1
	resp := Response{Kind: ResultKind, Seq: req.Seq, Instance: w.instance, InstanceSource: w.source, Cold: cold,
		Activation: os.Getenv("__OW_ACTIVATION_ID")}
	// The uptime is read first so the measured span holds the task alone.
	resp.UptimeS = uptime()
	start := time.Now()
	switch req.Task {
	case Sleep:
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("probe: sleep task %d: %w", req.Seq, ctx.Err())
		}
	case Compute:
		pi, err := monteCarloPi(ctx, iters, uint64(req.Seq)+1)
		if err != nil {
			return nil, fmt.Errorf("probe: compute task %d: %w", req.Seq, err)
		}
		resp.Iterations, resp.Pi = iters, pi
	}
	end := time.Now()
	resp.StartNS, resp.EndNS = start.UnixNano(), end.UnixNano()
	out, err := json.Marshal(resp)
	if err != nil || req.ResultURL == "" {
		return out, err
	}
	st, err := w.store(ctx, req.ResultURL)
	if err != nil {
		return nil, fmt.Errorf("probe: task %d: opening the result store: %w", req.Seq, err)
	}
	if err := st.Put(ctx, req.ResultKey, bytes.NewReader(out)); err != nil {
		return nil, fmt.Errorf("probe: task %d: storing the result: %w", req.Seq, err)
	}
	return json.Marshal(Ack{Kind: AckKind, Seq: req.Seq, Key: req.ResultKey})
}

// store returns the result store at url, opened once per worker.
func (w *worker) store(ctx context.Context, url string) (objstore.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.stores[url]; ok {
		return st, nil
	}
	st, err := w.open(ctx, url)
	if err != nil {
		return nil, err
	}
	w.stores[url] = st
	return st, nil
}

// monteCarloPi estimates π from n random points in the unit square,
// checking ctx every 2^20 iterations. The generator is an inline
// xorshift64* rather than math/rand/v2: the loop is the workload, and
// keeping it free of calls and interfaces makes its speed depend on the
// CPU alone, which is what the calibration measures.
func monteCarloPi(ctx context.Context, n int64, seed uint64) (float64, error) {
	x := seed*0x9E3779B97F4A7C15 | 1
	var in int64
	const scale = 1.0 / (1 << 53)
	for i := int64(0); i < n; i++ {
		if i&(1<<20-1) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		a := float64((x*0x2545F4914F6CDD1D)>>11) * scale
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		b := float64((x*0x2545F4914F6CDD1D)>>11) * scale
		if a*a+b*b <= 1 {
			in++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return 4 * float64(in) / float64(n), nil
}

// calibrationIterations is the size of the fixed loop Calibrate times:
// long enough (tens of milliseconds) to swamp timer resolution, short
// enough to add little to a cold start.
const calibrationIterations = 1 << 22

// calibration is measured once per process, on first use. It is the one
// piece of package state: a read-only fact about the machine, cached
// because measuring it costs CPU time that would distort the first
// invocation of every probe.
var calibration = sync.OnceValue(func() float64 {
	best := math.Inf(1)
	for range 3 {
		t0 := time.Now()
		_, _ = monteCarloPi(context.Background(), calibrationIterations, 7)
		if s := time.Since(t0).Seconds(); s < best && s > 0 {
			best = s
		}
	}
	return calibrationIterations / best
})

// Calibrate returns how many Monte Carlo iterations per second this
// process runs on one CPU. It times a fixed loop of 2^22 iterations three
// times, once per process, and keeps the fastest run: the one least
// disturbed by other work on the machine, hence the closest to one full
// CPU.
func Calibrate() float64 { return calibration() }

// IterationsFor returns the number of iterations that take d on one full
// CPU of this machine, by Calibrate.
func IterationsFor(d time.Duration) int64 {
	return int64(Calibrate() * d.Seconds())
}

// containerID matches a Docker/containerd container id in a cgroup path.
var containerID = regexp.MustCompile(`[0-9a-f]{64}`)

// instanceIdentity returns the platform's own identity of this instance
// where it exposes one, else an id drawn now.
func instanceIdentity() (id, source string) {
	for _, env := range []string{"WEBSITE_INSTANCE_ID", "GALE_INSTANCE_ID"} {
		if v := os.Getenv(env); v != "" {
			return v, "env:" + env
		}
	}
	if id := cgroupIdentity("/proc/self/cgroup"); id != "" {
		return id, "cgroup"
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "pid" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]), "random"
}

// cgroupIdentity returns the instance id in a cgroup file: AWS Lambda's
// "sandbox-root-XXXX" or a container id, as the thesis read them. A cgroup
// file that names no instance (a plain host or one shared by all
// processes, like "0::/") yields "".
func cgroupIdentity(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "sandbox-root-"); i >= 0 {
			rest := line[i:]
			if j := strings.IndexAny(rest, "/ "); j >= 0 {
				rest = rest[:j]
			}
			return rest
		}
		if m := containerID.FindString(line); m != "" {
			return m
		}
	}
	return ""
}

// uptime returns the host's uptime in seconds, or 0.
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
