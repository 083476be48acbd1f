package worker

import (
	"context"
	"testing"
	"time"

	beamruntime "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime"
)

// TestOptionsGate: tasks with the same options run together; a task with
// other options waits for them, then sees its own values and none of the
// earlier job's keys.
func TestOptionsGate(t *testing.T) {
	g := newGate()
	ctx := context.Background()
	a := map[string]string{"gate_a": "1", "gate_shared": "x"}
	b := map[string]string{"gate_b": "2", "gate_shared": "y"}
	r1, err := g.acquire(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := g.acquire(ctx, map[string]string{"gate_a": "1", "gate_shared": "x", "gate_empty": ""})
	if err != nil {
		t.Fatal(err) // the same options: "" is the same as unset
	}
	got := make(chan func())
	go func() {
		r, err := g.acquire(ctx, b)
		if err != nil {
			t.Error(err)
			r = func() {}
		}
		got <- r
	}()
	r1()
	select {
	case <-got:
		t.Fatal("a task with other options ran while one with the first options was running")
	case <-time.After(50 * time.Millisecond):
	}
	if v := beamruntime.GlobalOptions.Get("gate_a"); v != "1" {
		t.Fatalf("gate_a = %q while the first job runs, want 1", v)
	}
	r2()
	r3 := <-got
	defer r3()
	for k, want := range map[string]string{"gate_a": "", "gate_b": "2", "gate_shared": "y"} {
		if v := beamruntime.GlobalOptions.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.acquire(cctx, a); err == nil {
		t.Fatal("acquire with other options and a cancelled context succeeded while b runs")
	}
}
