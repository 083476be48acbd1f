//go:build linux

package aws_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/awsstandin"
)

var (
	workerOnce sync.Once
	workerBin  string
	workerErr  error
)

// lambdaWorker builds testdata/lambdaworker once per test run.
func lambdaWorker(t testing.TB) string {
	t.Helper()
	workerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gale-lambdaworker-")
		if err != nil {
			workerErr = err
			return
		}
		workerBin = filepath.Join(dir, "bootstrap")
		goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goCmd, "build", "-o", workerBin, "./testdata/lambdaworker")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			workerErr = fmt.Errorf("go build lambdaworker: %v\n%s", err, out)
		}
	})
	if workerErr != nil {
		t.Fatal(workerErr)
	}
	return workerBin
}

// isolateAWS points the SDK's default chain at test credentials only.
func isolateAWS(t testing.TB) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": awsstandin.VersityAccessKey, "AWS_SECRET_ACCESS_KEY": awsstandin.VersitySecretKey,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL_LAMBDA": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-credentials"),
		"AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_MAX_ATTEMPTS": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// standins is an emulator pool running lambdaworker, with versitygw as
// the staging store.
type standins struct {
	pool    *awsstandin.Pool
	gw      *awsstandin.VersityGW
	staging objstore.Store
	cfg     aws.LambdaConfig // invokes the pool, stages on versitygw
}

