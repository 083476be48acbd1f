package gcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/galeproject/gale/backends"
)

// echoHandler is a worker: it upper-cases the payload, fails on "fail",
// panics on "panic" and refuses "refuse" as not started.
func echoHandler(_ context.Context, p []byte) ([]byte, error) {
	switch string(p) {
	case "fail":
		return nil, errors.New("the task failed")
	case "typed":
		return nil, &backends.FunctionError{Backend: "gcp", Type: "oom", Message: "out of memory"}
	case "panic":
		panic("boom")
	case "refuse":
		return nil, fmt.Errorf("unknown kind: %w", backends.ErrNotStarted)
	}
	return bytes.ToUpper(p), nil
}

func testConfig(urls ...string) Config {
	cfg := DefaultConfig()
	cfg.Endpoints = urls
	cfg.RetryBase, cfg.RetryMax = time.Millisecond, 5*time.Millisecond
	return cfg
}

func newBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestInvokeThroughFunction(t *testing.T) {
	f := NewFunction(echoHandler)
	srv := httptest.NewServer(f)
	defer srv.Close()
	b := newBackend(t, testConfig(srv.URL))
	ctx := context.Background()

	before := time.Now()
	res, err := b.Invoke(ctx, backends.Task{ID: "t1", Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != "HELLO" {
		t.Errorf("payload = %q, want HELLO", res.Payload)
	}
	inv := res.Invocation
	if !inv.Cold || inv.Instance != f.Instance() || !strings.HasPrefix(inv.Instance, "gcp-") {
		t.Errorf("first invocation = %+v, want cold on instance %s", inv, f.Instance())
	}
	if inv.Start.Before(before.Add(-time.Second)) || inv.End.Before(inv.Start) || inv.Returned.Before(inv.Sent) {
		t.Errorf("times out of order: %+v", inv)
	}
	res, err = b.Invoke(ctx, backends.Task{ID: "t2", Payload: []byte("again")})
	if err != nil || res.Invocation.Cold || res.Invocation.Instance != f.Instance() {
		t.Errorf("second invocation = %+v, %v; want warm on the same instance", res.Invocation, err)
	}
	// An empty payload and an empty result are fine.
	if res, err := b.Invoke(ctx, backends.Task{ID: "t3"}); err != nil || len(res.Payload) != 0 {
		t.Errorf("empty payload: %q, %v", res.Payload, err)
	}
}

func TestFunctionErrorsAreMapped(t *testing.T) {
	srv := httptest.NewServer(NewFunction(echoHandler))
	defer srv.Close()
	b := newBackend(t, testConfig(srv.URL))
	for _, c := range []struct {
		payload, typ, msg string
	}{
		{"fail", "error", "the task failed"},
		{"typed", "oom", "out of memory"},
		{"panic", "panic", "boom"},
	} {
		_, err := b.Invoke(context.Background(), backends.Task{ID: c.payload, Payload: []byte(c.payload)})
		var fe *backends.FunctionError
		if !errors.As(err, &fe) || fe.Type != c.typ || !strings.Contains(fe.Message, c.msg) || fe.Backend != "gcp" {
			t.Errorf("%s: err = %v, want a gcp FunctionError %s containing %q", c.payload, err, c.typ, c.msg)
		}
		if errors.Is(err, backends.ErrNotStarted) {
			t.Errorf("%s: a function that ran reported not started", c.payload)
		}
	}
	_, err := b.Invoke(context.Background(), backends.Task{ID: "r", Payload: []byte("refuse")})
	if !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("a handler's ErrNotStarted: %v, want ErrNotStarted", err)
	}
	if s := b.Stats(); s.Throttled != 0 {
		t.Errorf("stats = %+v, want no throttling", s)
	}
}

// scripted serves a fixed sequence of responses, then 200 "ok".
type scripted struct {
	mu    sync.Mutex
	steps []func(http.ResponseWriter)
	calls int
	auth  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.calls++
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	var step func(http.ResponseWriter)
	if len(s.steps) > 0 {
		step, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	if step == nil {
		io.WriteString(w, "ok")
		return
	}
	step(w)
}

func respond(code int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func TestThrottledThenOK(t *testing.T) {
	s := &scripted{steps: []func(http.ResponseWriter){
		respond(429, "Rate exceeded."),
		respond(500, "The request was aborted because there was no available instance."),
		respond(503, "Service Unavailable: rejected"),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	b := newBackend(t, testConfig(srv.URL))
	res, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("x")})
	if err != nil || string(res.Payload) != "ok" {
		t.Fatalf("Invoke = %q, %v; want ok after three rejections", res.Payload, err)
	}
	if s.calls != 4 {
		t.Errorf("%d requests, want 4", s.calls)
	}
	if st := b.Stats(); st.Throttled != 3 || st.GaveUp != 0 || st.Invocations != 1 {
		t.Errorf("stats = %+v, want 3 throttled, 1 invocation", st)
	}
}

func TestThrottledTooOftenIsNotStarted(t *testing.T) {
	var steps []func(http.ResponseWriter)
	for range 10 {
		steps = append(steps, respond(429, "Rate exceeded."))
	}
	s := &scripted{steps: steps}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.MaxAttempts = 3
	b := newBackend(t, cfg)
	_, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("x")})
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "rejected 3 times") {
		t.Fatalf("err = %v, want ErrNotStarted after 3 rejections", err)
	}
	if s.calls != 3 || b.Stats().GaveUp != 1 {
		t.Errorf("%d requests, stats %+v; want 3 requests, one given up", s.calls, b.Stats())
	}
}

