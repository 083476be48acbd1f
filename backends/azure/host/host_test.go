package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/host"
)

// TestMain makes the test binary a custom handler when a host starts it.
func TestMain(m *testing.M) {
	if os.Getenv(azure.PortEnv) != "" {
		if err := azure.ServeCustomHandler(context.Background(), testHandler); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testHandler: "crash" exits the process, "wait:URL" blocks on a GET of
// URL, anything else comes back upper-cased.
func testHandler(ctx context.Context, p []byte) ([]byte, error) {
	s := string(p)
	switch {
	case s == "crash":
		os.Exit(3)
	case strings.HasPrefix(s, "wait:"):
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimPrefix(s, "wait:"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return []byte("released"), nil
	}
	return bytes.ToUpper(p), nil
}

// writeApp lays out an app whose executable is this test binary.
func writeApp(t *testing.T, c azure.AppConfig, extra string) string {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c.Executable = "handler"
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if name == "host.json" && extra != "" {
			// Splice extra members (e.g. extensions) into host.json.
			data = bytes.Replace(data, []byte(`"version": "2.0",`), []byte(`"version": "2.0", `+extra+`,`), 1)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, "handler")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startHost(t *testing.T, cfg host.Config) *host.Host {
	t.Helper()
	var out syncBuffer
	cfg.Output = &out
	h, err := host.Start(t.Context(), cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("host output:\n%s", out.String())
		}
	})
	return h
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func backend(t *testing.T, cfg azure.Config) *azure.Backend {
	t.Helper()
	b, err := azure.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestPayloadAndForwardingModesWithKeys(t *testing.T) {
	for _, forwarding := range []bool{false, true} {
		t.Run(fmt.Sprintf("forwarding=%t", forwarding), func(t *testing.T) {
			dir := writeApp(t, azure.AppConfig{Forwarding: forwarding}, "")
			h := startHost(t, host.Config{Dir: dir, FunctionKeys: map[string][]string{"gale": {"fkey"}}, HostKeys: []string{"hkey"}})
			for _, c := range []azure.Config{{Key: "fkey"}, {Key: "hkey", KeyInQuery: true}} {
				c.URL = h.URL()
				res, err := backend(t, c).Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("azure")})
				if err != nil || string(res.Payload) != "AZURE" {
					t.Fatalf("key %s: %q %v", c.Key, res.Payload, err)
				}
				if !strings.HasPrefix(res.Invocation.Instance, "") || res.Invocation.Instance == "" || res.Invocation.Start.IsZero() {
					t.Errorf("no instance or start reported: %+v", res.Invocation)
				}
			}
			for _, key := range []string{"", "wrong"} {
				_, err := backend(t, azure.Config{URL: h.URL(), Key: key}).Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("x")})
				if !errors.Is(err, azure.ErrUnauthorized) || !errors.Is(err, backends.ErrNotStarted) {
					t.Errorf("key %q: %v, want ErrUnauthorized", key, err)
				}
			}
			_, err := backend(t, azure.Config{URL: h.URL(), Key: "hkey", Function: "other"}).Invoke(t.Context(), backends.Task{ID: "t", Payload: []byte("x")})
			if !errors.Is(err, azure.ErrNotDeployed) {
				t.Errorf("undeployed function: %v", err)
			}
		})
	}
}

// gate releases the requests it holds once n have arrived.
type gate struct {
	n       int
	arrived atomic.Int64
	open    chan struct{}
	once    sync.Once
}