func startStandins(t testing.TB, pc awsstandin.PoolConfig) *standins {
	t.Helper()
	rie := awsstandin.RequireTool(t, awsstandin.EmulatorTool)
	vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
	isolateAWS(t)
	dir := t.TempDir()
	gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(dir, "s3"), []string{"stage"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	pc.Emulator = rie
	pc.Bootstrap = lambdaWorker(t)
	pc.Env = append(pc.Env, gw.Env(dir)...)
	if testing.Verbose() {
		pc.Output = os.Stderr
	}
	pool, err := awsstandin.StartPool(pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	s3cfg := aws.S3Config{Endpoint: gw.URL(), PathStyle: true, Region: "us-east-1"}
	staging, err := aws.NewS3(context.Background(), s3cfg, "stage", "gale")
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.LambdaConfig{Endpoint: pool.URL(), Function: awsstandin.FunctionName, Concurrency: pc.Size,
		Staging: "s3://stage/gale", StagingS3: s3cfg, AsyncPoll: 20 * time.Millisecond}
	return &standins{pool: pool, gw: gw, staging: staging, cfg: cfg}
}

func newLambda(t testing.TB, cfg aws.LambdaConfig) *aws.Lambda {
	t.Helper()
	l, err := aws.NewLambda(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func cmd(do string, kv ...any) []byte {
	m := map[string]any{"do": do}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// leftovers lists what is left in the staging store.
func leftovers(t *testing.T, s objstore.Store) []string {
	t.Helper()
	infos, err := objstore.ListAll(context.Background(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

func TestLambdaOnEmulator(t *testing.T) {
	const size, tasks = 3, 12
	s := startStandins(t, awsstandin.PoolConfig{Size: size})
	l := newLambda(t, s.cfg)
	ctx := context.Background()

	results := make([]backends.Result, tasks)
	errs := make([]error, tasks)
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = l.Invoke(ctx, backends.Task{ID: fmt.Sprint("t", i), Payload: cmd("echo", "data", fmt.Sprint("hello ", i))})
		}()
	}
	wg.Wait()
	instances := map[string]int{}
	colds := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("task %d: %v", i, errs[i])
		}
		var got struct {
			Echo string `json:"echo"`
		}
		if err := json.Unmarshal(r.Payload, &got); err != nil || got.Echo != fmt.Sprint("hello ", i) {
			t.Errorf("task %d: payload %s", i, r.Payload)
		}
		inv := r.Invocation
		if inv.Instance == "" || inv.Start.IsZero() || inv.End.Before(inv.Start) || inv.Start.Before(inv.Sent) || inv.Returned.Before(inv.End) {
			t.Errorf("task %d: invocation %+v", i, inv)
		}
		instances[inv.Instance]++
		if inv.Cold {
			colds++
		}
	}
	// Every sandbox that ran a task had exactly one cold start.
	if len(instances) > size || colds != len(instances) {
		t.Errorf("%d instances %v, %d cold starts; want at most %d instances, one cold start each", len(instances), instances, colds, size)
	}
	st := s.pool.Stats()
	if st.Invocations != tasks || st.MaxBusy > size || st.Throttled != 0 {
		t.Errorf("pool stats %+v", st)
	}
	if got := l.Stats(); got.Invocations != tasks || got.Throttled != 0 {
		t.Errorf("backend stats %+v", got)
	}

	// A payload that is not JSON travels base64-encoded, both ways.
	r, err := l.Invoke(ctx, backends.Task{ID: "raw", Payload: []byte("raw:\x00\xffabc")})
	if err != nil || string(r.Payload) != "cba\xff\x00" {
		t.Errorf("raw payload: %q, %v", r.Payload, err)
	}
}

func TestLambdaErrorsOnEmulator(t *testing.T) {
	s := startStandins(t, awsstandin.PoolConfig{Size: 1, Timeout: time.Second})
	l := newLambda(t, s.cfg)
	ctx := context.Background()
	for _, tc := range []struct {
		name, wantType, wantMsg string
		payload                 []byte
		notStarted              bool
	}{
		{"handler error", "error", "disk on fire", cmd("error", "data", "disk on fire"), false},
		{"typed error", "bad-input", "no such column", cmd("typed", "data", "no such column"), false},
		{"refused", "", "not now", cmd("refuse"), true},
		{"panic", "panic", "kaboom", cmd("panic", "data", "kaboom"), false},
		{"process exit", "crash", "Runtime exited with error: exit status 3", cmd("exit"), false},
		{"killed (out of memory)", "oom", "raise memory_mib", cmd("kill"), false},
		// The emulator stops the runtime ("Task timed out after 1.00
		// seconds"), or the worker's handler sees the invocation's
		// deadline first and reports the timeout itself.
		{"timeout", "timeout", "Task timed out", cmd("sleep", "ms", 30000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Invoke(ctx, backends.Task{ID: tc.name, Payload: tc.payload})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, backends.ErrNotStarted); got != tc.notStarted {
				t.Errorf("ErrNotStarted = %v, want %v: %v", got, tc.notStarted, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
			var fe *backends.FunctionError
			if tc.wantType == "" {
				if errors.As(err, &fe) {
					t.Errorf("a refused task is a FunctionError: %v", err)
				}
			} else if !errors.As(err, &fe) || fe.Type != tc.wantType || fe.Backend != "aws" {
				t.Errorf("error %v: want a FunctionError of type %q", err, tc.wantType)
			}
			// The sandbox recovers (the emulator restarts the runtime).
			r, err := l.Invoke(ctx, backends.Task{ID: "after " + tc.name, Payload: cmd("echo", "data", "still here")})
			if err != nil || !bytes.Contains(r.Payload, []byte("still here")) {
				t.Errorf("after %s: %s, %v", tc.name, r.Payload, err)
			}
		})
	}

	t.Run("not deployed", func(t *testing.T) {
		cfg := s.cfg
		cfg.Function = "no-such-function"
		before := s.pool.Stats().Invocations
		_, err := newLambda(t, cfg).Invoke(ctx, backends.Task{ID: "t", Payload: cmd("echo")})
		if !errors.Is(err, aws.ErrNotDeployed) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "gale deploy --backend aws") {
			t.Errorf("error %v", err)
		}
		if s.pool.Stats().Invocations != before {
			t.Error("a sandbox ran")
		}
	})
	t.Run("endpoint down", func(t *testing.T) {
		cfg := s.cfg
		cfg.Endpoint = "http://127.0.0.1:1"
		_, err := newLambda(t, cfg).Invoke(ctx, backends.Task{ID: "t", Payload: cmd("echo")})
		if !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "check that the endpoint http://127.0.0.1:1 is up") {
			t.Errorf("error %v", err)
		}
	})
}

func TestLambdaThrottledOnEmulator(t *testing.T) {
	s := startStandins(t, awsstandin.PoolConfig{Size: 1, Throttle: true})
	cfg := s.cfg
	cfg.Concurrency = 2
	cfg.MaxThrottleRetries = 1000
	cfg.ThrottleBackoff = time.Millisecond
	l := newLambda(t, cfg)
	ctx := context.Background()
	release := filepath.Join(t.TempDir(), "release")

	// The first task holds the only sandbox until the file exists; the
	// second is throttled until then.
	var wg sync.WaitGroup
	var err1, err2 error
	var r2 backends.Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err1 = l.Invoke(ctx, backends.Task{ID: "holder", Payload: cmd("waitfile", "data", release)})
	}()
	waitFor(t, "the holder to take the sandbox", func() bool { return s.pool.Stats().Invocations >= 1 })
	wg.Add(1)
	go func() {
		defer wg.Done()
		r2, err2 = l.Invoke(ctx, backends.Task{ID: "waiter", Payload: cmd("echo", "data", "through")})
	}()
	waitFor(t, "the waiter to be throttled", func() bool { return l.Stats().Throttled >= 3 })
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err1 != nil || err2 != nil || !bytes.Contains(r2.Payload, []byte("through")) {
		t.Fatalf("holder: %v; waiter: %s, %v", err1, r2.Payload, err2)
	}
	st, pst := l.Stats(), s.pool.Stats()
	if st.Throttled != pst.Throttled || st.Invocations != st.Throttled+2 || st.GaveUp != 0 {
		t.Errorf("backend %+v, pool %+v: every 429 is counted once and retried", st, pst)
	}

	// Out of retries: ErrThrottled, certainly not run.
	cfg.MaxThrottleRetries = 2
	l2 := newLambda(t, cfg)
	release2 := filepath.Join(t.TempDir(), "release")
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err1 = l2.Invoke(ctx, backends.Task{ID: "holder", Payload: cmd("waitfile", "data", release2)})
	}()
	waitFor(t, "the second holder to take the sandbox", func() bool { return s.pool.Stats().Invocations >= 3 })
	_, err := l2.Invoke(ctx, backends.Task{ID: "loser", Payload: cmd("echo")})
	os.WriteFile(release2, nil, 0o644)
	wg.Wait()
	if !errors.Is(err, aws.ErrThrottled) || !errors.Is(err, backends.ErrNotStarted) || err1 != nil {
		t.Errorf("loser: %v (holder: %v)", err, err1)
	}
	if st := l2.Stats(); st.Throttled != 3 || st.GaveUp != 1 {
		t.Errorf("stats %+v, want 3 throttled (the first try and 2 retries), 1 given up", st)
	}
}

// waitFor polls cond until it holds. It is a liveness bound, not a timing
// assertion: a minute is far beyond what the condition needs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLambdaLargePayloadsOnEmulator(t *testing.T) {
	s := startStandins(t, awsstandin.PoolConfig{Size: 1})
	l := newLambda(t, s.cfg)
	ctx := context.Background()

	// A 7 MiB JSON payload goes through the staging store.
	big := cmd("digest", "data", strings.Repeat("gale ", 7<<20/5))
	r, err := l.Invoke(ctx, backends.Task{ID: "big-in", Payload: big})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	want := fmt.Sprintf(`{"len":%d,"sha256":"%s"}`, len(big), hex.EncodeToString(sum[:]))
	if string(r.Payload) != want {
		t.Errorf("digest %s, want %s", r.Payload, want)
	}
	// A 7 MiB result (not JSON) comes back through the staging store.
	r, err = l.Invoke(ctx, backends.Task{ID: "big-out", Payload: cmd("big", "n", 7<<20)})
	if err != nil || !bytes.Equal(r.Payload, bytes.Repeat([]byte{'z', 0xff}, 7<<20/2)) {
		t.Errorf("big result: %d bytes, %v", len(r.Payload), err)
	}
	if st := l.Stats(); st.StagedPayloads != 1 || st.StagedResults != 1 {
		t.Errorf("stats %+v", st)
	}
	if left := leftovers(t, s.staging); len(left) != 0 {
		t.Errorf("staging store keeps %v", left)
	}

	// Without a staging store: refused before sending, naming the limit.
	cfg := s.cfg
	cfg.Staging = ""
	before := s.pool.Stats().Invocations
	_, err = newLambda(t, cfg).Invoke(ctx, backends.Task{ID: "big-in", Payload: big})
	if !errors.Is(err, aws.ErrPayloadTooLarge) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "6291456-byte limit") {
		t.Errorf("error %v", err)
	}
	if s.pool.Stats().Invocations != before {
		t.Error("the oversized payload was sent")
	}
	// ... and a result too large to return is a function error.
	_, err = newLambda(t, cfg).Invoke(ctx, backends.Task{ID: "big-out", Payload: cmd("big", "n", 7<<20)})
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "response limit") {
		t.Errorf("error %v", err)
	}
}

