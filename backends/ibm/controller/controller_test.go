package controller_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/ibm"
	"github.com/galeproject/gale/backends/ibm/controller"
)

// TestMain makes the test binary its own action container: the
// controller starts it with GALE_WORKER=ibm, and it serves testHandler.
func TestMain(m *testing.M) {
	if os.Getenv("GALE_WORKER") == "ibm" {
		if err := ibm.ServeAction(context.Background(), testHandler); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testHandler runs "op arg" payloads.
func testHandler(ctx context.Context, p []byte) ([]byte, error) {
	op, arg, _ := strings.Cut(string(p), " ")
	switch op {
	case "echo":
		return []byte(arg), nil
	case "log":
		fmt.Println("out:", arg)
		fmt.Fprintln(os.Stderr, "err:", arg)
		return []byte(os.Getenv("__OW_ACTIVATION_ID")), nil
	case "wait": // until the file arg exists
		for {
			if _, err := os.Stat(arg); err == nil {
				return []byte("waited"), nil
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	case "hang":
		<-make(chan struct{})
	case "fail":
		return nil, errors.New(arg)
	case "exit":
		os.Exit(3)
	}
	return nil, fmt.Errorf("unknown op %q", op)
}

const auth = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"

type stand struct {
	c   *controller.Controller
	url string
}

func start(t *testing.T, mod func(*controller.Config)) *stand {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Auth, cfg.Command, cfg.Actions = auth, os.Args[0], []string{"gale"}
	if testing.Verbose() {
		cfg.Output = os.Stderr
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := controller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(context.Background(), ln)
	}()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
	return &stand{c: c, url: "http://" + ln.Addr().String()}
}

func (s *stand) backend(t *testing.T, mod func(*ibm.Config)) *ibm.Backend {
	t.Helper()
	cfg := ibm.DefaultConfig()
	cfg.APIHost, cfg.Auth = s.url, auth
	cfg.PollInterval, cfg.ThrottleBackoff = 5*time.Millisecond, time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	b, err := ibm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// get fetches an API path with the credentials.
func (s *stand) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	u, k, _ := strings.Cut(auth, ":")
	req.SetBasicAuth(u, k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func invoke(t *testing.T, b *ibm.Backend, payload string) (backends.Result, error) {
	t.Helper()
	return b.Invoke(context.Background(), backends.Task{ID: "t-" + payload, Payload: []byte(payload)})
}

func TestInvokeThroughContainers(t *testing.T) {
	s := start(t, nil)
	b := s.backend(t, nil)
	var instances []string
	for i := range 3 {
		res, err := invoke(t, b, fmt.Sprintf("echo hello %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("hello %d", i); string(res.Payload) != want {
			t.Errorf("payload %q, want %q", res.Payload, want)
		}
		if res.Invocation.Cold != (i == 0) {
			t.Errorf("invocation %d: cold %v", i, res.Invocation.Cold)
		}
		instances = append(instances, res.Invocation.Instance)
	}
	// One warm container served them all, with the id the controller gave.
	if instances[0] == "" || instances[0] != instances[1] || instances[1] != instances[2] || len(instances[0]) != 12 {
		t.Errorf("instances %q", instances)
	}
	// Application errors come back as function errors through 502.
	_, err := invoke(t, b, "fail the input was bad")
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Type != "error" || fe.Message != "the input was bad" || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("failing task: %v", err)
	}
}

func TestActivationLogsAreCutAtTheSentinels(t *testing.T) {
	s := start(t, nil)
	b := s.backend(t, func(c *ibm.Config) { c.Blocking = false })
	for i := range 2 {
		id, err := b.Start(context.Background(), backends.Task{ID: "t", Payload: []byte(fmt.Sprintf("log line-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		res, err := b.Wait(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Payload) != id {
			t.Errorf("the worker saw __OW_ACTIVATION_ID=%q, want %q", res.Payload, id)
		}
		st, body := s.get(t, "/api/v1/namespaces/_/activations/"+id)
		var rec struct {
			ActivationID string   `json:"activationId"`
			Logs         []string `json:"logs"`
			Response     struct {
				Status string `json:"status"`
			} `json:"response"`
		}
		if st != 200 || json.Unmarshal(body, &rec) != nil {
			t.Fatalf("activation record: %d %s", st, body)
		}
		if len(rec.Logs) != 2 || !strings.HasSuffix(rec.Logs[0], fmt.Sprintf("out: line-%d", i)) && !strings.HasSuffix(rec.Logs[1], fmt.Sprintf("out: line-%d", i)) {
			t.Errorf("activation %d logs %q: want exactly its own two lines", i, rec.Logs)
		}
		for _, l := range rec.Logs {
			if strings.Contains(l, ibm.LogSentinel) || strings.Contains(l, "missing") {
				t.Errorf("log line %q", l)
			}
		}
		if rec.Response.Status != "success" {
			t.Errorf("status %q", rec.Response.Status)
		}
	}
}

func TestBlockingWaitEndsWith202AndPolling(t *testing.T) {
	s := start(t, func(c *controller.Config) { c.BlockingWait = time.Millisecond })
	b := s.backend(t, nil)
	flag := filepath.Join(t.TempDir(), "go")
	done := make(chan error, 1)
	go func() {
		res, err := invoke(t, b, "wait "+flag)
		if err == nil && string(res.Payload) != "waited" {
			err = fmt.Errorf("payload %q", res.Payload)
		}
		done <- err
	}()
	// The activation cannot end before the flag exists, so the blocking
	// wait of 1 ms ends first: the answer is 202 and the backend polls.
	time.Sleep(50 * time.Millisecond)
	os.WriteFile(flag, nil, 0o644)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPoolSerializesAndThrottles(t *testing.T) {
	s := start(t, func(c *controller.Config) { c.MaxContainers, c.ConcurrentLimit = 2, 3 })
	b := s.backend(t, func(c *ibm.Config) { c.MaxThrottleRetries = -1 })
	flag := filepath.Join(t.TempDir(), "go")
	var wg sync.WaitGroup
	results := make(chan backends.Result, 3)
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := invoke(t, b, "wait "+flag)
			if err != nil {
				errs <- err
				return
			}
			results <- res
		}()
	}
	// Three activations in flight (two running, one queued): a fourth is
	// over the namespace's limit.
	for s.c.InFlight() < 3 && len(errs) == 0 {
		time.Sleep(2 * time.Millisecond)
	}
	_, err := invoke(t, b, "echo x")
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "Too many concurrent requests") {
		t.Errorf("fourth invocation: %v", err)
	}
	os.WriteFile(flag, nil, 0o644)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	byInstance := map[string][]backends.Result{}
	for r := range results {
		byInstance[r.Invocation.Instance] = append(byInstance[r.Invocation.Instance], r)
	}
	if len(byInstance) != 2 {
		t.Errorf("%d containers ran the three tasks, want 2 (the pool's size)", len(byInstance))
	}
	// A container ran its activations one after the other, and only its
	// first was cold.
	for inst, rs := range byInstance {
		cold := 0
		for i, r := range rs {
			if r.Invocation.Cold {
				cold++
			}
			for _, o := range rs[i+1:] {
				if r.Invocation.Start.Before(o.Invocation.End) && o.Invocation.Start.Before(r.Invocation.End) {
					t.Errorf("container %s ran two activations at once", inst)
				}
			}
		}
		if cold != 1 {
			t.Errorf("container %s: %d cold activations, want 1", inst, cold)
		}
	}
}

func TestDeveloperErrors(t *testing.T) {
	s := start(t, func(c *controller.Config) { c.Timeout = 300 * time.Millisecond })
	b := s.backend(t, nil)
	_, err := invoke(t, b, "hang")
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Type != "timeout" || !strings.Contains(fe.Message, "300 milliseconds") {
		t.Errorf("hanging task: %v", err)
	}
	_, err = invoke(t, b, "exit")
	if !errors.As(err, &fe) || fe.Type != "crash" || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("exiting task: %v", err)
	}
	// A new container replaces the dead ones.
	if res, err := invoke(t, b, "echo again"); err != nil || string(res.Payload) != "again" || !res.Invocation.Cold {
		t.Errorf("after the crash: %q %v cold=%v", res.Payload, err, res.Invocation.Cold)
	}
}

func TestAuthNamespaceAndMissingAction(t *testing.T) {
	s := start(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*ibm.Config)
		is   error
	}{
		{"bad key", func(c *ibm.Config) { c.Auth = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong" }, ibm.ErrCredentials},
		{"other namespace", func(c *ibm.Config) { c.Namespace = "someone-else" }, ibm.ErrCredentials},
		{"missing action", func(c *ibm.Config) { c.Action = "nope" }, ibm.ErrNotDeployed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := invoke(t, s.backend(t, tc.mod), "echo x")
			if !errors.Is(err, tc.is) || !errors.Is(err, backends.ErrNotStarted) {
				t.Errorf("%v, want %v", err, tc.is)
			}
		})
	}
}

// TestPutActionRunsItsExec creates an action from a zip whose exec is
// this test binary, as gale deploy does, and invokes it.
func TestPutActionRunsItsExec(t *testing.T) {
	s := start(t, nil)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "exec", Method: zip.Store})
	w.Write(exe)
	zw.Close()
	doc, _ := json.Marshal(map[string]any{"namespace": "_", "name": "deployed",
		"exec":   map[string]any{"kind": "go:1.22", "binary": true, "code": base64.StdEncoding.EncodeToString(zb.Bytes())},
		"limits": map[string]any{"timeout": 30000, "memory": 512}})
	req, _ := http.NewRequest(http.MethodPut, s.url+"/api/v1/namespaces/_/actions/deployed?overwrite=true", bytes.NewReader(doc))
	u, k, _ := strings.Cut(auth, ":")
	req.SetBasicAuth(u, k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	b := s.backend(t, func(c *ibm.Config) { c.Action = "deployed" })
	if res, err := invoke(t, b, "echo deployed"); err != nil || string(res.Payload) != "deployed" {
		t.Errorf("%q %v", res.Payload, err)
	}
}
