package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

// fakeS3 is an S3 protocol server on loopback that records what it saw.
type fakeS3 struct {
	URL     string
	backend *s3mem.Backend

	createUploads atomic.Int64 // POST ?uploads
	uploadParts   atomic.Int64 // PUT ?uploadId
	aborts        atomic.Int64 // DELETE ?uploadId
	completes     atomic.Int64 // POST ?uploadId

	mu         sync.Mutex
	accessKeys map[string]bool // from Authorization: ... Credential=KEY/date/region/...
	regions    map[string]bool
}

var credRE = regexp.MustCompile(`Credential=([^/]+)/[^/]+/([^/]+)/s3/`)

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New(), accessKeys: map[string]bool{}, regions: map[string]bool{}}
	faker := gofakes3.New(f.backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	inner := faker.Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, hasUploads := q["uploads"]
		switch {
		case r.Method == http.MethodPost && hasUploads:
			f.createUploads.Add(1)
		case q.Get("uploadId") != "" && r.Method == http.MethodPut:
			f.uploadParts.Add(1)
		case q.Get("uploadId") != "" && r.Method == http.MethodDelete:
			f.aborts.Add(1)
		case q.Get("uploadId") != "" && r.Method == http.MethodPost:
			f.completes.Add(1)
		}
		if m := credRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			f.mu.Lock()
			f.accessKeys[m[1]] = true
			f.regions[m[2]] = true
			f.mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeS3) sawKey(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accessKeys[k]
}

func (f *fakeS3) sawRegion(r string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.regions[r]
}

func (f *fakeS3) bucket(t *testing.T, name string) {
	t.Helper()
	if err := f.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
}

// isolateEnv cuts the SDK off from the machine's AWS configuration and
// gives it static credentials through the environment.
func isolateEnv(t *testing.T, accessKey string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      accessKey,
		"AWS_SECRET_ACCESS_KEY":                  "secret-" + accessKey,
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_S3":                    "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ROLE_ARN":                           "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_MAX_ATTEMPTS":                       "",
	} {
		t.Setenv(k, v)
	}
}

func testConfig(f *fakeS3) aws.S3Config {
	cfg := aws.DefaultS3Config()
	cfg.Endpoint = f.URL
	cfg.PathStyle = true
	return cfg
}

func newStore(t *testing.T, cfg aws.S3Config, bucket, prefix string) *aws.S3 {
	t.Helper()
	st, err := aws.NewS3(t.Context(), cfg, bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertNoPendingUploads fails if a multipart upload was left open.
func assertNoPendingUploads(t *testing.T, st *aws.S3) {
	t.Helper()
	out, err := st.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: sdkaws.String(st.Bucket())})
	if err != nil {
		// gofakes3 answers NoSuchUpload for a bucket without uploads.
		if !strings.Contains(err.Error(), "NoSuchUpload") {
			t.Errorf("ListMultipartUploads: %v", err)
		}
		return
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload of %q (%s) left open", sdkaws.ToString(u.Key), sdkaws.ToString(u.UploadId))
	}
}

func TestS3Conformance(t *testing.T) {
	isolateEnv(t, "AKIDCONFORMANCE")
	f := newFakeS3(t)
	cfg := testConfig(f)
	cfg.PartSize = aws.MinPartSize // 5 MiB + 1 and 17 MiB go multipart
	n := 0
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		n++
		bucket := fmt.Sprintf("conformance-%d", n)
		f.bucket(t, bucket)
		// An object outside the store's prefix must stay invisible.
		if _, err := f.backend.PutObject(bucket, "outside", nil, strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
		st := newStore(t, cfg, bucket, "jobs/7/")
		t.Cleanup(func() { assertNoPendingUploads(t, st) })
		return st
	})
	if f.uploadParts.Load() == 0 || f.aborts.Load() == 0 {
		t.Fatalf("the suite sent %d UploadPart and %d AbortMultipartUpload requests, want both > 0", f.uploadParts.Load(), f.aborts.Load())
	}
	if !f.sawKey("AKIDCONFORMANCE") {
		t.Fatal("requests were not signed with the environment's access key")
	}
}

