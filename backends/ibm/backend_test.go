package ibm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
)

// fakeWhisk answers the REST API with scripted responses and records
// every request.
type fakeWhisk struct {
	mu       sync.Mutex
	requests []string // "METHOD path?query"
	bodies   [][]byte
	auth     []string
	script   func(n int, r *http.Request, body []byte) (int, http.Header, string)
}

func newFakeWhisk(t *testing.T, script func(n int, r *http.Request, body []byte) (int, http.Header, string)) (*fakeWhisk, string) {
	f := &fakeWhisk{script: script}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u, k, _ := r.BasicAuth()
		f.mu.Lock()
		n := len(f.requests)
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		f.bodies = append(f.bodies, body)
		f.auth = append(f.auth, u+":"+k)
		f.mu.Unlock()
		st, hdr, out := f.script(n, r, body)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(st)
		io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeWhisk) reqs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// galeResult is what a worker answers for payload.
func galeResult(payload string) string {
	env := resultEnvelope{Gale: 1, Start: time.Unix(100, 0).UTC(), End: time.Unix(101, 0).UTC(), Instance: "c1", Cold: true, ActivationID: "act1"}
	env.setPayload([]byte(payload))
	b, _ := json.Marshal(&env)
	return string(b)
}

func newTestBackend(t *testing.T, url string, mod func(*Config)) *Backend {
	t.Helper()
	cfg := DefaultConfig()
	cfg.APIHost, cfg.Auth, cfg.Namespace, cfg.Action = url, "user:secret", "ns1", "pkg/act"
	cfg.PollInterval, cfg.ThrottleBackoff = time.Millisecond, time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBlockingInvoke(t *testing.T) {
	f, url := newFakeWhisk(t, func(n int, r *http.Request, body []byte) (int, http.Header, string) {
		var p taskParams
		json.Unmarshal(body, &p)
		return 200, http.Header{"X-Openwhisk-Activation-Id": {"act1"}}, galeResult("re:" + string(p.payload()))
	})
	b := newTestBackend(t, url, nil)
	res, err := b.Invoke(context.Background(), backends.Task{ID: "t1", Payload: []byte(`{"kind":"k"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != `re:{"kind":"k"}` || res.Invocation.Instance != "c1" || !res.Invocation.Cold || !res.Invocation.Start.Equal(time.Unix(100, 0)) {
		t.Errorf("result %q %+v", res.Payload, res.Invocation)
	}
	if res.Invocation.Sent.IsZero() || res.Invocation.Returned.Before(res.Invocation.Sent) {
		t.Errorf("sent %v returned %v", res.Invocation.Sent, res.Invocation.Returned)
	}
	if got := f.reqs(); len(got) != 1 || got[0] != "POST /api/v1/namespaces/ns1/actions/pkg/act?blocking=true&result=true" {
		t.Errorf("requests %q", got)
	}
	if f.auth[0] != "user:secret" {
		t.Errorf("basic auth %q", f.auth[0])
	}
	var p map[string]any
	if err := json.Unmarshal(f.bodies[0], &p); err != nil || p["gale_task"] != "t1" || p["payload"] != `{"kind":"k"}` {
		t.Errorf("parameters %s", f.bodies[0])
	}
}

func TestBlockingTimeoutPollsTheActivation(t *testing.T) {
	f, url := newFakeWhisk(t, func(n int, r *http.Request, body []byte) (int, http.Header, string) {
		switch {
		case n == 0:
			return 202, nil, `{"activationId":"a202"}`
		case n < 3:
			return 404, nil, `{"error":"The requested resource does not exist.","code":"x"}`
		}
		return 200, nil, `{"activationId":"a202","response":{"status":"success","statusCode":0,"success":true,"result":` + galeResult("done") + `}}`
	})
	b := newTestBackend(t, url, nil)
	res, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("p")})
	if err != nil || string(res.Payload) != "done" {
		t.Fatalf("%q %v", res.Payload, err)
	}
	got := f.reqs()
	if len(got) != 4 || got[3] != "GET /api/v1/namespaces/ns1/activations/a202" {
		t.Errorf("requests %q", got)
	}
}

func TestNonBlockingInvoke(t *testing.T) {
	f, url := newFakeWhisk(t, func(n int, r *http.Request, body []byte) (int, http.Header, string) {
		if n == 0 {
			return 202, nil, `{"activationId":"nb1"}`
		}
		return 200, nil, `{"activationId":"nb1","response":{"status":"application error","statusCode":1,"success":false,"result":{"error":{"type":"error","message":"bad input","start":"2020-01-01T00:00:00Z","end":"2020-01-01T00:00:00Z"}}}}`
	})
	b := newTestBackend(t, url, func(c *Config) { c.Blocking = false })
	id, err := b.Start(context.Background(), backends.Task{ID: "t", Payload: []byte("p")})
	if err != nil || id != "nb1" {
		t.Fatalf("Start: %q %v", id, err)
	}
	_, err = b.Wait(context.Background(), id)
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Type != "error" || fe.Message != "bad input" || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("Wait: %v", err)
	}
	if got := f.reqs(); got[0] != "POST /api/v1/namespaces/ns1/actions/pkg/act?blocking=false" {
		t.Errorf("requests %q", got)
	}
	// Invoke with Blocking false goes the same way.
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "t2"}); err == nil {
		t.Error("Invoke: no error")
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		is         []error
		notStarted bool
		fnType     string
		mention    string
	}{
		{"application error", 502, `{"error":{"type":"panic","message":"boom"}}`, nil, false, "panic", "boom"},
		{"not started in worker", 502, `{"error":{"type":"error","message":"unknown kind","not_started":true}}`, nil, true, "error", "unknown kind"},
		{"time limit", 502, `{"error":"The action exceeded its time limits of 1000 milliseconds."}`, nil, false, "timeout", "ibm.timeout"},
		{"memory", 502, `{"error":"The action exhausted its memory and was aborted."}`, nil, false, "oom", "ibm.memory_mib"},
		{"crash", 502, `{"error":"The action did not produce a valid response and exited unexpectedly."}`, nil, false, "crash", "exited"},
		{"bad key", 401, `{"error":"The supplied authentication is invalid","code":"c1"}`, []error{ErrCredentials}, true, "", "ibm.auth"},
		{"other namespace", 403, `{"error":"The supplied authentication is not authorized to access 'ns1'.","code":"c2"}`, []error{ErrCredentials}, true, "", "ibm.namespace"},
		{"not deployed", 404, `{"error":"The requested resource does not exist.","code":"c3"}`, []error{ErrNotDeployed}, true, "", "gale deploy --backend ibm"},
		{"too large", 413, `{"error":"too big"}`, []error{ErrPayloadTooLarge}, true, "", "object storage"},
		{"throttled", 429, `{"error":"Too many concurrent requests in flight (count: 3, allowed: 2).","code":"c4"}`, []error{ErrThrottled}, true, "", "Too many concurrent"},
		{"unavailable", 503, `{"error":"System is overloaded, try again later."}`, nil, true, "", "overloaded"},
		{"internal", 500, `{"error":"boom"}`, nil, false, "", "500"},
		{"not gale", 200, `{"hello":"world"}`, nil, false, "", "gale deploy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newFakeWhisk(t, func(int, *http.Request, []byte) (int, http.Header, string) { return tc.status, nil, tc.body })
			b := newTestBackend(t, url, func(c *Config) { c.MaxThrottleRetries = 2 })
			_, err := b.Invoke(context.Background(), backends.Task{ID: "t9", Payload: []byte("x")})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("%v is not %v", err, want)
				}
			}
			if got := errors.Is(err, backends.ErrNotStarted); got != tc.notStarted {
				t.Errorf("ErrNotStarted = %v, want %v: %v", got, tc.notStarted, err)
			}
			var fe *backends.FunctionError
			if tc.fnType != "" && (!errors.As(err, &fe) || fe.Type != tc.fnType) {
				t.Errorf("want a FunctionError of type %s: %v", tc.fnType, err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("%q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestThrottlingBacksOffThenSucceeds(t *testing.T) {
	f, url := newFakeWhisk(t, func(n int, r *http.Request, body []byte) (int, http.Header, string) {
		if n < 2 {
			return 429, nil, `{"error":"Too many requests in the last minute (count: 9, allowed: 8).","code":"x"}`
		}
		return 200, nil, galeResult("ok")
	})
	b := newTestBackend(t, url, nil)
	res, err := b.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte("p")})
	if err != nil || string(res.Payload) != "ok" {
		t.Fatalf("%q %v", res.Payload, err)
	}
	if len(f.reqs()) != 3 || b.Throttled() != 2 {
		t.Errorf("%d requests, %d throttled; want 3 and 2", len(f.reqs()), b.Throttled())
	}
}

func TestUnreachableIsNotStarted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := newTestBackend(t, "http://"+addr, nil)
	_, err = b.Invoke(context.Background(), backends.Task{ID: "t"})
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "ibm.api_host") {
		t.Errorf("%v", err)
	}
	b.Close()
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "t"}); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Namespace: "a/b", Action: "x/y/z", MemoryMiB: 64, Timeout: time.Hour, Auth: "nokey"}.Validate()
	for _, want := range []string{"ibm.api_host is required", "user:key", "ibm.namespace", "ibm.action", "ibm.memory_mib", "ibm.timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %q", err, want)
		}
	}
	cfg := DefaultConfig()
	cfg.APIHost, cfg.Auth = "us-south.functions.cloud.ibm.com", "a:b"
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	tr := TraitsFor(cfg)
	if tr.Name != "ibm" || tr.MemoryMiB != 256 || tr.VCPUs != 0.125 || tr.PricePerGBSecond != PricePerGBSecond || tr.MaxConcurrency != 100 {
		t.Errorf("traits %+v", tr)
	}
}
