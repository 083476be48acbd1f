package gcp

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeWorker stands for the worker binary: a script, so the exec test can
// run it.
const fakeWorker = "#!/bin/sh\necho \"worker mode=$GALE_WORKER target=$FUNCTION_TARGET args=$*\"\n"

func TestSourceIsByteForByteStable(t *testing.T) {
	src, err := Source(SourceConfig{Worker: []byte(fakeWorker), Args: []string{"worker", "--flag=a b"}})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Source(SourceConfig{Worker: []byte(fakeWorker), Args: []string{"worker", "--flag=a b"}})
	if !bytes.Equal(src, again) {
		t.Fatal("two packagings of the same inputs differ")
	}
	golden := filepath.Join("testdata", "source.zip")
	if *update {
		if err := os.WriteFile(golden, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSourceIsByteForByteStable -update to create it)", err)
	}
	if !bytes.Equal(src, want) {
		t.Errorf("source zip (%d bytes) differs from %s (%d bytes)", len(src), golden, len(want))
	}

	// The layout, read back: names in order, modes, times, contents.
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []struct {
		name string
		mode os.FileMode
		data string
	}{
		{"go.mod", 0o644, "module galefunction\n\ngo 1.26\n"},
		{"function.go", 0o644, ""},
		{"gale-worker", 0o755, fakeWorker},
	}
	if len(zr.File) != len(wantFiles) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(wantFiles))
	}
	for i, f := range zr.File {
		w := wantFiles[i]
		if f.Name != w.name || f.Mode().Perm() != w.mode || !f.Modified.Equal(sourceTime) || f.Method != zip.Deflate {
			t.Errorf("entry %d = %s %v %v method %d, want %s %v %v deflate", i, f.Name, f.Mode(), f.Modified, f.Method, w.name, w.mode, sourceTime)
		}
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if w.data != "" && string(data) != w.data {
			t.Errorf("%s = %q, want %q", f.Name, data, w.data)
		}
		if f.Name == "function.go" && !strings.Contains(string(data), `argv := []string{path, "worker", "--flag=a b"}`) {
			t.Errorf("function.go does not pass the worker's arguments:\n%s", data)
		}
	}
}

func TestSourceRejectsNonLinuxWorker(t *testing.T) {
	if _, err := Source(SourceConfig{}); err == nil || !strings.Contains(err.Error(), "GOOS=linux") {
		t.Errorf("no worker: %v", err)
	}
	if _, err := Source(SourceConfig{Worker: []byte("MZ\x90\x00 windows")}); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("a PE binary: %v", err)
	}
}

