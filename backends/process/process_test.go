package process_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/process"
)

// TestMain turns the test binary into a worker when the backend starts it:
// the standard way to test code that re-executes its own binary.
func TestMain(m *testing.M) {
	if os.Getenv(process.WorkerEnv) == process.WorkerEnvValue {
		if err := process.ServeInherited(context.Background(), testHandler); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testHandler runs the commands the tests send as "verb:argument".
func testHandler(ctx context.Context, payload []byte) ([]byte, error) {
	verb, arg, _ := strings.Cut(string(payload), ":")
	switch verb {
	case "echo":
		return []byte(arg), nil
	case "big": // echo binary data after the colon
		return payload[4:], nil
	case "pid":
		return []byte(strconv.Itoa(os.Getpid())), nil
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return nil, err
		}
		select {
		case <-time.After(d):
			return []byte(strconv.Itoa(os.Getpid())), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "wait":
		fmt.Fprintln(os.Stderr, "running wait")
		<-ctx.Done()
		return nil, ctx.Err()
	case "hang": // ignores cancellation: only a kill stops it
		fmt.Fprintln(os.Stderr, "running hang")
		select {}
	case "print":
		fmt.Println("out " + arg)
		fmt.Fprintln(os.Stderr, "err "+arg)
		return nil, nil
	case "exit":
		code, _ := strconv.Atoi(arg)
		fmt.Fprintln(os.Stderr, "about to exit with", code)
		os.Exit(code)
	case "crash": // a panic on a goroutine nobody recovers
		go panic("boom in a goroutine")
		select {}
	case "panic":
		panic("boom in the handler")
	case "fail":
		return nil, errors.New(arg)
	case "notstarted":
		return nil, fmt.Errorf("refused: %w", backends.ErrNotStarted)
	}
	return nil, fmt.Errorf("unknown test command %q", verb)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
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

// tracker remembers every worker pid a test saw, to check at the end that
// none of them outlived Close.
type tracker struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (tr *tracker) see(t *testing.T, res backends.Result) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimPrefix(res.Invocation.Instance, "process-"))
	if err != nil || !strings.HasPrefix(res.Invocation.Instance, "process-") {
		t.Fatalf("instance %q is not process-PID", res.Invocation.Instance)
	}
	tr.mu.Lock()
	tr.pids[pid] = true
	tr.mu.Unlock()
	return pid
}

func newBackend(t *testing.T, mod func(*process.Config)) (*process.Backend, *tracker, *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cfg := process.DefaultConfig()
	cfg.Path, cfg.Args, cfg.Output = exe, nil, out
	cfg.Concurrency = 2
	cfg.StopTimeout = 2 * time.Second
	// Race-enabled binaries otherwise linger a second at exit.
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	if mod != nil {
		mod(&cfg)
	}
	b, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracker{pids: map[int]bool{}}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		st := b.Stats()
		if st.Live != 0 || st.Started != st.Exited {
			t.Errorf("after Close: %+v, want every started worker exited", st)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for pid := range tr.pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("worker process %d still exists after Close (kill 0: %v)", pid, err)
			}
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", out)
		}
	})
	return b, tr, out
}

func invoke(ctx context.Context, b *process.Backend, payload string) (backends.Result, error) {
	return b.Invoke(ctx, backends.Task{ID: "test/" + payload, Payload: []byte(payload)})
}

func mustInvoke(t *testing.T, b *process.Backend, tr *tracker, payload string) backends.Result {
	t.Helper()
	res, err := invoke(context.Background(), b, payload)
	if err != nil {
		t.Fatalf("Invoke(%q): %v", payload, err)
	}
	tr.see(t, res)
	return res
}