func TestLambdaAsyncOnEmulator(t *testing.T) {
	s := startStandins(t, awsstandin.PoolConfig{Size: 2})
	l := newLambda(t, s.cfg)
	ctx := context.Background()

	var pending []*aws.Pending
	for i := range 4 {
		p, err := l.InvokeAsync(ctx, backends.Task{ID: fmt.Sprint("a", i), Payload: cmd("echo", "data", fmt.Sprint("async ", i))})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	pe, err := l.InvokeAsync(ctx, backends.Task{ID: "a-err", Payload: cmd("error", "data", "async failure")})
	if err != nil {
		t.Fatal(err)
	}
	// A 300 KiB payload is over the asynchronous limit: staged.
	bigPayload := cmd("digest", "data", strings.Repeat("x", 300<<10))
	pb, err := l.InvokeAsync(ctx, backends.Task{ID: "a-big", Payload: bigPayload})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pending {
		r, err := l.Wait(ctx, p)
		if err != nil || !bytes.Contains(r.Payload, []byte(fmt.Sprintf(`"async %d"`, i))) || r.Invocation.Instance == "" {
			t.Errorf("async %d: %s %+v, %v", i, r.Payload, r.Invocation, err)
		}
	}
	_, err = l.Wait(ctx, pe)
	var fe *backends.FunctionError
	if !errors.As(err, &fe) || fe.Message != "async failure" || errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("async error: %v", err)
	}
	r, err := l.Wait(ctx, pb)
	if err != nil || !bytes.Contains(r.Payload, []byte(fmt.Sprintf(`"len":%d`, len(bigPayload)))) {
		t.Errorf("async big: %s, %v", r.Payload, err)
	}
	if left := leftovers(t, s.staging); len(left) != 0 {
		t.Errorf("staging store keeps %v", left)
	}

	cfg := s.cfg
	cfg.Staging = ""
	if _, err := newLambda(t, cfg).InvokeAsync(ctx, backends.Task{ID: "x", Payload: cmd("echo")}); !errors.Is(err, aws.ErrNoStaging) || !errors.Is(err, backends.ErrNotStarted) {
		t.Errorf("async without staging: %v", err)
	}
}
