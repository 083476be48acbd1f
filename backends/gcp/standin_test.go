package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/galeproject/gale/backends"
)

// testWorkerEnv makes the test binary a worker: StartStandIn starts it
// with FUNCTION_TARGET and PORT, and TestMain serves echoHandler through
// ServeFunction (the Functions Framework), as a deployed worker would.
const testWorkerEnv = "GALE_GCP_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(testWorkerEnv) == "1" && os.Getenv("FUNCTION_TARGET") != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := ServeFunction(ctx, echoHandler)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startStandIn(t *testing.T, instances int) *StandIn {
	t.Helper()
	s, err := StartStandIn(context.Background(), StandInConfig{
		Path: os.Args[0], Env: []string{testWorkerEnv + "=1"}, Instances: instances, Output: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStandInThroughTheFunctionsFramework(t *testing.T) {
	s := startStandIn(t, 3)
	b := newBackend(t, testConfig(s.URLs()...))
	const n = 12
	type out struct {
		payload string
		inv     backends.Invocation
	}
	results := make([]out, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := b.Invoke(context.Background(), backends.Task{ID: fmt.Sprint(i), Payload: fmt.Appendf(nil, "task-%d", i)})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = out{string(res.Payload), res.Invocation}
		})
	}
	wg.Wait()
	colds := map[string]int{}
	for i, r := range results {
		if want := fmt.Sprintf("TASK-%d", i); r.payload != want {
			t.Errorf("task %d returned %q, want %q", i, r.payload, want)
		}
		if r.inv.Instance == "" || r.inv.Start.IsZero() || r.inv.End.Before(r.inv.Start) {
			t.Errorf("task %d: invocation %+v lacks the worker's facts", i, r.inv)
		}
		if _, ok := colds[r.inv.Instance]; !ok {
			colds[r.inv.Instance] = 0
		}
		if r.inv.Cold {
			colds[r.inv.Instance]++
		}
	}
	var ids []string
	for id, c := range colds {
		ids = append(ids, id)
		if c != 1 {
			t.Errorf("instance %s had %d cold invocations, want exactly 1", id, c)
		}
	}
	sort.Strings(ids)
	if len(ids) != 3 {
		t.Errorf("tasks ran on %d instances (%v), want all 3", len(ids), ids)
	}

	// A failure crosses the real framework as a function error.
	_, err := b.Invoke(context.Background(), backends.Task{ID: "f", Payload: []byte("fail")})
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Message != "the task failed" {
		t.Errorf("fail: %v", err)
	}
	_, err = b.Invoke(context.Background(), backends.Task{ID: "p", Payload: []byte("panic")})
	if !errors.As(err, &fe) || fe.Type != "panic" || !strings.Contains(fe.Message, "boom") {
		t.Errorf("panic: %v", err)
	}
}

func TestStandInStoppedIsNotStarted(t *testing.T) {
	s := startStandIn(t, 1)
	b := newBackend(t, testConfig(s.URLs()...))
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "a", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := b.Invoke(context.Background(), backends.Task{ID: "b", Payload: []byte("x")})
	if !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("after the instance stopped: %v, want ErrNotStarted", err)
	}
}

// BenchmarkWarmInvokeStandIn measures one warm invocation through the
// client, loopback HTTP and the Functions Framework in a worker process.
func BenchmarkWarmInvokeStandIn(b *testing.B) {
	s, err := StartStandIn(context.Background(), StandInConfig{
		Path: os.Args[0], Env: []string{testWorkerEnv + "=1"}, Instances: 1, Output: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	be, err := New(context.Background(), testConfig(s.URLs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	payload := []byte("payload")
	be.Invoke(context.Background(), backends.Task{ID: "warm-up", Payload: payload})
	for b.Loop() {
		if _, err := be.Invoke(context.Background(), backends.Task{ID: "t", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}
