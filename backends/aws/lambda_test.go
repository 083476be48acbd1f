package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
)

// fakeLambda is an Invoke endpoint that answers with a script of responses,
// repeating the last one.
type fakeLambda struct {
	srv      *httptest.Server
	requests atomic.Int64
	script   []fakeAnswer
	lastBody atomic.Value // string
	lastType atomic.Value // X-Amz-Invocation-Type
}

type fakeAnswer struct {
	status  int
	headers map[string]string
	body    string
}

func newFakeLambda(t *testing.T, script ...fakeAnswer) *fakeLambda {
	t.Helper()
	f := &fakeLambda{script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.requests.Add(1)) - 1
		b, _ := io.ReadAll(r.Body)
		f.lastBody.Store(string(b))
		f.lastType.Store(r.Header.Get("X-Amz-Invocation-Type"))
		a := f.script[min(n, len(f.script)-1)]
		for k, v := range a.headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func testCreds(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDGALETEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_LAMBDA": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-credentials"),
		"AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// galeOK is a worker's successful response envelope.
func galeOK(payload string) fakeAnswer {
	return fakeAnswer{status: 200, body: fmt.Sprintf(`{"gale":"gale.lambda/v1","start":1700000000000000000,"end":1700000001000000000,"instance":"sandbox-root-abc","cold":true,"payload":%s}`, payload)}
}

func lambdaAt(t *testing.T, url string, mod func(*aws.LambdaConfig)) *aws.Lambda {
	t.Helper()
	cfg := aws.LambdaConfig{Endpoint: url, Function: "fn", ThrottleBackoff: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	l, err := aws.NewLambda(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLambdaInvokeRequestAndResult(t *testing.T) {
	testCreds(t)
	f := newFakeLambda(t, galeOK(`{"n":42}`))
	l := lambdaAt(t, f.srv.URL, nil)
	r, err := l.Invoke(context.Background(), backends.Task{ID: "job/t1", Payload: []byte(`{"kind":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Payload) != `{"n":42}` || r.Invocation.Instance != "sandbox-root-abc" || !r.Invocation.Cold ||
		r.Invocation.Start != time.Unix(1700000000, 0) || r.Invocation.End != time.Unix(1700000001, 0) {
		t.Errorf("result %s %+v", r.Payload, r.Invocation)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(f.lastBody.Load().(string)), &req); err != nil {
		t.Fatal(err)
	}
	if req["gale"] != "gale.lambda/v1" || req["task"] != "job/t1" || fmt.Sprint(req["payload"]) != "map[kind:x]" {
		t.Errorf("request envelope %v", req)
	}
	if got := f.lastType.Load(); got != "RequestResponse" {
		t.Errorf("X-Amz-Invocation-Type %q", got)
	}
}

func TestLambdaThrottleRetries(t *testing.T) {
	testCreds(t)
	throttle := fakeAnswer{status: 429, headers: map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"},
		body: `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`}
	f := newFakeLambda(t, throttle, throttle, throttle, galeOK(`"done"`))
	l := lambdaAt(t, f.srv.URL, nil)
	r, err := l.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
	if err != nil || string(r.Payload) != `"done"` {
		t.Fatalf("%s, %v", r.Payload, err)
	}
	if st := l.Stats(); st.Throttled != 3 || st.Invocations != 4 || st.GaveUp != 0 || f.requests.Load() != 4 {
		t.Errorf("stats %+v, %d requests", st, f.requests.Load())
	}

	// A bare 429 without an error type counts too; out of retries it
	// is ErrThrottled and certainly did not run.
	f = newFakeLambda(t, fakeAnswer{status: 429, body: `{}`})
	l = lambdaAt(t, f.srv.URL, func(c *aws.LambdaConfig) { c.MaxThrottleRetries = 4 })
	_, err = l.Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
	if !errors.Is(err, aws.ErrThrottled) || !errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "reserved concurrency") {
		t.Errorf("error %v", err)
	}
	if st := l.Stats(); st.Throttled != 5 || st.GaveUp != 1 || f.requests.Load() != 5 {
		t.Errorf("stats %+v, %d requests", st, f.requests.Load())
	}
}

func TestLambdaFunctionErrorHeader(t *testing.T) {
	testCreds(t)
	unhandled := map[string]string{"X-Amz-Function-Error": "Unhandled"}
	for _, tc := range []struct {
		name, body, wantType, wantMsg string
	}{
		{"timeout", `{"errorMessage":"2024-05-01T10:00:00.000Z 1b2c Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}`, "timeout", "raise the function's timeout"},
		{"out of memory", `{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: 1b2c Error: Runtime exited with error: signal: killed"}`, "oom", "raise memory_mib"},
		{"exit", `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: 1b2c Error: Runtime exited with error: exit status 2"}`, "crash", "exit status 2"},
		{"handled", `{"errorMessage":"boom","errorType":"errorString"}`, "error", "errorString: boom"},
		{"not JSON", `upstream failure`, "error", "upstream failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLambda(t, fakeAnswer{status: 200, headers: unhandled, body: tc.body})
			_, err := lambdaAt(t, f.srv.URL, nil).Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
			var fe *backends.FunctionError
			if !errors.As(err, &fe) || fe.Type != tc.wantType || !strings.Contains(fe.Message, tc.wantMsg) || errors.Is(err, backends.ErrNotStarted) {
				t.Errorf("error %v; want a FunctionError %q containing %q", err, tc.wantType, tc.wantMsg)
			}
		})
	}
}

func TestLambdaServiceErrors(t *testing.T) {
	testCreds(t)
	for _, tc := range []struct {
		name       string
		answer     fakeAnswer
		notStarted bool
		want       string
		sentinel   error
	}{
		{"not found", fakeAnswer{404, map[string]string{"X-Amzn-ErrorType": "ResourceNotFoundException"}, `{"Type":"User","message":"Function not found: arn:aws:lambda:eu-west-1:1:function:fn"}`},
			true, "gale deploy --backend aws", aws.ErrNotDeployed},
		{"bad signature", fakeAnswer{403, map[string]string{"X-Amzn-ErrorType": "InvalidSignatureException"}, `{"message":"The request signature we calculated does not match"}`},
			true, "AWS_SECRET_ACCESS_KEY", aws.ErrCredentials},
		{"unknown key", fakeAnswer{403, map[string]string{"X-Amzn-ErrorType": "UnrecognizedClientException"}, `{"message":"The security token included in the request is invalid."}`},
			true, "AWS_ACCESS_KEY_ID", aws.ErrCredentials},
		{"access denied", fakeAnswer{403, map[string]string{"X-Amzn-ErrorType": "AccessDeniedException"}, `{"Message":"not authorized"}`},
			true, "lambda:InvokeFunction", nil},
		{"updating", fakeAnswer{409, map[string]string{"X-Amzn-ErrorType": "ResourceConflictException"}, `{"message":"The operation cannot be performed at this time."}`},
			true, "not ready", nil},
		{"too large", fakeAnswer{413, map[string]string{"X-Amzn-ErrorType": "RequestTooLargeException"}, `{"message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}`},
			true, "staging", aws.ErrPayloadTooLarge},
		{"service error", fakeAnswer{500, map[string]string{"X-Amzn-ErrorType": "ServiceException"}, `{"message":"internal"}`},
			false, "ServiceException", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLambda(t, tc.answer)
			_, err := lambdaAt(t, f.srv.URL, nil).Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
			if err == nil || errors.Is(err, backends.ErrNotStarted) != tc.notStarted || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want not-started=%v, containing %q", err, tc.notStarted, tc.want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tc.sentinel)
			}
			if f.requests.Load() != 1 {
				t.Errorf("%d requests: Invoke must not be retried", f.requests.Load())
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		f := newFakeLambda(t, galeOK(`1`))
		_, err := lambdaAt(t, f.srv.URL, nil).Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
		if !errors.Is(err, aws.ErrCredentials) || !errors.Is(err, backends.ErrNotStarted) || f.requests.Load() != 0 {
			t.Errorf("error %v, %d requests", err, f.requests.Load())
		}
	})
	t.Run("not a Gale worker", func(t *testing.T) {
		f := newFakeLambda(t, fakeAnswer{status: 200, body: `{"statusCode":200}`})
		_, err := lambdaAt(t, f.srv.URL, nil).Invoke(context.Background(), backends.Task{ID: "t", Payload: []byte(`{}`)})
		if err == nil || errors.Is(err, backends.ErrNotStarted) || !strings.Contains(err.Error(), "not a Gale response") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("no region", func(t *testing.T) {
		_, err := aws.NewLambda(context.Background(), aws.LambdaConfig{Function: "fn"})
		if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("error %v", err)
		}
	})
}

func TestLambdaConfigValidate(t *testing.T) {
	if err := (aws.LambdaConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	err := aws.LambdaConfig{Region: "Europe", Endpoint: "localhost:9000", Function: "a b", MemoryMiB: 64,
		Timeout: 20 * time.Minute, Concurrency: -1, Role: "gale-role", Architecture: "sparc", Staging: "gs://x"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`region "Europe"`, `endpoint "localhost:9000"`, `function "a b"`, "memory_mib 64",
		"timeout 20m0s", "concurrency -1", `role "gale-role"`, `architecture "sparc"`, `staging: "gs://x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestLambdaTraits(t *testing.T) {
	tr := aws.LambdaConfig{MemoryMiB: 3538, Architecture: "arm64"}.Traits()
	if tr.Name != "aws" || tr.VCPUs != 2 || tr.MemoryMiB != 3538 || tr.MaxConcurrency != 1000 || tr.MaxPayloadBytes != 6291456 ||
		tr.Timeout != 5*time.Minute || tr.PricePerGBSecond != 0.0000133334 || tr.PricePerRequest != 0.0000002 {
		t.Errorf("traits %+v", tr)
	}
	if tr := (aws.LambdaConfig{}).Traits(); tr.VCPUs != 1 || tr.PricePerGBSecond != 0.0000166667 {
		t.Errorf("default traits %+v", tr)
	}
}
