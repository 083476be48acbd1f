package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/probe"
)

// burn is a job handler: it runs a Monte Carlo loop of the size given in
// its payload ("burn N") and answers with the process CPU time it
// measured across the loop (8 bytes), so a test can relate the simulated
// duration to the CPU the task took, independently of the backend's own
// measurement.
func burn(runs *atomic.Int64) backends.Handler {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		runs.Add(1)
		var n int64
		if _, err := fmt.Sscanf(string(payload), "burn %d", &n); err != nil {
			return nil, fmt.Errorf("bad payload %q", payload)
		}
		if n < 0 {
			panic("negative work")
		}
		t0 := processCPU()
		x := uint64(n) | 1
		for i := int64(0); i < n; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		cpu := processCPU() - t0
		out := binary.BigEndian.AppendUint64(nil, uint64(cpu))
		return append(out, byte(x)), nil
	}
}

func newExec(t *testing.T, preset string, h backends.Handler, tweak func(*Config)) *Backend {
	t.Helper()
	cfg, err := DefaultConfig(preset)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = h
	// Generous: calls made together must reach the backend within one
	// settle time of each other to share a simulated instant, and a
	// loaded machine may start goroutines late.
	cfg.Settle = 20 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// invokeAll calls Invoke from n goroutines at once, as the engine does.
func invokeAll(b *Backend, payloads []string) ([]backends.Result, []error) {
	res := make([]backends.Result, len(payloads))
	errs := make([]error, len(payloads))
	var wg sync.WaitGroup
	for i, p := range payloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = b.Invoke(context.Background(), backends.Task{ID: fmt.Sprintf("job/t%d", i), Payload: []byte(p)})
		}()
	}
	wg.Wait()
	return res, errs
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestJobTasksRunInSimulatedTime runs eight CPU-bound tasks at once on
// sim:aws. Each task ran for real (its answer is the handler's), and its
// simulated in-function time is the CPU time it took scaled by AWS's CPU
// speed (a 2048 MiB function has a full vCPU, so nothing else slows it).
func TestJobTasksRunInSimulatedTime(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "aws", burn(&runs), nil)
	const n = 8
	res, errs := invokeAll(b, repeat("burn 20000000", n))
	var billed time.Duration
	inst := map[string]bool{}
	for i := range res {
		if errs[i] != nil {
			t.Fatalf("task %d: %v", i, errs[i])
		}
		inv := res[i].Invocation
		if len(res[i].Payload) != 9 {
			t.Fatalf("task %d answered %q, not the handler's result", i, res[i].Payload)
		}
		self := time.Duration(binary.BigEndian.Uint64(res[i].Payload))
		got := inv.End.Sub(inv.Start)
		want := time.Duration(float64(self) * 1.1)
		// The backend measures the process's CPU time across the whole
		// handler, the handler only across its loop; a few milliseconds
		// of difference is the call around the loop and the runtime.
		if got < want-time.Microsecond || got > want+want/10+10*time.Millisecond {
			t.Errorf("task %d: simulated run %v; the loop took %v of CPU, so want about %v (× 1.1)", i, got, self, want)
		}
		if !inv.Cold || !inv.Sent.Equal(res[0].Invocation.Sent) || inv.Start.Sub(inv.Sent) < 180*time.Millisecond {
			t.Errorf("task %d: %+v; want a cold start ≥ 180 ms after a send shared by all", i, inv)
		}
		inst[inv.Instance] = true
		billed += got
	}
	if runs.Load() != n || len(inst) != n {
		t.Errorf("%d handler runs on %d instances, want %d on %d", runs.Load(), len(inst), n, n)
	}
	if got := b.SimulatedBilled(); got != billed {
		t.Errorf("SimulatedBilled = %v, want the sum of in-function times %v", got, billed)
	}
	var last time.Time
	for _, r := range res {
		if r.Invocation.Returned.After(last) {
			last = r.Invocation.Returned
		}
	}
	if got, want := b.SimulatedElapsed(), last.Sub(b.cfg.Epoch); got != want {
		t.Errorf("SimulatedElapsed = %v, want the last answer's simulated time %v", got, want)
	}
}

// TestJobTasksShareTheInstanceCPU runs the same tasks on a 256 MiB AWS
// function: a seventh of a vCPU makes each seven times slower than on a
// full one.
func TestJobTasksShareTheInstanceCPU(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "aws", burn(&runs), func(c *Config) { c.MemoryMiB = 256 })
	res, errs := invokeAll(b, repeat("burn 5000000", 3))
	for i := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		self := time.Duration(binary.BigEndian.Uint64(res[i].Payload))
		got := res[i].Invocation.End.Sub(res[i].Invocation.Start)
		want := time.Duration(float64(self) * 1.1 * 1792 / 256)
		if got < want-time.Microsecond || got > want+want/10+70*time.Millisecond {
			t.Errorf("task %d: simulated run %v for %v of CPU at 256 MiB; want about %v", i, got, self, want)
		}
	}
}

