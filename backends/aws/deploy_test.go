package aws_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends/aws"
)

func TestBootstrapZipLayout(t *testing.T) {
	bin := bytes.Repeat([]byte("\x7fELF gale worker "), 1000)
	z, err := aws.BootstrapZip(bin)
	if err != nil {
		t.Fatal(err)
	}
	z2, _ := aws.BootstrapZip(bin)
	if !bytes.Equal(z, z2) {
		t.Error("two packages of the same binary differ")
	}
	le := binary.LittleEndian

	// Local file header: signature, then name "bootstrap", deflate, the
	// MS-DOS epoch (time 0, date 1980-01-01 = 0x0021).
	if le.Uint32(z[0:]) != 0x04034b50 || le.Uint16(z[8:]) != 8 || le.Uint16(z[10:]) != 0 || le.Uint16(z[12:]) != 0x0021 ||
		string(z[30:30+le.Uint16(z[26:])]) != "bootstrap" {
		t.Errorf("local header % x", z[:40])
	}
	// End of central directory: one entry.
	eocd := len(z) - 22
	if le.Uint32(z[eocd:]) != 0x06054b50 || le.Uint16(z[eocd+10:]) != 1 {
		t.Fatalf("end of central directory % x", z[eocd:])
	}
	cd := int(le.Uint32(z[eocd+16:]))
	// Central directory entry: made by Unix (high byte 3), deflate, the
	// epoch, name "bootstrap", external attributes = regular file 0755.
	if le.Uint32(z[cd:]) != 0x02014b50 || z[cd+5] != 3 || le.Uint16(z[cd+10:]) != 8 || le.Uint16(z[cd+12:]) != 0 ||
		le.Uint16(z[cd+14:]) != 0x0021 || le.Uint32(z[cd+38:]) != 0o100755<<16 ||
		string(z[cd+46:cd+46+int(le.Uint16(z[cd+28:]))]) != "bootstrap" {
		t.Errorf("central directory entry % x", z[cd:cd+60])
	}
	// And a zip reader sees exactly that.
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode() != 0o755 || !zr.File[0].Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("entries %+v", zr.File)
	}
	rc, _ := zr.File[0].Open()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, bin) {
		t.Error("the entry is not the binary")
	}
}

// fakeControlPlane records Lambda control-plane requests and plays a
// function that does not exist until CreateFunction, then is Pending once
// before Active. It answers CreateFunction and UpdateFunctionCode with the
// CodeSha256 of the package they carry, inline or, through fetch, from S3
// (without fetch, or when fetch fails, as Lambda does when it cannot get
// the object).
type fakeControlPlane struct {
	fetch func(bucket, key string) ([]byte, error)

	mu       sync.Mutex
	exists   bool
	polls    int
	calls    []string
	create   map[string]any
	auth     string
	eventCfg map[string]any
	config   map[string]any
	sha      string
}

// codeSha returns the base64 SHA-256 of the package code describes
// (ZipFile, or S3Bucket and S3Key), or the error message Lambda gives when
// it cannot read the object.
func (f *fakeControlPlane) codeSha(code map[string]any) (string, string) {
	var pkg []byte
	if z, ok := code["ZipFile"].(string); ok {
		pkg, _ = base64.StdEncoding.DecodeString(z)
	} else {
		bucket, _ := code["S3Bucket"].(string)
		key, _ := code["S3Key"].(string)
		var err error
		if f.fetch == nil {
			err = errors.New("no S3")
		} else {
			pkg, err = f.fetch(bucket, key)
		}
		if err != nil {
			return "", "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."
		}
	}
	sum := sha256.Sum256(pkg)
	return base64.StdEncoding.EncodeToString(sum[:]), ""
}