func TestS3MultipartUsed(t *testing.T) {
	isolateEnv(t, "AKIDMULTI")
	f := newFakeS3(t)
	f.bucket(t, "b")
	st := newStore(t, testConfig(f), "b", "")
	ctx := t.Context()

	if st.String() != "s3://b" {
		t.Fatalf("String() = %q, want s3://b", st.String())
	}
	small := objstoretest.Data(1, 1*objstoretest.MiB)
	if err := st.Put(ctx, "small", bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	if f.createUploads.Load() != 0 || f.uploadParts.Load() != 0 {
		t.Fatalf("a 1 MiB Put used multipart (%d creates, %d parts)", f.createUploads.Load(), f.uploadParts.Load())
	}

	big := objstoretest.Data(2, 17*objstoretest.MiB)
	if err := st.Put(ctx, "big", io.MultiReader(bytes.NewReader(big))); err != nil {
		t.Fatal(err)
	}
	// 17 MiB in 8 MiB parts: 8 + 8 + 1.
	if c, p, d := f.createUploads.Load(), f.uploadParts.Load(), f.completes.Load(); c != 1 || p != 3 || d != 1 {
		t.Fatalf("17 MiB Put: %d CreateMultipartUpload, %d UploadPart, %d Complete; want 1, 3, 1", c, p, d)
	}
	rc, err := st.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get of the multipart object: %d bytes, %v; want the %d bytes written", len(got), err, len(big))
	}
	// The object is stored whole, under the key.
	obj, err := f.backend.HeadObject("b", "big")
	if err != nil || obj.Size != int64(len(big)) {
		t.Fatalf("server holds %+v, %v", obj, err)
	}
}

type failAfter struct {
	n   int
	err error
}

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = byte(i)
	}
	r.n -= len(p)
	return len(p), nil
}

func TestS3FailedMultipartIsAborted(t *testing.T) {
	isolateEnv(t, "AKIDABORT")
	f := newFakeS3(t)
	f.bucket(t, "b")
	cfg := testConfig(f)
	cfg.PartSize = aws.MinPartSize
	st := newStore(t, cfg, "b", "p")
	boom := errors.New("source broke")
	err := st.Put(t.Context(), "k", &failAfter{n: 12 * objstoretest.MiB, err: boom})
	if err == nil || !strings.Contains(err.Error(), "s3://b/p/k") {
		t.Fatalf("Put from a failing reader = %v, want an error naming s3://b/p/k", err)
	}
	if f.uploadParts.Load() == 0 || f.aborts.Load() != 1 {
		t.Fatalf("%d parts uploaded, %d aborts; want parts and exactly one abort", f.uploadParts.Load(), f.aborts.Load())
	}
	assertNoPendingUploads(t, st)

	// Cancelled after two parts: the abort still reaches the server.
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelAfter{r: &failAfter{n: 1 << 40}, n: 11 * objstoretest.MiB, cancel: cancel}
	err = st.Put(ctx, "k2", r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put = %v, want context.Canceled", err)
	}
	if f.aborts.Load() != 2 {
		t.Fatalf("%d aborts after a cancelled multipart Put, want 2", f.aborts.Load())
	}
	assertNoPendingUploads(t, st)
	if _, err := st.Stat(t.Context(), "k2"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("Stat after a cancelled Put = %v, want ErrNotExist", err)
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestS3MissingBucket(t *testing.T) {
	isolateEnv(t, "AKIDNOBUCKET")
	f := newFakeS3(t)
	st := newStore(t, testConfig(f), "no-such-bucket", "x")
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, aws.ErrNoSuchBucket) || errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("%s in a missing bucket = %v, want ErrNoSuchBucket and not ErrNotExist", op, err)
			return
		}
		if !strings.Contains(err.Error(), "s3://no-such-bucket/x/") || !strings.Contains(err.Error(), "create it") {
			t.Errorf("%s error %q does not name the object and the fix", op, err)
		}
	}
	check("Put", st.Put(ctx, "k", strings.NewReader("v")))
	_, err := st.Stat(ctx, "k")
	check("Stat", err)
	_, err = st.Get(ctx, "k", 0, -1)
	check("Get", err)
	_, err = st.List(ctx, "", "", 0)
	check("List", err)
}

func TestS3CredentialsFromEnv(t *testing.T) {
	isolateEnv(t, "AKIDFROMENV")
	t.Setenv("AWS_REGION", "eu-west-3")
	f := newFakeS3(t)
	f.bucket(t, "b")
	st := newStore(t, testConfig(f), "b", "")
	if err := st.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	if !f.sawKey("AKIDFROMENV") || !f.sawRegion("eu-west-3") {
		t.Fatalf("requests not signed with AKIDFROMENV in eu-west-3 (saw %v, %v)", f.accessKeys, f.regions)
	}
}

func TestS3CredentialsFromSharedFile(t *testing.T) {
	isolateEnv(t, "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[gale]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[profile gale]\nregion = ap-south-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", conf)
	f := newFakeS3(t)
	f.bucket(t, "b")

	cfg := testConfig(f)
	if err := newStore(t, cfg, "b", "").Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	if !f.sawKey("AKIDDEFAULT") {
		t.Fatalf("default profile's key not used (saw %v)", f.accessKeys)
	}
	cfg.Profile = "gale"
	if err := newStore(t, cfg, "b", "").Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	if !f.sawKey("AKIDPROFILE") || !f.sawRegion("ap-south-1") {
		t.Fatalf("profile gale's key and region not used (saw %v, %v)", f.accessKeys, f.regions)
	}
}