// TestJobOnAzureTakesLonger runs the same eight tasks on sim:azure: one
// instance at first, more only every 1.6 s, cold starts of seconds.
func TestJobOnAzureTakesLonger(t *testing.T) {
	var runs atomic.Int64
	aws := newExec(t, "aws", burn(&runs), nil)
	azure := newExec(t, "azure", burn(&runs), nil)
	for _, b := range []*Backend{aws, azure} {
		_, errs := invokeAll(b, repeat("burn 2000000", 8))
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	if a, z := aws.SimulatedElapsed(), azure.SimulatedElapsed(); z < 2*time.Second || z <= a {
		t.Errorf("simulated makespan: aws %v, azure %v; want azure longer, beyond its 2 s minimum cold start", a, z)
	}
	if c, _ := azure.Stats(); c >= 8 {
		t.Errorf("azure created %d instances for 8 short tasks; its scale controller adds one per 1.6 s", c)
	}
}

func TestJobTaskRejectedDidNotRun(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "aws", burn(&runs), func(c *Config) { c.Platform.MaxInFlight = 2 })
	_, errs := invokeAll(b, repeat("burn 1000", 5))
	rejected := 0
	for _, err := range errs {
		if errors.Is(err, backends.ErrNotStarted) {
			rejected++
		} else if err != nil {
			t.Errorf("unexpected error %v", err)
		}
	}
	if rejected != 3 || runs.Load() != 2 {
		t.Errorf("%d rejected, %d handler runs; want 3 rejected (ErrNotStarted) and 2 runs", rejected, runs.Load())
	}
}

func TestJobTaskErrorsAndPanics(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "ibm", burn(&runs), nil)
	_, errs := invokeAll(b, []string{"nonsense", "burn -1", "burn 10"})
	var fe *backends.FunctionError
	if !errors.As(errs[0], &fe) || fe.Type != "error" || !strings.Contains(fe.Message, "nonsense") {
		t.Errorf("handler error: %v, want a FunctionError carrying it", errs[0])
	}
	if !errors.As(errs[1], &fe) || fe.Type != "panic" || !strings.Contains(fe.Message, "negative work") {
		t.Errorf("handler panic: %v, want a FunctionError of type panic", errs[1])
	}
	if errs[2] != nil {
		t.Errorf("a good task beside failing ones: %v", errs[2])
	}
}

func TestInvokeAllRunsJobTasks(t *testing.T) {
	var runs atomic.Int64
	b := newExec(t, "gcp", burn(&runs), nil)
	tasks := []backends.Task{{ID: "a", Payload: []byte("burn 100")}, {ID: "p", Payload: probe.NewRequest(probe.Sleep, time.Second, 0, 0)}}
	res, errs := b.InvokeAll(context.Background(), tasks)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(res[0].Payload) != 9 || !probe.IsRequest(tasks[1].Payload) || runs.Load() != 1 {
		t.Errorf("payloads %q, %q; %d runs: want the handler's answer and a simulated probe", res[0].Payload, res[1].Payload, runs.Load())
	}
	if d := res[1].Invocation.End.Sub(res[1].Invocation.Start); d != time.Second {
		t.Errorf("simulated sleep ran %v, want 1s", d)
	}
}

func TestCloseCancelsRunningHandler(t *testing.T) {
	started := make(chan struct{})
	h := func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b := newExec(t, "aws", h, nil)
	done := make(chan error, 1)
	go func() {
		_, err := b.Invoke(context.Background(), backends.Task{ID: "stuck", Payload: []byte("x")})
		done <- err
	}()
	<-started
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Invoke of a task running at Close: %v, want ErrClosed", err)
	}
}

// TestAsyncProbeIsRetriedNotRejected sends more asynchronous probe
// invocations than the account limit: the platform keeps the overflow and
// runs it later, as Lambda does with throttled events.
func TestAsyncProbeIsRetriedNotRejected(t *testing.T) {
	b := newPreset(t, "aws", 1)
	tr, err := probe.Run(context.Background(), b, probe.Config{Invocations: 1500, Task: probe.Compute, Duration: time.Second,
		Iterations: 1, Async: true, AllowOverLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	m := probe.Analyze(tr)
	if m.OK != 1500 || m.Failures != 0 || m.ParallelDegree != 1000 {
		t.Errorf("async 1500 on a limit of 1000: ok %d, failures %d, parallel degree %d; want 1500, 0, 1000", m.OK, m.Failures, m.ParallelDegree)
	}
	if m.CompletionTimeS < 2.1 {
		t.Errorf("completion %.2f s: the 500 retried invocations should run after a retry delay", m.CompletionTimeS)
	}
}

// TestStragglerDrawFollowsTheTask: whether a task is slowed depends on the
// task, not on how many invocations started before it, so a backup or a
// retry sent first does not change which of a job's tasks straggle (the
// speculation-off and -on runs of bench/stragglers see the same ones).
func TestStragglerDrawFollowsTheTask(t *testing.T) {
	slowedTasks := func(first string) []int {
		var runs atomic.Int64
		b := newExec(t, "aws", burn(&runs), func(c *Config) {
			c.Seed = 7
			c.Platform.Stragglers = Stragglers{Fraction: 0.3, Factor: 10}
		})
		ctx := context.Background()
		if first != "" {
			if _, err := b.Invoke(ctx, backends.Task{ID: first, Payload: []byte("burn 1000")}); err != nil {
				t.Fatal(err)
			}
		}
		var slowed []int
		for i := range 30 {
			before := b.Stragglers()
			if _, err := b.Invoke(ctx, backends.Task{ID: fmt.Sprintf("job/t%d", i), Payload: []byte("burn 1000")}); err != nil {
				t.Fatal(err)
			}
			if b.Stragglers() > before {
				slowed = append(slowed, i)
			}
		}
		return slowed
	}
	plain := slowedTasks("")
	if len(plain) == 0 || len(plain) == 30 {
		t.Fatalf("%d of 30 tasks slowed at a 30%% straggler rate", len(plain))
	}
	for _, first := range []string{"job/t3-backup", "job/other", "x"} {
		if got := slowedTasks(first); fmt.Sprint(got) != fmt.Sprint(plain) {
			t.Errorf("with %q invoked first, tasks %v were slowed; alone, %v", first, got, plain)
		}
	}
}
