package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestInstanceID(t *testing.T) {
	// /proc/self/cgroup as Lambda's Firecracker sandboxes show it.
	lambda := "11:pids:/sandbox-root-q7XbNz/sandbox-5cd8a1\n10:memory:/sandbox-root-q7XbNz/sandbox-5cd8a1\n"
	if got := instanceID(lambda); got != "sandbox-root-q7XbNz" {
		t.Errorf("instanceID = %q", got)
	}
	a, b := instanceID("0::/\n"), instanceID("")
	if !strings.HasPrefix(a, "sandbox-") || a == b || strings.HasPrefix(a, "sandbox-root") {
		t.Errorf("drawn ids %q, %q", a, b)
	}
}

func TestWorkerColdFlagAndEnvelope(t *testing.T) {
	w := newLambdaWorker(func(_ context.Context, p []byte) ([]byte, error) { return append([]byte("got:"), p...), nil }, "sb-1")
	for i, wantCold := range []bool{true, false, false} {
		body, _ := json.Marshal(request{V: envelopeVersion, Task: "t", PayloadB64: []byte{0, 1, 2}})
		out, err := w.Invoke(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeResponse(out)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cold != wantCold || r.Instance != "sb-1" || string(payloadOf(r.Payload, r.PayloadB64)) != "got:\x00\x01\x02" || r.End < r.Start {
			t.Errorf("invocation %d: %+v", i, r)
		}
	}
	if _, err := w.Invoke(context.Background(), []byte(`{"hello":1}`)); err == nil || !strings.Contains(err.Error(), "not a Gale request") {
		t.Errorf("foreign payload: %v", err)
	}
}

func TestRunHandlerReportsDeadlineAsTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	waits := func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("sleeping: %w", ctx.Err())
	}
	_, werr := runHandler(ctx, waits, nil)
	if werr == nil || werr.Type != "timeout" || !strings.Contains(werr.Message, "Task timed out") || !strings.Contains(werr.Message, "sleeping: context deadline exceeded") {
		t.Errorf("handler past the invocation's deadline: %+v, want a timeout", werr)
	}
	// A deadline of the handler's own is an ordinary error.
	own := func(ctx context.Context, _ []byte) ([]byte, error) {
		c, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		<-c.Done()
		return nil, c.Err()
	}
	if _, werr := runHandler(context.Background(), own, nil); werr == nil || werr.Type != "error" {
		t.Errorf("handler's own deadline: %+v, want an error", werr)
	}
}