func TestInvokeColdThenWarmOnTheSameProcess(t *testing.T) {
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 1 })
	r1 := mustInvoke(t, b, tr, "pid:")
	r2 := mustInvoke(t, b, tr, "echo:hello")
	r3 := mustInvoke(t, b, tr, "pid:")
	if string(r2.Payload) != "hello" {
		t.Errorf("echo payload = %q", r2.Payload)
	}
	if !r1.Invocation.Cold || r2.Invocation.Cold || r3.Invocation.Cold {
		t.Errorf("cold flags = %v %v %v, want true false false", r1.Invocation.Cold, r2.Invocation.Cold, r3.Invocation.Cold)
	}
	if r1.Invocation.Instance != r3.Invocation.Instance || string(r1.Payload) != string(r3.Payload) {
		t.Errorf("warm invocation ran on %s (pid %s), first on %s (pid %s)", r3.Invocation.Instance, r3.Payload, r1.Invocation.Instance, r1.Payload)
	}
	if want := "process-" + string(r1.Payload); r1.Invocation.Instance != want {
		t.Errorf("instance = %s, the worker's pid says %s", r1.Invocation.Instance, want)
	}
	for _, r := range []backends.Result{r1, r2, r3} {
		inv := r.Invocation
		if inv.Sent.After(inv.Start) || inv.Start.After(inv.End) || inv.End.After(inv.Returned) {
			t.Errorf("times out of order: sent %v start %v end %v returned %v", inv.Sent, inv.Start, inv.End, inv.Returned)
		}
	}
	if st := b.Stats(); st.Started != 1 {
		t.Errorf("Stats = %+v, want one worker started", st)
	}
}

func TestLargePayloadsRoundTrip(t *testing.T) {
	b, tr, _ := newBackend(t, nil)
	data := make([]byte, 5<<20)
	rand.Read(data)
	res, err := b.Invoke(context.Background(), backends.Task{ID: "big", Payload: append([]byte("big:"), data...)})
	if err != nil {
		t.Fatal(err)
	}
	tr.see(t, res)
	if !bytes.Equal(res.Payload, data) {
		t.Errorf("a %d-byte payload came back as %d bytes, different", len(data), len(res.Payload))
	}
}

func TestConcurrencyBoundAndReuse(t *testing.T) {
	const conc, tasks = 2, 8
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = conc })
	var wg sync.WaitGroup
	results := make([]backends.Result, tasks)
	errs := make([]error, tasks)
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = invoke(context.Background(), b, "sleep:30ms")
		}()
	}
	wg.Wait()
	instances := map[string]int{}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("task %d: %v", i, errs[i])
		}
		tr.see(t, r)
		instances[r.Invocation.Instance]++
		edges = append(edges, edge{r.Invocation.Start, +1}, edge{r.Invocation.End, -1})
	}
	if len(instances) > conc {
		t.Errorf("%d distinct workers ran the tasks, want at most %d: %v", len(instances), conc, instances)
	}
	// At no time did more than conc tasks run inside workers.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	running, most := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	if most > conc {
		t.Errorf("%d tasks ran at once, want at most %d", most, conc)
	}
	if st := b.Stats(); st.Started > conc {
		t.Errorf("Stats = %+v: more workers started than the bound", st)
	}
}

func TestIdleWorkersRetire(t *testing.T) {
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 1; c.IdleTimeout = 50 * time.Millisecond })
	r1 := mustInvoke(t, b, tr, "pid:")
	waitFor(t, "the idle worker to retire", func() bool { return b.Stats().Exited == 1 })
	pid, _ := strconv.Atoi(string(r1.Payload))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("retired worker %d still exists (kill 0: %v)", pid, err)
	}
	r2 := mustInvoke(t, b, tr, "pid:")
	if !r2.Invocation.Cold || string(r2.Payload) == string(r1.Payload) {
		t.Errorf("after retirement: cold=%v pid %s (before: %s), want a new cold worker", r2.Invocation.Cold, r2.Payload, r1.Payload)
	}
}

