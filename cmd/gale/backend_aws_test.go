//go:build linux && (!gale_slim || gale_aws)

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/awsstandin"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// isolateAWSEnv points the AWS SDK's chain, here and in every process the
// test starts, at the versitygw root user only.
func isolateAWSEnv(t *testing.T, gw *awsstandin.VersityGW) {
	t.Helper()
	for _, kv := range gw.Env(t.TempDir()) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestWordCountOnLambdaMatchesLocal runs `gale run wordcount --backend aws`
// against a pool of Lambda Runtime Interface Emulators, each running the
// real gale binary as its bootstrap, with input, output and staging on
// versitygw, and compares the output with the local backend's and with an
// independent count.
func TestWordCountOnLambdaMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	rie := awsstandin.RequireTool(t, awsstandin.EmulatorTool)
	vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
	dir := t.TempDir()
	gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(dir, "s3"), []string{"data", "stage"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	isolateAWSEnv(t, gw)
	ctx := context.Background()

	// The corpus, in two objects.
	s3cfg := aws.S3Config{Endpoint: gw.URL(), PathStyle: true, Region: "us-east-1"}
	data, err := aws.NewS3(ctx, s3cfg, "data", "")
	if err != nil {
		t.Fatal(err)
	}
	var corpus bytes.Buffer
	for i := range 2 {
		cfg := textgen.DefaultConfig()
		cfg.Size = 1<<20 + int64(i)*4099
		cfg.Seed = uint64(7 + i)
		path := filepath.Join(dir, fmt.Sprint("book-", i))
		if err := textgen.GenerateFile(ctx, path, cfg); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		corpus.Write(b)
		if err := data.Put(ctx, fmt.Sprintf("corpus/book-%d.txt", i), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}

	bin := buildGale(t)
	pool, err := awsstandin.StartPool(awsstandin.PoolConfig{Emulator: rie, Bootstrap: bin, Size: 3, Output: testOutput()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })

	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`backends:
  aws:
    endpoint: %s
    function: %s
    concurrency: 3
    memory_mib: 512
    staging: s3://stage/gale
    staging_s3: {endpoint: %s, region: us-east-1, path_style: true}
storage:
  s3.endpoint: %s
  s3.path_style: "true"
  s3.region: us-east-1
`, pool.URL(), awsstandin.FunctionName, gw.URL(), gw.URL())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GALE_CONFIG", config)

	run := func(backend string) (string, string) {
		cmd := exec.Command(bin, "run", "wordcount", "--input", "s3://data/corpus/", "--output", "s3://data/out-"+backend,
			"--backend", backend, "--workers", "3", "--partitions", "4", "--chunk-size", "256KiB", "-q", "--top", "0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale run wordcount --backend %s: %v\nstdout:\n%s\nstderr:\n%s", backend, err, &stdout, &stderr)
		}
		return stdout.String(), stderr.String()
	}
	localReport, _ := run("local")
	awsReport, awsStderr := run("aws")
	probeStandIn(t, bin, "aws")
	t.Logf("local:\n%s\naws (emulator pool):\n%s%s", localReport, awsReport, awsStderr)
	if !strings.Contains(awsReport, "on aws") || !strings.Contains(localReport, "on local") {
		t.Errorf("reports do not name their backends:\n%s\n%s", localReport, awsReport)
	}
	if !strings.Contains(awsReport, "estimated cost on aws") {
		t.Errorf("the report has no cost estimate:\n%s", awsReport)
	}
	if !strings.Contains(awsStderr, "Lambda invocations, 0 throttled") {
		t.Errorf("no invocation counts on stderr:\n%s", awsStderr)
	}
	st := pool.Stats()
	if st.Invocations < 4 || st.MaxBusy > 3 || st.Throttled != 0 {
		t.Errorf("emulator pool stats %+v", st)
	}

	parts := func(prefix string) map[string][]byte {
		infos, err := objstore.ListAll(ctx, data, prefix)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, info := range infos {
			name := strings.TrimPrefix(info.Key, prefix)
			if !strings.HasPrefix(name, "part-") {
				continue
			}
			// Object-store parts are part-NNNNN-JOB; runs differ in JOB.
			name = name[:len("part-00000")]
			rc, err := data.Get(ctx, info.Key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
		if len(out) == 0 {
			t.Fatalf("no part files under s3://data/%s", prefix)
		}
		return out
	}
	local, onLambda := parts("out-local/"), parts("out-aws/")
	if len(onLambda) != len(local) {
		t.Fatalf("aws wrote %d part files, local %d", len(onLambda), len(local))
	}
	for name, want := range local {
		if !bytes.Equal(onLambda[name], want) {
			t.Errorf("%s differs between the aws and local backends", name)
		}
	}
	want, err := wordref.Count(bytes.NewReader(corpus.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := wordref.Diff(sumCounts(t, onLambda), want); err != nil {
		t.Error(err)
	}
	stage, err := aws.NewS3(ctx, s3cfg, "stage", "")
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := objstore.ListAll(ctx, stage, ""); len(left) != 0 {
		t.Errorf("the staging bucket keeps %d objects", len(left))
	}
}

func testOutput() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return nil
}

// TestDeployAWSZipOnly cross-compiles a main package for linux/arm64 and
// checks the package: one bootstrap entry, mode 0755, an arm64 ELF.
func TestDeployAWSZipOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles a program")
	}
	dir := t.TempDir()
	t.Setenv("GALE_CONFIG", filepath.Join(dir, "none.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), []byte("backends:\n  aws:\n    architecture: arm64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "function.zip")
	var stdout, stderr bytes.Buffer
	root := newRootCmd()
	root.SetArgs([]string{"deploy", "--backend", "aws", "--main", "./testdata/hello", "--zip-only", out})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if err := root.Execute(); err != nil {
		t.Fatalf("gale deploy: %v\n%s", err, &stderr)
	}
	if !strings.Contains(stdout.String(), "linux/arm64 bootstrap") {
		t.Errorf("output %q", &stdout)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode() != 0o755 {
		t.Fatalf("entries %v", zr.File)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF binary: %v", err)
	}
	if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap is %v %v, want a static arm64 executable", f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap is dynamically linked (CGO_ENABLED=0 expected)")
		}
	}
	// The same flags, with --backend=aws and the subcommand form, give
	// the same bytes.
	out2 := filepath.Join(dir, "again.zip")
	root = newRootCmd()
	root.SetArgs([]string{"deploy", "aws", "--main", "./testdata/hello", "--zip-only", out2})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("two deploy packages of the same program differ")
	}
}