// TestGeneratedFunctionExecsTheWorker builds the generated package the way
// the Go runtime does (a main package of its own that imports it) and runs
// it: the worker must replace the process before that main runs.
func TestGeneratedFunctionExecsTheWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the function runs on Linux")
	}
	src, err := Source(SourceConfig{Worker: []byte(fakeWorker), Args: []string{"worker"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zr, _ := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if err := os.WriteFile(filepath.Join(dir, f.Name), data, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	mainDir := filepath.Join(dir, "cmd", "runtime")
	os.MkdirAll(mainDir, 0o755)
	os.WriteFile(filepath.Join(mainDir, "main.go"), []byte(`package main

import (
	"fmt"

	_ "galefunction"
)

func main() { fmt.Println("the generated main ran") }
`), 0o644)
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(dir, "fn")
	build := exec.Command(goCmd, "build", "-o", bin, "./cmd/runtime")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the generated source: %v\n%s", err, out)
	}
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "FUNCTION_TARGET=Gale", "TMPDIR="+t.TempDir())
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("running the function: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "worker mode=gcp target=Gale args=worker" {
		t.Errorf("function printed %q, want the worker's line only", got)
	}
}

// recorder is a Cloud Functions v2 REST API and signed-URL stand-in that
// records what the client sends.
type recorder struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	exists bool
	calls  []string
	upload []byte
	ctype  string
	bodies map[string]map[string]any
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	call := req.Method + " " + req.URL.Path
	if q := req.URL.Query(); q.Get("functionId") != "" {
		call += "?functionId=" + q.Get("functionId")
	} else if q.Get("updateMask") != "" {
		call += "?updateMask=" + q.Get("updateMask")
	}
	r.calls = append(r.calls, call)
	const fn = "/v2/projects/my-project/locations/europe-west1/functions/gale"
	w.Header().Set("Content-Type", "application/json")
	switch {
	case req.Method == "POST" && req.URL.Path == "/v2/projects/my-project/locations/europe-west1/functions:generateUploadUrl":
		json.NewEncoder(w).Encode(map[string]any{
			"uploadUrl":     r.url + "/signed-upload?sig=x",
			"storageSource": map[string]any{"bucket": "gcf-v2-uploads", "object": "src.zip"},
		})
	case req.Method == "PUT" && req.URL.Path == "/signed-upload":
		r.upload, r.ctype = body, req.Header.Get("Content-Type")
	case req.Method == "GET" && req.URL.Path == fn:
		if !r.exists {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":404,"message":"Resource not found","status":"NOT_FOUND"}}`)
			return
		}
		io.WriteString(w, `{"name":"projects/my-project/locations/europe-west1/functions/gale"}`)
	case req.Method == "POST" && req.URL.Path == "/v2/projects/my-project/locations/europe-west1/functions",
		req.Method == "PATCH" && req.URL.Path == fn:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			r.t.Errorf("%s: body is not JSON: %v", call, err)
		}
		r.bodies[req.Method] = m
		r.exists = true
		json.NewEncoder(w).Encode(map[string]any{
			"name": "projects/my-project/locations/europe-west1/operations/op-1",
			"done": true,
			"response": map[string]any{
				"@type": "type.googleapis.com/google.cloud.functions.v2.Function",
				"name":  "projects/my-project/locations/europe-west1/functions/gale",
				"url":   "https://europe-west1-my-project.cloudfunctions.net/gale",
				"state": "ACTIVE",
			},
		})
	default:
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"code":400,"message":"unexpected call","status":"INVALID_ARGUMENT"}}`)
	}
}

func TestDeployCreatesThenUpdates(t *testing.T) {
	rec := &recorder{t: t, bodies: map[string]map[string]any{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	rec.url = srv.URL
	src, err := Source(SourceConfig{Worker: []byte(fakeWorker), Args: []string{"worker"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DeployConfig{Project: "my-project", Region: "europe-west1", Function: "gale", MemoryMiB: 2048, Timeout: 5 * time.Minute,
		MaxInstances: 200, Env: map[string]string{"GALE_LOG": "1"}}
	opts := []option.ClientOption{option.WithEndpoint(srv.URL), option.WithoutAuthentication()}
	ctx := context.Background()

	fn, err := Deploy(ctx, cfg, src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if fn.GetUrl() != "https://europe-west1-my-project.cloudfunctions.net/gale" {
		t.Errorf("deployed function URL = %q", fn.GetUrl())
	}
	if !bytes.Equal(rec.upload, src) || rec.ctype != "application/zip" {
		t.Errorf("uploaded %d bytes as %q, want the %d-byte source as application/zip", len(rec.upload), rec.ctype, len(src))
	}
	wantCalls := []string{
		"POST /v2/projects/my-project/locations/europe-west1/functions:generateUploadUrl",
		"PUT /signed-upload",
		"GET /v2/projects/my-project/locations/europe-west1/functions/gale",
		"POST /v2/projects/my-project/locations/europe-west1/functions?functionId=gale",
	}
	if strings.Join(rec.calls, "\n") != strings.Join(wantCalls, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	created, _ := json.Marshal(rec.bodies["POST"])
	for _, want := range []string{
		`"runtime":"go126"`, `"entryPoint":"Gale"`, `"storageSource":{"bucket":"gcf-v2-uploads","object":"src.zip"}`,
		`"availableMemory":"2048Mi"`, `"timeoutSeconds":300`, `"maxInstanceCount":200`, `"maxInstanceRequestConcurrency":1`,
		`"environmentVariables":{"GALE_LOG":"1"}`,
		// The REST client sends enums as numbers: GEN_2 and ALLOW_ALL.
		`"environment":2`, `"ingressSettings":1`,
	} {
		if !strings.Contains(string(created), want) {
			t.Errorf("CreateFunction body lacks %s:\n%s", want, created)
		}
	}

	// The second deploy updates it in place.
	rec.calls = nil
	if _, err := Deploy(ctx, cfg, src, opts...); err != nil {
		t.Fatal(err)
	}
	last := rec.calls[len(rec.calls)-1]
	if !strings.HasPrefix(last, "PATCH /v2/projects/my-project/locations/europe-west1/functions/gale?") ||
		!strings.Contains(last, "buildConfig.source") || !strings.Contains(last, "serviceConfig.availableMemory") {
		t.Errorf("second deploy ended with %q, want a PATCH with an update mask", last)
	}
}

func TestDeployValidates(t *testing.T) {
	_, err := Deploy(context.Background(), DeployConfig{Region: "eu west"}, nil)
	if err == nil || !strings.Contains(err.Error(), "gcp.project") || !strings.Contains(err.Error(), "gcp.region") {
		t.Errorf("Deploy with a bad config = %v", err)
	}
}
