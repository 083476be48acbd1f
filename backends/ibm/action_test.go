package ibm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
)

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAction serves the action interface in-process on loopback.
func startAction(t *testing.T, cfg ActionConfig, h backends.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeHTTPAction(ctx, cfg, h, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("ServeHTTPAction returned %v, want context.Canceled", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func post(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func runBody(t *testing.T, id string, payload []byte, deadline time.Time) map[string]any {
	t.Helper()
	params, err := encodeParams("task-"+id, payload)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"value": json.RawMessage(params), "namespace": "guest", "action_name": "/guest/gale",
		"activation_id": id, "deadline": itoa(deadline.UnixMilli()), "api_key": "u:k",
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestActionInterface(t *testing.T) {
	var stdout, stderr lockedBuffer
	type seen struct {
		activation, namespace string
		deadline              time.Time
	}
	var mu sync.Mutex
	var calls []seen
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		dl, _ := ctx.Deadline()
		mu.Lock()
		calls = append(calls, seen{os.Getenv("__OW_ACTIVATION_ID"), os.Getenv("__OW_NAMESPACE"), dl})
		mu.Unlock()
		if string(p) == "fail" {
			return nil, errors.New("the task failed")
		}
		if string(p) == "panic" {
			panic("boom")
		}
		return append([]byte("echo:"), p...), nil
	}
	url := startAction(t, ActionConfig{Stdout: &stdout, Stderr: &stderr, Instance: "c0ffee", SetEnv: true}, h)
	deadline := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	// /run before /init is refused.
	if st, _ := post(t, url+"/run", runBody(t, "a0", []byte("x"), deadline)); st != http.StatusInternalServerError {
		t.Errorf("/run before /init: status %d, want 500", st)
	}
	if st, b := post(t, url+"/init", map[string]any{"value": map[string]any{"name": "gale", "main": "main", "code": "", "binary": false}}); st != http.StatusOK {
		t.Fatalf("/init: %d %s", st, b)
	}
	if st, b := post(t, url+"/init", map[string]any{"value": map[string]any{}}); st != http.StatusForbidden || !strings.Contains(string(b), "more than once") {
		t.Errorf("second /init: %d %s, want 403", st, b)
	}

	// Two activations: the first is the cold one; payloads survive byte
	// for byte, JSON text and arbitrary bytes alike.
	for i, payload := range [][]byte{[]byte(`{"kind":"x", "a" : [1, 2]}`), {0xff, 0x00, 'z'}} {
		id := []string{"a1", "a2"}[i]
		st, b := post(t, url+"/run", runBody(t, id, payload, deadline))
		if st != http.StatusOK {
			t.Fatalf("/run %s: %d %s", id, st, b)
		}
		env, err := decodeResult(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("echo:"), payload...); !bytes.Equal(env.payload(), want) {
			t.Errorf("%s: payload %q, want %q", id, env.payload(), want)
		}
		if env.Cold != (i == 0) || env.Instance != "c0ffee" || env.ActivationID != id {
			t.Errorf("%s: cold %v instance %q activation %q", id, env.Cold, env.Instance, env.ActivationID)
		}
		if env.Start.IsZero() || env.End.Before(env.Start) {
			t.Errorf("%s: start %v end %v", id, env.Start, env.End)
		}
	}
	// A failing task answers 502 with OpenWhisk's error shape.
	st, b := post(t, url+"/run", runBody(t, "a3", []byte("fail"), deadline))
	var eb errorBody
	if st != http.StatusBadGateway || json.Unmarshal(b, &eb) != nil {
		t.Fatalf("failing task: %d %s", st, b)
	}
	var fe resultEnvelope
	json.Unmarshal(eb.Error, &fe)
	if fe.Type != "error" || fe.Message != "the task failed" || fe.NotStarted {
		t.Errorf("failing task: %+v", fe)
	}
	st, b = post(t, url+"/run", runBody(t, "a4", []byte("panic"), deadline))
	if st != http.StatusBadGateway || !strings.Contains(string(b), `"type":"panic"`) || !strings.Contains(string(b), "boom") {
		t.Errorf("panicking task: %d %s", st, b)
	}
	// Parameters that are not a Gale task.
	st, b = post(t, url+"/run", map[string]any{"value": map[string]any{"name": "x"}, "activation_id": "a5"})
	if st != http.StatusBadGateway || !strings.Contains(string(b), `"not_started":true`) {
		t.Errorf("foreign parameters: %d %s", st, b)
	}

	mu.Lock()
	if len(calls) != 4 {
		t.Fatalf("handler ran %d times, want 4", len(calls))
	}
	for i, c := range calls {
		if want := []string{"a1", "a2", "a3", "a4"}[i]; c.activation != want || c.namespace != "guest" {
			t.Errorf("call %d saw __OW_ACTIVATION_ID=%q __OW_NAMESPACE=%q", i, c.activation, c.namespace)
		}
		if !c.deadline.Equal(deadline) {
			t.Errorf("call %d: ctx deadline %v, want %v", i, c.deadline, deadline)
		}
	}
	mu.Unlock()
	// One sentinel per stream for each of the five runs after /init.
	for name, s := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if n := strings.Count(s, LogSentinel+"\n"); n != 5 {
			t.Errorf("%s has %d sentinels, want 5:\n%s", name, n, s)
		}
	}
}

func TestActionInterfaceRunsOneAtATime(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "block" {
			close(entered)
			<-release
		}
		return p, nil
	}
	url := startAction(t, ActionConfig{Stdout: io.Discard, Stderr: io.Discard}, h)
	if st, _ := post(t, url+"/init", map[string]any{"value": map[string]any{}}); st != http.StatusOK {
		t.Fatal(st)
	}
	deadline := time.Now().Add(time.Hour)
	first := make(chan int, 1)
	go func() {
		st, _ := post(t, url+"/run", runBody(t, "b1", []byte("block"), deadline))
		first <- st
	}()
	<-entered
	if st, b := post(t, url+"/run", runBody(t, "b2", []byte("x"), deadline)); st != http.StatusConflict {
		t.Errorf("overlapping /run: %d %s, want 409", st, b)
	}
	close(release)
	if st := <-first; st != http.StatusOK {
		t.Errorf("first /run: %d", st)
	}
	if st, _ := post(t, url+"/run", runBody(t, "b3", []byte("x"), deadline)); st != http.StatusOK {
		t.Errorf("/run after the first ended: %d", st)
	}
}

func TestActionLoop(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "fail" {
			return nil, &backends.FunctionError{Backend: "x", Type: "oom", Message: "too big"}
		}
		return bytes.ToUpper(p), nil
	}
	done := make(chan error, 1)
	go func() {
		done <- ServeActionLoop(context.Background(), ActionConfig{Instance: "loop1"}, h, inR, outW, true)
		outW.Close()
	}()
	rd := bufio.NewReader(outR)
	readLine := func() string {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := readLine(); l != "{\"ok\":true}\n" {
		t.Fatalf("ack %q", l)
	}
	deadline := time.Now().Add(time.Hour)
	for i, p := range []string{"abc", "fail"} {
		b, _ := json.Marshal(runBody(t, "l"+itoa(int64(i)), []byte(p), deadline))
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		line := readLine()
		if strings.Count(line, "\n") != 1 {
			t.Fatalf("result is not one line: %q", line)
		}
		if i == 0 {
			env, err := decodeResult([]byte(line))
			if err != nil || string(env.payload()) != "ABC" || !env.Cold || env.Instance != "loop1" {
				t.Errorf("result %q (%v)", line, err)
			}
		} else if !strings.Contains(line, `"error":{`) || !strings.Contains(line, `"type":"oom"`) {
			t.Errorf("failure %q", line)
		}
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeActionLoop: %v", err)
	}
}

func TestCgroupContainerID(t *testing.T) {
	const id = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
	for _, tc := range []struct{ cgroup, want string }{
		{"12:memory:/docker/" + id + "\n11:cpu:/docker/" + id + "\n", id},
		{"0::/system.slice/docker-" + id + ".scope\n", id},
		{"0::/\n", ""},
		{"9:name=systemd:/\n4:memory:/user.slice\n", ""},
	} {
		if got := cgroupContainerID(tc.cgroup); got != tc.want {
			t.Errorf("cgroupContainerID(%q) = %q, want %q", tc.cgroup, got, tc.want)
		}
	}
}
