package azure

import (
	"context"
	"encoding/json"
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

	"github.com/galeproject/gale/backends"
)

// echoHandler upper-cases payloads, fails on "fail", panics on "panic" and
// reports not-started on "refuse".
func echoHandler(_ context.Context, p []byte) ([]byte, error) {
	switch string(p) {
	case "fail":
		return nil, errors.New("the task failed")
	case "panic":
		panic("boom")
	case "refuse":
		return nil, fmt.Errorf("no room: %w", backends.ErrNotStarted)
	}
	return []byte(strings.ToUpper(string(p))), nil
}

// startWorker serves h as a custom handler on loopback and returns its
// address; the worker stops with the test.
func startWorker(t *testing.T, h backends.Handler, instance string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, h, ln, instance) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	})
	return "http://" + ln.Addr().String()
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

// The worker answers a forwarded request directly, as it does behind a
// host with enableForwardingHttpRequest.
func TestInvokeThroughForwardedRequests(t *testing.T) {
	addr := startWorker(t, echoHandler, "inst-1")
	b := newBackend(t, Config{URL: addr, RoutePrefix: "/"})
	res, err := b.Invoke(t.Context(), backends.Task{ID: "t1", Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != "HELLO" {
		t.Errorf("payload %q, want HELLO", res.Payload)
	}
	inv := res.Invocation
	if inv.Instance != "inst-1" || !inv.Cold {
		t.Errorf("first invocation: instance %q cold %t, want inst-1 cold", inv.Instance, inv.Cold)
	}
	if inv.Start.Before(inv.Sent) || inv.End.Before(inv.Start) || inv.Returned.Before(inv.End) {
		t.Errorf("times out of order: %+v", inv)
	}
	res, err = b.Invoke(t.Context(), backends.Task{ID: "t2", Payload: []byte("again")})
	if err != nil || res.Invocation.Cold || string(res.Payload) != "AGAIN" {
		t.Errorf("second invocation: %q cold %t err %v, want AGAIN warm", res.Payload, res.Invocation.Cold, err)
	}
}

func TestWorkerFailuresAreFunctionErrors(t *testing.T) {
	addr := startWorker(t, echoHandler, "")
	b := newBackend(t, Config{URL: addr, RoutePrefix: "/"})
	for _, tc := range []struct{ payload, typ, msg string }{
		{"fail", "error", "the task failed"},
		{"panic", "panic", "boom"},
	} {
		_, err := b.Invoke(t.Context(), backends.Task{ID: tc.payload, Payload: []byte(tc.payload)})
		var fe *backends.FunctionError
		if !errors.As(err, &fe) || fe.Type != tc.typ || !strings.Contains(fe.Message, tc.msg) || errors.Is(err, backends.ErrNotStarted) {
			t.Errorf("%s: got %v, want a may-have-run FunctionError of type %s", tc.payload, err, tc.typ)
		}
	}
	_, err := b.Invoke(t.Context(), backends.Task{ID: "r", Payload: []byte("refuse")})
	if !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("a handler's not-started error came back as %v", err)
	}
}

func TestWorkerAnswersThePayloadMode(t *testing.T) {
	addr := startWorker(t, echoHandler, "inst-p")
	inner, _ := json.Marshal(Request{V: WireVersion, ID: "t", Payload: []byte("payload mode")})
	for _, body := range []json.RawMessage{mustJSON(string(inner)), inner} { // Body as a string, and parsed
		ir := map[string]any{
			"Data": map[string]any{"req": map[string]any{"Url": "http://localhost:7071/api/gale", "Method": "POST",
				"Query": "{}", "Headers": map[string][]string{"Content-Type": {"application/json"}}, "Params": map[string]string{}, "Body": body}},
			"Metadata": map[string]any{"sys": map[string]any{"MethodName": "gale"}},
		}
		req, _ := json.Marshal(ir)
		resp, err := http.Post(addr+"/gale", "application/json", strings.NewReader(string(req)))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			Outputs     map[string]HTTPResponse
			Logs        []string
			ReturnValue HTTPResponse
		}
		if err := json.Unmarshal(data, &out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("HTTP %d %s: %v", resp.StatusCode, data, err)
		}
		res := out.Outputs["res"]
		if res.StatusCode != "200" || res.Status != "200" || res.Headers == nil || out.ReturnValue.Body != res.Body || len(out.Logs) == 0 {
			t.Errorf("payload-mode response lacks members the host requires: %s", data)
		}
		var r Response
		if err := json.Unmarshal([]byte(res.Body), &r); err != nil || string(r.Payload) != "PAYLOAD MODE" || r.Instance != "inst-p" {
			t.Errorf("res.body %q does not carry the result: %v", res.Body, err)
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// fakeApp answers each request with the next status of a script, then
// forwards to the worker at addr.
func fakeApp(t *testing.T, key string, script []int, worker string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key != "" && r.Header.Get(KeyHeader) != key && r.URL.Query().Get(KeyQuery) != key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		i := int(n.Add(1)) - 1
		mu.Lock()
		defer mu.Unlock()
		if i < len(script) {
			if script[i] == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			w.WriteHeader(script[i])
			io.WriteString(w, "scripted")
			return
		}
		if r.URL.Path != "/api/gale" {
			http.NotFound(w, r)
			return
		}
		resp, err := http.Post(worker, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestThrottlingIsRetriedThenNotStarted(t *testing.T) {
	worker := startWorker(t, echoHandler, "")
	app, n := fakeApp(t, "", []int{429, 503, 429}, worker)
	b := newBackend(t, Config{URL: app.URL, MaxAttempts: 5, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	res, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("x")})
	if err != nil || string(res.Payload) != "X" {
		t.Fatalf("after three throttled answers: %q %v", res.Payload, err)
	}
	if s := b.Stats(); s.Throttled != 3 || s.Requests != 4 || n.Load() != 4 {
		t.Errorf("stats %+v (app saw %d), want 3 throttled of 4 requests", s, n.Load())
	}

	app2, _ := fakeApp(t, "", []int{429, 429, 429, 429}, worker)
	b2 := newBackend(t, Config{URL: app2.URL, MaxAttempts: 3, RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond})
	_, err = b2.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("x")})
	if !errors.Is(err, ErrThrottled) || !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("always throttled: %v, want ErrThrottled and ErrNotStarted", err)
	}
}

func TestKeysAndStatusMapping(t *testing.T) {
	worker := startWorker(t, echoHandler, "")
	app, _ := fakeApp(t, "s3cret", nil, worker)
	for _, inQuery := range []bool{false, true} {
		b := newBackend(t, Config{URL: app.URL, Key: "s3cret", KeyInQuery: inQuery})
		if res, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")}); err != nil || string(res.Payload) != "K" {
			t.Errorf("key in query %t: %q %v", inQuery, res.Payload, err)
		}
	}
	for key, want := range map[string]string{"": "requires a key and none was sent", "wrong": "refused the key"} {
		b := newBackend(t, Config{URL: app.URL, Key: key})
		_, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")})
		if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "set key in the backends.azure section") {
			t.Errorf("key %q: %v", key, err)
		}
	}
	b := newBackend(t, Config{URL: app.URL, Key: "s3cret", Function: "nosuch"})
	_, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")})
	if !errors.Is(err, ErrNotDeployed) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "gale deploy --backend azure") {
		t.Errorf("missing function: %v", err)
	}

	for code, typ := range map[int]string{500: "crash", 502: "crash", 504: "timeout"} {
		app, _ := fakeApp(t, "", []int{code}, worker)
		b := newBackend(t, Config{URL: app.URL})
		_, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")})
		var fe *backends.FunctionError
		if !errors.As(err, &fe) || fe.Type != typ || errors.Is(err, backends.ErrNotStarted) {
			t.Errorf("HTTP %d: %v, want a may-have-run FunctionError of type %s", code, err, typ)
		}
	}
}

func TestUnreachableAppDidNotStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := newBackend(t, Config{URL: "http://" + addr})
	_, err = b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")})
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "check app or url") {
		t.Errorf("refused connection: %v", err)
	}
}

func TestNotAGaleWorker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Hello from go worker") }))
	defer srv.Close()
	b := newBackend(t, Config{URL: srv.URL})
	_, err := b.Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("k")})
	if err == nil || errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "did not answer as a Gale worker") {
		t.Errorf("foreign function: %v", err)
	}
}

func TestConcurrentInvocationsShareTheInstance(t *testing.T) {
	var running, peak atomic.Int64
	release := make(chan struct{})
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		if n == 4 {
			close(release)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return p, nil
	}
	addr := startWorker(t, h, "one")
	b := newBackend(t, Config{URL: addr, RoutePrefix: "/", Concurrency: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			res, err := b.Invoke(t.Context(), backends.Task{ID: fmt.Sprint(i), Payload: []byte(fmt.Sprint(i))})
			if err == nil && string(res.Payload) != fmt.Sprint(i) {
				err = fmt.Errorf("task %d got %q", i, res.Payload)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if peak.Load() != 4 {
		t.Errorf("peak concurrency %d, want 4 tasks at once on one instance", peak.Load())
	}
}

func TestCloseAndValidate(t *testing.T) {
	b, err := New(context.Background(), Config{App: "my-app"})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Endpoint(); got != "https://my-app.azurewebsites.net/api/gale" {
		t.Errorf("endpoint %s", got)
	}
	tr := b.Traits()
	if tr.MemoryMiB != 1536 || tr.VCPUs != 1 || tr.MaxConcurrency != 200 || tr.PricePerGBSecond != 0.000016 {
		t.Errorf("traits %+v", tr)
	}
	b.Close()
	b.Close()
	if _, err := b.Invoke(t.Context(), backends.Task{ID: "t"}); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Invoke after Close: %v", err)
	}
	err = Config{App: "-bad", Function: "9x", URL: "ftp://x", Concurrency: -1, KeyInQuery: true}.Validate()
	for _, want := range []string{"app \"-bad\"", "function \"9x\"", "url \"ftp://x\"", "concurrency -1", "key_in_query"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %s", err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "set app") {
		t.Errorf("empty config: %v", err)
	}
}