// waitFor polls cond until it holds; the generous limit only guards
// against a hang, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestCrashFailsOnlyItsTask(t *testing.T) {
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 2 })
	for _, tc := range []struct{ payload, want string }{
		{"exit:3", "about to exit with 3"},
		{"crash:", "panic: boom in a goroutine"},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			// A task runs alongside on the other worker and is unaffected.
			var wg sync.WaitGroup
			var other backends.Result
			var otherErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				other, otherErr = invoke(context.Background(), b, "sleep:100ms")
			}()
			_, err := invoke(context.Background(), b, tc.payload)
			wg.Wait()
			var fe *backends.FunctionError
			if !errors.As(err, &fe) || fe.Type != "crash" {
				t.Fatalf("err = %v, want a FunctionError of type crash", err)
			}
			if errors.Is(err, backends.ErrNotStarted) {
				t.Error("a crash mid-task claims the task did not start")
			}
			if !strings.Contains(fe.Message, tc.want) {
				t.Errorf("crash message does not quote the worker's output %q:\n%s", tc.want, fe.Message)
			}
			if otherErr != nil {
				t.Errorf("the task beside the crash failed: %v", otherErr)
			} else {
				tr.see(t, other)
			}
			// The backend replaces the worker.
			mustInvoke(t, b, tr, "echo:after")
		})
	}
	if st := b.Stats(); st.Crashed != 2 {
		t.Errorf("Stats = %+v, want 2 crashes", st)
	}
}

func TestFunctionErrorsKeepTheWorker(t *testing.T) {
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 1 })
	first := mustInvoke(t, b, tr, "pid:")
	_, err := invoke(context.Background(), b, "fail:bad input in record 7")
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Type != "error" || fe.Message != "bad input in record 7" || fe.Backend != "process" {
		t.Errorf("fail: err = %#v", err)
	}
	_, err = invoke(context.Background(), b, "panic:")
	if !errors.As(err, &fe) || fe.Type != "panic" || !strings.Contains(fe.Message, "boom in the handler") {
		t.Errorf("panic: err = %v", err)
	}
	_, err = invoke(context.Background(), b, "notstarted:")
	if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("notstarted: err = %v, want ErrNotStarted", err)
	}
	last := mustInvoke(t, b, tr, "pid:")
	if string(last.Payload) != string(first.Payload) {
		t.Errorf("worker replaced after function errors: pid %s, then %s", first.Payload, last.Payload)
	}
}