// createOnlyLambda plays the Lambda control plane for a function that does
// not exist until CreateFunction, which it records; the function is
// Active at once.
type createOnlyLambda struct {
	mu     sync.Mutex
	exists bool
	create map[string]any
}

func (l *createOnlyLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	fn := `{"FunctionName":"gale","FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:gale","State":"Active","LastUpdateStatus":"Successful"}`
	switch {
	case r.Method == "GET" && r.URL.Path == "/2015-03-31/functions/gale" && !l.exists:
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(404)
		io.WriteString(w, `{"Type":"User","Message":"Function not found"}`)
	case r.Method == "GET" && r.URL.Path == "/2015-03-31/functions/gale":
		io.WriteString(w, `{"Configuration":`+fn+`}`)
	case r.Method == "POST" && r.URL.Path == "/2015-03-31/functions":
		json.Unmarshal(body, &l.create)
		l.exists = true
		w.WriteHeader(201)
		io.WriteString(w, fn)
	case r.Method == "PUT" && r.URL.Path == "/2019-09-25/functions/gale/event-invoke-config":
		io.WriteString(w, `{"MaximumRetryAttempts":0}`)
	default:
		w.WriteHeader(400)
		io.WriteString(w, `{"message":"unexpected"}`)
	}
}

// TestDeployAWSCodeFlag deploys a binary with --code: the package lands on
// versitygw (the code_s3 endpoint of the config) under its
// content-addressed key, and CreateFunction names that object.
func TestDeployAWSCodeFlag(t *testing.T) {
	vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
	dir := t.TempDir()
	gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(dir, "s3"), []string{"code"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	isolateAWSEnv(t, gw)
	fake := &createOnlyLambda{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `backends:
  aws:
    region: us-east-1
    endpoint: %s
    role: arn:aws:iam::123456789012:role/gale-worker
    code_s3:
      endpoint: %s
      path_style: true
`, srv.URL, gw.URL()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GALE_CONFIG", config)
	bin := filepath.Join(dir, "bootstrap")
	binary := bytes.Repeat([]byte("\x7fELF a worker binary "), 5000)
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	zipFile, err := aws.BootstrapZip(binary)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("pkgs/gale-%x.zip", sha256.Sum256(zipFile))

	// A bad --code is a usage error naming the flag.
	root := newRootCmd()
	root.SetArgs([]string{"deploy", "--backend", "aws", "--binary", bin, "--code", "code/pkgs"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--code code/pkgs") || !strings.Contains(err.Error(), "not an s3://bucket/prefix URL") {
		t.Errorf("--code code/pkgs: %v", err)
	}
	if fake.exists {
		t.Fatal("a bad --code deployed")
	}

	var stdout, stderr bytes.Buffer
	root = newRootCmd()
	root.SetArgs([]string{"deploy", "--backend", "aws", "--binary", bin, "--code", "s3://code/pkgs"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if err := root.Execute(); err != nil {
		t.Fatalf("gale deploy --code: %v\n%s", err, &stderr)
	}
	if !strings.Contains(stdout.String(), "created arn:aws:lambda:us-east-1:123456789012:function:gale") ||
		!strings.Contains(stdout.String(), "uploaded to s3://code/"+key) {
		t.Errorf("output %q", &stdout)
	}
	if got, err := os.ReadFile(filepath.Join(gw.Root(), "code", filepath.FromSlash(key))); err != nil || !bytes.Equal(got, zipFile) {
		t.Errorf("the package on versitygw: %d bytes, %v; want the %d-byte zip of the binary", len(got), err, len(zipFile))
	}
	code, _ := fake.create["Code"].(map[string]any)
	if code["S3Bucket"] != "code" || code["S3Key"] != key || code["ZipFile"] != nil {
		t.Errorf("CreateFunction Code %v", code)
	}
}