func TestS3NoCredentials(t *testing.T) {
	isolateEnv(t, "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	f := newFakeS3(t)
	f.bucket(t, "b")
	cfg := testConfig(f)
	cfg.MaxAttempts = 1
	st := newStore(t, cfg, "b", "")
	err := st.Put(t.Context(), "k", strings.NewReader("v"))
	if !errors.Is(err, aws.ErrCredentials) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "s3://b/k") {
		t.Fatalf("Put without credentials = %v, want ErrCredentials naming the object and the fix", err)
	}
}

func TestS3NoRegion(t *testing.T) {
	isolateEnv(t, "AKID")
	_, err := aws.NewS3(t.Context(), aws.DefaultS3Config(), "b", "p")
	if err == nil || !strings.Contains(err.Error(), "set AWS_REGION or s3.region") || !strings.Contains(err.Error(), "s3://b/p") {
		t.Fatalf("NewS3 without a region = %v, want the fix and the store's URL", err)
	}
	// A custom endpoint needs no region.
	cfg := aws.DefaultS3Config()
	cfg.Endpoint = "http://127.0.0.1:9000"
	if _, err := aws.NewS3(t.Context(), cfg, "b", "p"); err != nil {
		t.Fatalf("NewS3 with an endpoint and no region: %v", err)
	}
}

func TestS3UnreachableEndpoint(t *testing.T) {
	isolateEnv(t, "AKID")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := aws.DefaultS3Config()
	cfg.Endpoint = "http://" + addr
	cfg.PathStyle = true
	cfg.MaxAttempts = 1
	st := newStore(t, cfg, "b", "")
	_, err = st.Stat(t.Context(), "k")
	if err == nil || !strings.Contains(err.Error(), "http://"+addr) || !strings.Contains(err.Error(), "s3://b/k") {
		t.Fatalf("Stat on an unreachable endpoint = %v, want an error naming the endpoint and the object", err)
	}
}

func TestS3ConfigValidate(t *testing.T) {
	if err := aws.DefaultS3Config().Validate(); err != nil {
		t.Fatalf("DefaultS3Config invalid: %v", err)
	}
	if err := (aws.S3Config{}).Validate(); err != nil {
		t.Fatalf("zero S3Config invalid: %v", err)
	}
	bad := aws.S3Config{PartSize: 1 << 20, Concurrency: -1, MaxAttempts: -2, Region: "eu west", Endpoint: "localhost:9000"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config passed")
	}
	for _, want := range []string{"part_size", "concurrency", "max_attempts", "region", "endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not report %s", err, want)
		}
	}
	if _, err := aws.NewS3(t.Context(), bad, "b", ""); err == nil {
		t.Fatal("NewS3 accepted an invalid config")
	}
}

func TestS3InvalidNames(t *testing.T) {
	isolateEnv(t, "AKID")
	cfg := aws.DefaultS3Config()
	cfg.Region = "us-east-1"
	for _, c := range [][2]string{{"", "p"}, {"a/b", ""}, {"b", "a//b"}, {"b", "../x"}} {
		if _, err := aws.NewS3(t.Context(), cfg, c[0], c[1]); err == nil {
			t.Errorf("NewS3(bucket %q, prefix %q) succeeded", c[0], c[1])
		}
	}
}