func TestWorkerOutputIsForwardedWithPrefix(t *testing.T) {
	b, tr, out := newBackend(t, nil)
	res := mustInvoke(t, b, tr, "print:line one")
	pid := tr.see(t, res)
	b.Close() // the output copier has finished once Close returns
	for _, want := range []string{
		fmt.Sprintf("gale worker %d: out line one\n", pid),
		fmt.Sprintf("gale worker %d: err line one\n", pid),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestStartFailuresAreNotStarted(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*process.Config)
		want string
	}{
		{"missing binary", func(c *process.Config) { c.Path = "/nonexistent/gale-worker" }, "no such file"},
		{"exits at once", func(c *process.Config) { c.Path, c.Args = "/bin/sh", []string{"-c", "echo not a worker; exit 4"} },
			"exited before it was ready (exit status 4); its output ended with:\nnot a worker"},
		{"never ready", func(c *process.Config) {
			c.Path, c.Args, c.StartTimeout, c.StopTimeout = "/bin/sleep", []string{"60"}, 100*time.Millisecond, 100*time.Millisecond
		}, "did not report ready within 100ms"},
		{"wrong protocol", func(c *process.Config) {
			c.Path, c.Args = "/bin/sh", []string{"-c", `printf '\000\000\000\002Hv9' >&4; sleep 60`}
			c.StopTimeout = 100 * time.Millisecond
		}, `speaks protocol "v9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _, _ := newBackend(t, tc.mod)
			_, err := invoke(context.Background(), b, "echo:x")
			if !errors.Is(err, backends.ErrNotStarted) {
				t.Fatalf("err = %v, want ErrNotStarted", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
			b.Close()
			if st := b.Stats(); st.Live != 0 {
				t.Errorf("Stats after Close = %+v", st)
			}
		})
	}
}

func TestCancelledTaskRetiresItsWorker(t *testing.T) {
	b, tr, out := newBackend(t, func(c *process.Config) { c.Concurrency = 1 })
	first := mustInvoke(t, b, tr, "pid:")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := invoke(ctx, b, "wait:")
		done <- err
	}()
	waitFor(t, "the task to run in the worker", func() bool { return strings.Contains(out.String(), "running wait") })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("err = %v, want context.Canceled and not ErrNotStarted", err)
	}
	waitFor(t, "the cancelled worker to exit", func() bool { return b.Stats().Exited == 1 })
	next := mustInvoke(t, b, tr, "pid:")
	if !next.Invocation.Cold || string(next.Payload) == string(first.Payload) {
		t.Errorf("after a cancelled task: cold=%v pid %s, first pid %s", next.Invocation.Cold, next.Payload, first.Payload)
	}
}

func TestCloseStopsBusyWorkersAndKillsStubbornOnes(t *testing.T) {
	b, tr, out := newBackend(t, func(c *process.Config) { c.Concurrency = 2; c.StopTimeout = 200 * time.Millisecond })
	pids := []int{tr.see(t, mustInvoke(t, b, tr, "pid:"))}
	errs := make(chan error, 2)
	for _, p := range []string{"wait:", "hang:"} {
		go func() {
			_, err := invoke(context.Background(), b, p)
			errs <- err
		}()
	}
	waitFor(t, "both tasks to run in workers", func() bool {
		return strings.Contains(out.String(), "running wait") && strings.Contains(out.String(), "running hang")
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := <-errs
		if err == nil || errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("task in flight at Close: err = %v, want a may-have-run error saying the backend closed", err)
		}
	}
	if st := b.Stats(); st.Live != 0 || st.Exited != st.Started || st.Started != 2 {
		t.Errorf("Stats after Close = %+v", st)
	}
	if _, err := invoke(context.Background(), b, "echo:x"); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
	_ = pids
}

func TestNoGoroutinesOutliveClose(t *testing.T) {
	before := runtime.NumGoroutine()
	b, tr, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 3 })
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := invoke(context.Background(), b, "sleep:10ms")
			if err == nil {
				tr.see(t, res)
			}
		}()
	}
	wg.Wait()
	b.Close()
	waitFor(t, "goroutines to return to their number before the backend", func() bool { return runtime.NumGoroutine() <= before })
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := process.Config{Concurrency: -1, IdleTimeout: -time.Second, Env: []string{"NOEQUALS", process.WorkerEnv + "=x"}}.Validate()
	for _, want := range []string{"Path", "Concurrency", "IdleTimeout", `"NOEQUALS"`, "must not set " + process.WorkerEnv} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %s", err, want)
		}
	}
	if _, err := process.New(process.Config{}); err == nil {
		t.Error("New accepted a config without a Path")
	}
}

func TestTraits(t *testing.T) {
	b, _, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 5 })
	tr := backends.TraitsOf(b)
	if tr.Name != "process" || tr.MaxConcurrency != 5 || tr.MaxPayloadBytes != process.MaxPayload {
		t.Errorf("Traits = %+v", tr)
	}
}

func TestWaitingForAFreeWorkerIsNotStarted(t *testing.T) {
	b, _, _ := newBackend(t, func(c *process.Config) { c.Concurrency = 1 })
	busyCtx, stopBusy := context.WithCancel(context.Background())
	busy := make(chan error, 1)
	go func() {
		_, err := invoke(busyCtx, b, "wait:")
		busy <- err
	}()
	waitFor(t, "the first task to hold the only worker", func() bool { return b.Stats().Live == 1 && b.Stats().Idle == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := invoke(ctx, b, "echo:x"); !errors.Is(err, backends.ErrNotStarted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrNotStarted and DeadlineExceeded", err)
	}
	if _, err := invoke(ctx, b, "echo:x"); !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("with a done ctx: err = %v, want ErrNotStarted", err)
	}
	stopBusy()
	if err := <-busy; !errors.Is(err, context.Canceled) {
		t.Errorf("the busy task: %v, want context.Canceled", err)
	}
}