func (f *fakeControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if f.sha == "" {
		f.sha = "c2hh"
	}
	fn := func(state, update string) string {
		return fmt.Sprintf(`{"FunctionName":"gale","FunctionArn":"arn:aws:lambda:eu-west-1:123456789012:function:gale","CodeSha256":"%s","State":"%s","LastUpdateStatus":"%s"}`,
			f.sha, state, update)
	}
	refuse := func(msg string) {
		w.Header().Set("X-Amzn-ErrorType", "InvalidParameterValueException")
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"Type":"User","Message":%q}`, msg)
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/2015-03-31/functions/gale":
		if !f.exists {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			io.WriteString(w, `{"Type":"User","Message":"Function not found: arn:aws:lambda:eu-west-1:123456789012:function:gale"}`)
			return
		}
		f.polls++
		state, update := "Active", "Successful"
		if f.polls == 1 {
			state, update = "Pending", "InProgress"
		}
		io.WriteString(w, `{"Configuration":`+fn(state, update)+`}`)
	case r.Method == "POST" && r.URL.Path == "/2015-03-31/functions":
		f.auth = r.Header.Get("Authorization")
		f.create = nil
		json.Unmarshal(body, &f.create)
		code, _ := f.create["Code"].(map[string]any)
		sha, msg := f.codeSha(code)
		if msg != "" {
			refuse(msg)
			return
		}
		f.exists, f.sha, f.polls = true, sha, 0
		w.WriteHeader(201)
		io.WriteString(w, fn("Pending", "InProgress"))
	case r.Method == "PUT" && r.URL.Path == "/2015-03-31/functions/gale/code":
		f.create = nil
		json.Unmarshal(body, &f.create)
		sha, msg := f.codeSha(f.create)
		if msg != "" {
			refuse(msg)
			return
		}
		f.sha, f.polls = sha, 0
		io.WriteString(w, fn("Active", "InProgress"))
	case r.Method == "PUT" && r.URL.Path == "/2015-03-31/functions/gale/configuration":
		json.Unmarshal(body, &f.config)
		f.polls = 0
		io.WriteString(w, fn("Active", "InProgress"))
	case r.Method == "PUT" && r.URL.Path == "/2019-09-25/functions/gale/event-invoke-config":
		json.Unmarshal(body, &f.eventCfg)
		io.WriteString(w, `{"MaximumRetryAttempts":0}`)
	default:
		w.WriteHeader(400)
		io.WriteString(w, `{"message":"unexpected"}`)
	}
}

func TestDeployCreatesFunction(t *testing.T) {
	testCreds(t)
	f := &fakeControlPlane{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	zipFile, err := aws.BootstrapZip([]byte("\x7fELF not really"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", MemoryMiB: 2048, Timeout: 90 * time.Second,
		Role: "arn:aws:iam::123456789012:role/gale-worker", Architecture: "arm64"}
	res, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{PollInterval: time.Millisecond, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.State != "Active" || res.LastUpdateStatus != "Successful" || res.FunctionARN != "arn:aws:lambda:eu-west-1:123456789012:function:gale" {
		t.Errorf("result %+v", res)
	}
	c := f.create
	if c["FunctionName"] != "gale" || c["Runtime"] != "provided.al2023" || c["Handler"] != "bootstrap" ||
		c["Role"] != cfg.Role || c["MemorySize"] != 2048.0 || c["Timeout"] != 90.0 || c["PackageType"] != "Zip" ||
		strings.Join(toStrings(c["Architectures"]), ",") != "arm64" {
		t.Errorf("CreateFunction request %v", c)
	}
	code, _ := c["Code"].(map[string]any)
	if zb, _ := base64.StdEncoding.DecodeString(code["ZipFile"].(string)); !bytes.Equal(zb, zipFile) {
		t.Error("CreateFunction did not carry the package byte for byte")
	}
	if !strings.Contains(f.auth, "AWS4-HMAC-SHA256 Credential=AKIDGALETEST/") || !strings.Contains(f.auth, "/eu-west-1/lambda/aws4_request") {
		t.Errorf("Authorization %q", f.auth)
	}
	if f.eventCfg["MaximumRetryAttempts"] != 0.0 {
		t.Errorf("event invoke config %v", f.eventCfg)
	}
	if f.polls < 2 {
		t.Errorf("deploy returned after %d state checks; the first said Pending", f.polls)
	}

	// No role, no function: a clear error.
	f2 := &fakeControlPlane{}
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	cfg.Endpoint, cfg.Role = srv2.URL, ""
	if _, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{}); !errors.Is(err, aws.ErrNoRole) || !strings.Contains(err.Error(), "role: arn:aws:iam::") {
		t.Errorf("without a role: %v", err)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestDeployUpdatesFunction(t *testing.T) {
	testCreds(t)
	f := &fakeControlPlane{exists: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	zipFile, _ := aws.BootstrapZip([]byte("\x7fELF v2"))
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", MemoryMiB: 3008, Timeout: 10 * time.Minute}
	res, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{PollInterval: time.Millisecond, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.State != "Active" || res.LastUpdateStatus != "Successful" {
		t.Errorf("result %+v", res)
	}
	want := []string{"GET /2015-03-31/functions/gale", "PUT /2015-03-31/functions/gale/code", "GET /2015-03-31/functions/gale",
		"GET /2015-03-31/functions/gale", "PUT /2015-03-31/functions/gale/configuration", "GET /2015-03-31/functions/gale",
		"GET /2015-03-31/functions/gale", "PUT /2019-09-25/functions/gale/event-invoke-config", "GET /2015-03-31/functions/gale"}
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant (each update polled until Successful):\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if zb, _ := base64.StdEncoding.DecodeString(f.create["ZipFile"].(string)); !bytes.Equal(zb, zipFile) {
		t.Error("UpdateFunctionCode did not carry the package")
	}
	c := f.config
	if c["MemorySize"] != 3008.0 || c["Timeout"] != 600.0 || c["Runtime"] != "provided.al2023" || c["Handler"] != "bootstrap" || c["Role"] != nil {
		t.Errorf("UpdateFunctionConfiguration request %v", c)
	}
}

// randomBinary returns n pseudo-random bytes: a stand-in for a binary that
// deflate cannot shrink, so the zip is about as large as the binary.
func randomBinary(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// declaredZip returns a zip of one entry whose directory declares size
// unzipped bytes, as a zip of that much data does, without writing them:
// Lambda's unzipped limit is about the declared sizes.
func declaredZip(t *testing.T, size uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: aws.BootstrapName, Method: zip.Store, CompressedSize64: 4, UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("\x7fELF"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeployPackageTooLargeWithoutCodeLocation(t *testing.T) {
	testCreds(t)
	f := &fakeControlPlane{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", Role: "arn:aws:iam::123456789012:role/gale-worker"}
	zipFile, err := aws.BootstrapZip(randomBinary(1, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	limit := len(zipFile) - 1
	opts := aws.WithDirectLimit(aws.DeployOptions{PollInterval: time.Millisecond}, limit)
	_, err = aws.Deploy(context.Background(), cfg, zipFile, opts)
	t.Logf("over the limit: %v", err)
	if !errors.Is(err, aws.ErrPackageTooLarge) {
		t.Fatalf("a package of %d bytes over a limit of %d: %v, want ErrPackageTooLarge", len(zipFile), limit, err)
	}
	for _, want := range []string{fmt.Sprintf("the zip is %d bytes", len(zipFile)), fmt.Sprintf("%d bytes", limit),
		"code: s3://BUCKET/PREFIX in the backends.aws section", "--code s3://BUCKET/PREFIX", "-ldflags='-s -w'", "function's region"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("a refused package reached Lambda: %v", f.calls)
	}

	// At the limit it goes inline.
	opts = aws.WithDirectLimit(opts, len(zipFile))
	if _, err := aws.Deploy(context.Background(), cfg, zipFile, opts); err != nil {
		t.Fatalf("a package at the limit: %v", err)
	}
	code, _ := f.create["Code"].(map[string]any)
	if zb, _ := base64.StdEncoding.DecodeString(code["ZipFile"].(string)); !bytes.Equal(zb, zipFile) {
		t.Error("CreateFunction did not carry the package inline")
	}

	// The real limit: Lambda's 50 MiB in base64, with room for the rest of
	// the request, stays under its request limit.
	if b64 := 4 * ((aws.MaxDirectUploadBytes + 2) / 3); aws.MaxDirectUploadBytes > 50<<20 || b64+4096 >= 69905067 {
		t.Errorf("MaxDirectUploadBytes %d: its base64 (%d bytes) leaves too little room under Lambda's request limit", aws.MaxDirectUploadBytes, b64)
	}
}

func TestDeployRefusesUnzippedOverLimit(t *testing.T) {
	testCreds(t)
	f := &fakeControlPlane{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", Role: "arn:aws:iam::123456789012:role/gale-worker"}
	// Refused before anything is sent, code location or not: this one's
	// endpoint has nothing listening, so an attempt to upload would fail
	// differently.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	for _, opts := range []aws.DeployOptions{{}, {Code: "s3://code/gale", CodeS3: aws.S3Config{Endpoint: dead.URL, PathStyle: true}}} {
		_, err := aws.Deploy(context.Background(), cfg, declaredZip(t, 250<<20), opts)
		t.Logf("250 MiB unzipped: %v", err)
		if !errors.Is(err, aws.ErrPackageTooLarge) || !strings.Contains(err.Error(), "unzips to 262144000 bytes") ||
			!strings.Contains(err.Error(), "less than 262144000 bytes (250 MiB) unzipped") || !strings.Contains(err.Error(), "-ldflags='-s -w'") {
			t.Errorf("code %q: %v, want ErrPackageTooLarge naming the unzipped size and the limit", opts.Code, err)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("a refused package reached Lambda: %v", f.calls)
	}
	// One byte less is Lambda's to take.
	zipFile := declaredZip(t, 250<<20-1)
	if _, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{PollInterval: time.Millisecond}); err != nil {
		t.Fatalf("250 MiB less a byte unzipped: %v", err)
	}
	// Not a zip at all.
	if _, err := aws.Deploy(context.Background(), cfg, []byte("\x7fELF raw binary"), aws.DeployOptions{}); err == nil || !strings.Contains(err.Error(), "not a zip archive") {
		t.Errorf("a raw binary: %v", err)
	}
}

func TestDeployCodeLocationChecks(t *testing.T) {
	testCreds(t)
	zipFile, _ := aws.BootstrapZip([]byte("\x7fELF small"))
	cfg := aws.LambdaConfig{Region: "eu-west-1", Function: "gale"}
	// A bucket in another region than the function's: refused before any
	// request (no endpoint here is reachable).
	_, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{Code: "s3://code-us/gale", CodeS3: aws.S3Config{Region: "us-east-1"}})
	if err == nil || !strings.Contains(err.Error(), "in region us-east-1, but the function is in eu-west-1") {
		t.Errorf("a code bucket in another region: %v", err)
	}
	for _, bad := range []string{"https://bucket/prefix", "s3:///prefix", "s3://bucket/prefix?region=x"} {
		_, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{Code: bad})
		if err == nil || !strings.Contains(err.Error(), "code: ") || !strings.Contains(err.Error(), "not an s3://bucket/prefix URL") {
			t.Errorf("code %q: %v", bad, err)
		}
	}
}

func TestCodeKeyNamesTheFunction(t *testing.T) {
	sum := sha256.Sum256([]byte("pkg"))
	hexSum := fmt.Sprintf("%x", sum)
	for fn, want := range map[string]string{
		"gale":                       "gale-" + hexSum + ".zip",
		"gale:live":                  "gale-" + hexSum + ".zip",
		"123456789012:function:gale": "gale-" + hexSum + ".zip",
		"arn:aws:lambda:eu-west-1:123456789012:function:wc":      "wc-" + hexSum + ".zip",
		"arn:aws:lambda:eu-west-1:123456789012:function:wc:prod": "wc-" + hexSum + ".zip",
	} {
		if got := aws.CodeKey(fn, sum); got != want {
			t.Errorf("CodeKey(%q) = %q, want %q", fn, got, want)
		}
	}
}

// A code bucket S3 says is in another region: the fix is a bucket in the
// function's region.
func TestDeployCodeBucketInAnotherRegion(t *testing.T) {
	testCreds(t)
	f := &fakeControlPlane{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	// S3's answer to a request for a bucket of another region.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-bucket-region", "ap-south-1")
		w.WriteHeader(http.StatusMovedPermanently)
		if r.Method != http.MethodHead {
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Bucket>code</Bucket></Error>`)
		}
	}))
	defer redirect.Close()
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", Role: "arn:aws:iam::123456789012:role/gale-worker"}
	zipFile, _ := aws.BootstrapZip([]byte("\x7fELF small"))
	_, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{Code: "s3://code/gale", CodeS3: aws.S3Config{Endpoint: redirect.URL, PathStyle: true}})
	t.Logf("bucket in another region: %v", err)
	if err == nil || !strings.Contains(err.Error(), `the bucket "code" is not in the function's region eu-west-1`) {
		t.Errorf("a code bucket in another region: %v", err)
	}
	for _, c := range f.calls {
		if c != "GET /2015-03-31/functions/gale" {
			t.Errorf("Lambda got %s", c)
		}
	}
}

// Lambda reports another SHA-256 than the package's (the object at the
// code location is not the package): Deploy says so.
func TestDeployChecksCodeSha256(t *testing.T) {
	s3 := newFakeS3(t)
	s3.bucket(t, "code")
	testCreds(t)
	f := &fakeControlPlane{fetch: func(bucket, key string) ([]byte, error) { return []byte("another package"), nil }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := aws.LambdaConfig{Region: "eu-west-1", Endpoint: srv.URL, Function: "gale", Role: "arn:aws:iam::123456789012:role/gale-worker"}
	zipFile, _ := aws.BootstrapZip([]byte("\x7fELF small"))
	_, err := aws.Deploy(context.Background(), cfg, zipFile, aws.DeployOptions{Code: "s3://code/gale", CodeS3: aws.S3Config{Endpoint: s3.URL, PathStyle: true}})
	t.Logf("another package: %v", err)
	if err == nil || !strings.Contains(err.Error(), "CreateFunction") || !strings.Contains(err.Error(), "is not this package") || !strings.Contains(err.Error(), "delete it and deploy again") ||
		!strings.Contains(err.Error(), "s3://code/gale/gale-") {
		t.Errorf("Lambda took another package: %v", err)
	}
}