func newGate(t *testing.T, n int) (*gate, string) {
	g := &gate{n: n, open: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(g.arrived.Add(1)) >= g.n {
			g.release()
		}
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { g.release(); srv.Close() })
	return g, srv.URL
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func TestInstancesShareTheLoad(t *testing.T) {
	dir := writeApp(t, azure.AppConfig{}, "")
	h := startHost(t, host.Config{Dir: dir, Instances: 2, HostKeys: []string{"k"}})
	b := backend(t, azure.Config{URL: h.URL(), Key: "k"})
	_, url := newGate(t, 4)
	var mu sync.Mutex
	seen := map[string]int{}
	cold := 0
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			res, err := b.Invoke(t.Context(), backends.Task{ID: fmt.Sprint(i), Payload: []byte("wait:" + url)})
			if err != nil || string(res.Payload) != "released" {
				t.Errorf("task %d: %q %v", i, res.Payload, err)
				return
			}
			mu.Lock()
			seen[res.Invocation.Instance]++
			if res.Invocation.Cold {
				cold++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 2 || cold != 2 {
		t.Errorf("instances used %v with %d cold starts, want 2 instances with 2 tasks each and one cold start each", seen, cold)
	}
	for inst, n := range seen {
		if n != 2 {
			t.Errorf("instance %s ran %d tasks, want 2", inst, n)
		}
	}
}

func TestThrottledRequestsAreRetried(t *testing.T) {
	// One instance running one invocation at a time, with no queue: a
	// second concurrent invocation gets 429 until the first ends.
	dir := writeApp(t, azure.AppConfig{}, `"extensions": {"http": {"maxConcurrentRequests": 1, "maxOutstandingRequests": 1}}`)
	h := startHost(t, host.Config{Dir: dir, HostKeys: []string{"k"}})
	b := backend(t, azure.Config{URL: h.URL(), Key: "k", MaxAttempts: 1000, RetryBase: 1e6, RetryMax: 5e6})
	g, url := newGate(t, 2)
	first := make(chan error, 1)
	go func() {
		_, err := b.Invoke(t.Context(), backends.Task{ID: "first", Payload: []byte("wait:" + url)})
		first <- err
	}()
	for g.arrived.Load() < 1 {
		select {
		case err := <-first:
			t.Fatalf("first invocation ended early: %v", err)
		default:
		}
		pause()
	}
	second := make(chan error, 1)
	go func() {
		_, err := b.Invoke(t.Context(), backends.Task{ID: "second", Payload: []byte("next")})
		second <- err
	}()
	for b.Stats().Throttled < 1 {
		pause()
	}
	g.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second invocation after throttling: %v", err)
	}
	if s := b.Stats(); s.Throttled < 1 || s.Invocations != 2 {
		t.Errorf("stats %+v", s)
	}
	b2 := backend(t, azure.Config{URL: h.URL(), Key: "k", MaxAttempts: 2, RetryBase: 1e6, RetryMax: 2e6})
	g2, url2 := newGate(t, 100)
	go b.Invoke(t.Context(), backends.Task{ID: "hold", Payload: []byte("wait:" + url2)})
	for g2.arrived.Load() < 1 {
		pause()
	}
	_, err := b2.Invoke(t.Context(), backends.Task{ID: "over", Payload: []byte("x")})
	if !errors.Is(err, azure.ErrThrottled) || !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("always throttled: %v", err)
	}
	g2.release()
}

// pause yields between polls of a condition another goroutine makes true.
func pause() { time.Sleep(time.Millisecond) }

func TestCrashFailsOneTaskAndTheInstanceComesBack(t *testing.T) {
	dir := writeApp(t, azure.AppConfig{}, "")
	h := startHost(t, host.Config{Dir: dir, HostKeys: []string{"k"}})
	b := backend(t, azure.Config{URL: h.URL(), Key: "k", MaxAttempts: 1000, RetryBase: 1e6, RetryMax: 20e6})
	_, err := b.Invoke(t.Context(), backends.Task{ID: "c", Payload: []byte("crash")})
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Type != "crash" || errors.Is(err, backends.ErrNotStarted) {
		t.Fatalf("crash: %v, want a may-have-run FunctionError of type crash", err)
	}
	res, err := b.Invoke(t.Context(), backends.Task{ID: "after", Payload: []byte("back")})
	if err != nil || string(res.Payload) != "BACK" || !res.Invocation.Cold {
		t.Errorf("after the crash: %q cold %t %v, want BACK from a new (cold) instance", res.Payload, res.Invocation.Cold, err)
	}
}

func TestBadApps(t *testing.T) {
	dir := t.TempDir()
	if _, err := host.Start(t.Context(), host.Config{Dir: dir}, "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "host.json") {
		t.Errorf("no host.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"version": "2.0"}`), 0o644)
	if _, err := host.Start(t.Context(), host.Config{Dir: dir}, "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "defaultExecutablePath") {
		t.Errorf("no custom handler: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "/bin/false"}}}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "gale"), 0o755)
	os.WriteFile(filepath.Join(dir, "gale", "function.json"), []byte(`{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}]}`), 0o644)
	_, err := host.Start(t.Context(), host.Config{Dir: dir, Output: io.Discard}, "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "exited before answering") {
		t.Errorf("a handler that exits: %v", err)
	}
}

// BenchmarkWarmInvoke measures a warm invocation through the local host,
// client to worker and back, in each of the host's modes.
func BenchmarkWarmInvoke(b *testing.B) {
	for _, forwarding := range []bool{false, true} {
		b.Run(fmt.Sprintf("forwarding=%t", forwarding), func(b *testing.B) {
			dir := b.TempDir()
			exe, _ := os.Executable()
			files, err := azure.AppConfig{Forwarding: forwarding}.Files()
			if err != nil {
				b.Fatal(err)
			}
			for name, data := range files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, data, 0o644)
			}
			os.Symlink(exe, filepath.Join(dir, "handler"))
			h, err := host.Start(context.Background(), host.Config{Dir: dir, HostKeys: []string{"k"}, Output: io.Discard}, "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			be, err := azure.New(context.Background(), azure.Config{URL: h.URL(), Key: "k"})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			task := backends.Task{ID: "bench", Payload: []byte("payload")}
			if _, err := be.Invoke(context.Background(), task); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := be.Invoke(context.Background(), task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