func TestS3Opener(t *testing.T) {
	isolateEnv(t, "AKIDOPENER")
	f := newFakeS3(t)
	f.bucket(t, "data")
	r := objstore.NewResolver()
	r.Register("s3", aws.S3Opener(aws.DefaultS3Config()))
	ctx := t.Context()

	raw := "s3://data/jobs/42?endpoint=" + f.URL + "&path_style=true&region=eu-north-1"
	st, err := r.Open(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if st.String() != "s3://data/jobs/42" {
		t.Fatalf("String() = %q, want s3://data/jobs/42", st.String())
	}
	if err := st.Put(ctx, "out/part-0", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	obj, err := f.backend.HeadObject("data", "jobs/42/out/part-0")
	if err != nil || obj.Size != 5 {
		t.Fatalf("object not stored under the URL's prefix: %+v, %v", obj, err)
	}
	if !f.sawRegion("eu-north-1") {
		t.Fatalf("region from the URL not used (saw %v)", f.regions)
	}
	all, err := objstore.ListAll(ctx, st, "")
	if err != nil || len(all) != 1 || all[0].Key != "out/part-0" {
		t.Fatalf("ListAll = %v, %v; want the key relative to the prefix", all, err)
	}

	for _, bad := range []string{"s3:///nobucket", "s3://b/p?colour=red", "s3://b/p?path_style=maybe"} {
		if _, err := r.Open(ctx, bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Open(%q) = %v, want an error naming the URL", bad, err)
		}
	}
}

func BenchmarkS3Put17MiB(b *testing.B) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "s", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(b.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(b.TempDir(), "none"),
	} {
		b.Setenv(k, v)
	}
	backend := s3mem.New()
	if err := backend.CreateBucket("b"); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	defer srv.Close()
	cfg := aws.DefaultS3Config()
	cfg.Endpoint, cfg.PathStyle = srv.URL, true
	st, err := aws.NewS3(b.Context(), cfg, "b", "")
	if err != nil {
		b.Fatal(err)
	}
	data := objstoretest.Data(1, 17<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := st.Put(b.Context(), "bench", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestS3ErrorHints checks the fixes suggested for errors gofakes3 does not
// produce, from a server that answers every request with one S3 error.
func TestS3ErrorHints(t *testing.T) {
	isolateEnv(t, "AKIDHINTS")
	for _, c := range []struct {
		status int
		code   string
		want   []string
		is     error
	}{
		{403, "AccessDenied", []string{"access denied", "s3:GetObject"}, nil},
		{403, "InvalidAccessKeyId", []string{"AWS_ACCESS_KEY_ID"}, aws.ErrCredentials},
		{301, "PermanentRedirect", []string{"set AWS_REGION or s3.region"}, nil},
		{404, "NoSuchBucket", []string{"create it"}, aws.ErrNoSuchBucket},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(c.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>canned</Message><RequestId>1</RequestId></Error>`, c.code)
		}))
		cfg := aws.DefaultS3Config()
		cfg.Endpoint, cfg.PathStyle, cfg.MaxAttempts = srv.URL, true, 1
		st := newStore(t, cfg, "b", "p")
		_, err := st.Get(t.Context(), "k", 0, -1)
		srv.Close()
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: Get = %v, want an error wrapping %v", c.code, err, c.is)
			continue
		}
		for _, w := range append(c.want, "s3://b/p/k") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.code, err, w)
			}
		}
	}
}

// A CopyObject whose answer is cut short (the copy happened, the
// connection broke mid-answer) is retried, not a failed commit: the
// chaos suite's cut storage faults met it.
func TestS3CopyRetriesCutAnswer(t *testing.T) {
	isolateEnv(t, "AKIDCUT")
	backend := s3mem.New()
	if err := backend.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	inner := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	h := faulty.NewHTTP(inner, faulty.HTTPConfig{Rule: func(r *http.Request, n int) faulty.StoreFault {
		if r.Header.Get("X-Amz-Copy-Source") != "" && n == 1 {
			return faulty.StoreCut
		}
		return faulty.StoreNone
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := aws.DefaultS3Config()
	cfg.Endpoint, cfg.PathStyle = srv.URL, true
	st, err := aws.NewS3(t.Context(), cfg, "b", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), "from", strings.NewReader("payload")); err != nil {
		t.Fatal(err)
	}
	if err := st.Copy(t.Context(), "from", "to"); err != nil {
		t.Fatalf("copy with its first answer cut: %v", err)
	}
	if s := h.Stats(); s.Cut != 1 {
		t.Fatalf("the handler cut %d answers, want 1", s.Cut)
	}
	rc, err := st.Get(t.Context(), "to", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "payload" {
		t.Fatalf("copied object: %q, %v", b, err)
	}
}

// The Lambda backend's staging store is in the function's region unless
// staging_s3 says otherwise, and its messages name the keys that set it
// (backends.aws.staging_s3.region), not the storage options' s3.region.
func TestStagingStoreRegionAndKeys(t *testing.T) {
	isolateEnv(t, "AKID")
	l, err := aws.NewLambda(t.Context(), aws.LambdaConfig{Region: "eu-west-1", Function: "fn", Staging: "s3://stage/gale"})
	if err != nil {
		t.Fatalf("NewLambda with a region and a staging bucket: %v", err)
	}
	l.Close()
	cfg := aws.DefaultS3Config()
	cfg.Keys = "backends.aws.staging_s3."
	_, err = aws.NewS3(t.Context(), cfg, "b", "p")
	if err == nil || !strings.Contains(err.Error(), "set AWS_REGION or backends.aws.staging_s3.region") {
		t.Errorf("NewS3 without a region = %v, want the staging key", err)
	}
	err = aws.LambdaConfig{Function: "fn", Staging: "s3://stage/gale", StagingS3: aws.S3Config{Region: "eu west"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `staging_s3.region "eu west"`) {
		t.Errorf("Validate of a bad staging region = %v, want staging_s3.region named", err)
	}
}