func TestPlatformResponses(t *testing.T) {
	for _, c := range []struct {
		name       string
		step       func(http.ResponseWriter)
		notStarted bool
		typ        string // FunctionError type, or "" for a plain error
		text       string
	}{
		{"timeout", respond(504, "upstream request timeout"), false, "timeout", "timeout"},
		{"oom", respond(500, "Memory limit of 256 MiB exceeded with 260 MiB used."), false, "oom", "gcp.memory_mib"},
		{"unauthorized", respond(403, "Forbidden"), true, "", "roles/run.invoker"},
		{"not deployed", respond(404, "Page not found"), true, "", "gale deploy --backend gcp"},
		{"framework crash", func(w http.ResponseWriter) {
			w.Header().Set("X-Google-Status", "crash")
			w.WriteHeader(500)
			io.WriteString(w, "A panic occurred during user function execution")
		}, false, "panic", "panic"},
		{"other 500", respond(500, "Internal Server Error"), false, "", "may have run"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(&scripted{steps: []func(http.ResponseWriter){c.step}})
			defer srv.Close()
			b := newBackend(t, testConfig(srv.URL))
			_, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("x")})
			if err == nil {
				t.Fatal("Invoke succeeded")
			}
			if errors.Is(err, backends.ErrNotStarted) != c.notStarted {
				t.Errorf("err = %v; not started = %v, want %v", err, !c.notStarted, c.notStarted)
			}
			var fe *backends.FunctionError
			if isFE := errors.As(err, &fe); isFE != (c.typ != "") || (isFE && fe.Type != c.typ) {
				t.Errorf("err = %#v, want function error type %q", err, c.typ)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("err = %v, want it to mention %q", err, c.text)
			}
		})
	}
}

func TestConnectionRefusedIsNotStarted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := newBackend(t, testConfig("http://"+addr))
	_, err = b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("x")})
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), addr) {
		t.Errorf("err = %v, want ErrNotStarted naming %s", err, addr)
	}
}

func TestPayloadLimit(t *testing.T) {
	b := newBackend(t, testConfig("http://127.0.0.1:1"))
	_, err := b.Invoke(context.Background(), backends.Task{ID: "big", Payload: make([]byte, MaxPayloadBytes+1)})
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "object storage") {
		t.Errorf("err = %v, want ErrNotStarted pointing to object storage", err)
	}
}

type staticTokens struct{ n atomic.Int32 }

func (s *staticTokens) Token() (*oauth2.Token, error) {
	s.n.Add(1)
	return &oauth2.Token{AccessToken: "id-token-1", TokenType: "Bearer"}, nil
}

func TestTokenSource(t *testing.T) {
	s := &scripted{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	// Loopback URLs get no token by default.
	b := newBackend(t, testConfig(srv.URL))
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	ts := &staticTokens{}
	cfg := testConfig(srv.URL)
	cfg.TokenSource = ts
	b2 := newBackend(t, cfg)
	if _, err := b2.Invoke(context.Background(), backends.Task{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if s.auth[0] != "" || s.auth[1] != "Bearer id-token-1" {
		t.Errorf("Authorization headers = %q, want none then the token", s.auth)
	}
}

func TestIDTokenWithoutCredentialsNamesTheFix(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
	cfg := DefaultConfig()
	cfg.URL = "https://europe-west1-my-project.cloudfunctions.net/gale"
	_, err := New(context.Background(), cfg)
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("New = %v, want ErrCredentials naming the fix", err)
	}
}

func TestEndpointsSpreadLoad(t *testing.T) {
	// Two workers, each blocking until both have a task: only a client
	// that spreads two concurrent invocations over both endpoints ends.
	var arrived sync.WaitGroup
	arrived.Add(2)
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		arrived.Done()
		arrived.Wait()
		return p, nil
	}
	f1, f2 := NewFunction(h), NewFunction(h)
	s1, s2 := httptest.NewServer(f1), httptest.NewServer(f2)
	defer s1.Close()
	defer s2.Close()
	b := newBackend(t, testConfig(s1.URL, s2.URL))
	var wg sync.WaitGroup
	instances := make([]string, 2)
	for i := range 2 {
		wg.Go(func() {
			res, err := b.Invoke(context.Background(), backends.Task{ID: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
			}
			instances[i] = res.Invocation.Instance
		})
	}
	wg.Wait()
	if instances[0] == instances[1] {
		t.Errorf("both invocations ran on %s", instances[0])
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Project: "X", Region: "europe west", Function: "Bad_Name", MemoryMiB: 64, Timeout: 2 * time.Hour, Auth: "key", Concurrency: -1}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"gcp.project", "gcp.region", "gcp.function", "gcp.memory_mib", "gcp.timeout", "gcp.auth", "gcp.concurrency"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not mention %s:\n%v", want, err)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "gcp.project, gcp.region, gcp.function") {
		t.Errorf("empty config: %v", err)
	}
	cfg := Config{Project: "my-project", Region: "europe-west1", Function: "gale"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.withDefaults().URL; got != "https://europe-west1-my-project.cloudfunctions.net/gale" {
		t.Errorf("derived URL = %s", got)
	}
}

func TestTraits(t *testing.T) {
	cfg := Config{URL: "https://x.example/f", MemoryMiB: 2048}
	tr := cfg.Traits()
	// 2 GiB = 1 vCPU: 2 GiB-s of memory and 1 vCPU-s per second, per GiB.
	want := 0.0000025 + 0.000024/2
	if tr.VCPUs != 1 || tr.MemoryMiB != 2048 || tr.Timeout != DefaultTimeout || tr.MaxConcurrency != DefaultConcurrency ||
		tr.PricePerRequest != 0.4e-6 || tr.PricePerGBSecond < want*0.999 || tr.PricePerGBSecond > want*1.001 || tr.MaxPayloadBytes != 32<<20 {
		t.Errorf("traits = %+v", tr)
	}
	if VCPUs(256) != 0.167 || VCPUs(300) != 0.333 || VCPUs(1<<20) != 8 {
		t.Error("VCPUs tiers")
	}
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	srv := httptest.NewServer(NewFunction(func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-release
		return p, nil
	}))
	defer srv.Close()
	b, err := New(context.Background(), testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Invoke(context.Background(), backends.Task{ID: "slow", Payload: []byte("x")})
		done <- err
	}()
	<-started
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while an invocation was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-closed
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "late"}); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Invoke after Close = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDrainingFunctionRefusesAsNotStarted(t *testing.T) {
	f := NewFunction(echoHandler)
	srv := httptest.NewServer(f)
	defer srv.Close()
	if err := f.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.URL)
	cfg.MaxAttempts = 2
	b := newBackend(t, cfg)
	_, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("x")})
	if !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("err = %v, want ErrNotStarted", err)
	}
}

// TestStaleKeepAliveConnectionIsResent drops the connection under the
// second request, as a server does with a keep-alive connection it closed
// while idle: the request is resent on a new connection and succeeds,
// rather than failing as "may have run".
func TestStaleKeepAliveConnectionIsResent(t *testing.T) {
	f := NewFunction(echoHandler)
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) == 2 {
			io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	b := newBackend(t, testConfig(srv.URL))
	for _, id := range []string{"a", "b"} {
		res, err := b.Invoke(context.Background(), backends.Task{ID: id, Payload: []byte("x" + id)})
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		if want := "X" + strings.ToUpper(id); string(res.Payload) != want {
			t.Errorf("task %s returned %q, want %q", id, res.Payload, want)
		}
	}
	if n := seen.Load(); n != 3 {
		t.Errorf("the server saw %d requests, want 3 (one resent)", n)
	}
}
