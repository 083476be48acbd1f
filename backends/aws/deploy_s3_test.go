//go:build linux

package aws_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/awsstandin"
)

// s3Writes counts the requests that write to an S3 server: it is a reverse
// proxy in front of the server that records each PUT and POST (PutObject,
// the parts and completion of a multipart upload).
type s3Writes struct {
	URL    string
	mu     sync.Mutex
	writes []string
}

func newS3Writes(t *testing.T, target string) *s3Writes {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header the client signed
	w := &s3Writes{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			w.mu.Lock()
			w.writes = append(w.writes, r.Method+" "+r.URL.Path)
			w.mu.Unlock()
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

// take returns the writes seen since the last call.
func (w *s3Writes) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}

// TestDeployThroughS3 deploys packages through a code location on
// versitygw: the package is uploaded byte for byte under its
// content-addressed key, CreateFunction and UpdateFunctionCode name the
// object instead of carrying the zip, a re-deploy of the same package
// uploads nothing, and a package Lambda cannot read gives the fix.
func TestDeployThroughS3(t *testing.T) {
	vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
	isolateAWS(t)
	ctx := context.Background()
	dir := t.TempDir()
	gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(dir, "s3"), []string{"code"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	writes := newS3Writes(t, gw.URL())
	// The fake Lambda reads the object straight from versitygw, as Lambda
	// reads it from S3.
	bucket, err := aws.NewS3(ctx, aws.S3Config{Endpoint: gw.URL(), PathStyle: true, Region: "us-east-1"}, "code", "")
	if err != nil {
		t.Fatal(err)
	}
	read := func(key string) ([]byte, error) {
		rc, err := bucket.Get(ctx, key, 0, -1)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	f := &fakeControlPlane{fetch: func(b, key string) ([]byte, error) {
		if b != "code" {
			return nil, errors.New("no such bucket")
		}
		b2, err := read(key)
		if err != nil {
			t.Logf("fake Lambda: reading s3://code/%s: %v", key, err)
		}
		return b2, err
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()

	cfg := aws.LambdaConfig{Region: "us-east-1", Endpoint: srv.URL, Function: "gale", Role: "arn:aws:iam::123456789012:role/gale-worker"}
	// A part size of 5 MiB and a 6 MiB package: the upload is multipart,
	// as for a real package over the 8 MiB default part. (The entry is
	// stored, not deflated: random bytes do not shrink, and deflating
	// them under the race detector takes seconds.)
	opts := aws.DeployOptions{PollInterval: time.Millisecond, Code: "s3://code/gale/packages",
		CodeS3: aws.S3Config{Endpoint: writes.URL, PathStyle: true, PartSize: aws.MinPartSize}}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	zf, err := zw.CreateHeader(&zip.FileHeader{Name: aws.BootstrapName, Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	zf.Write(randomBinary(2, 6<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zipFile := zbuf.Bytes()
	sum := sha256.Sum256(zipFile)
	key := "gale/packages/gale-" + hex.EncodeToString(sum[:]) + ".zip"

	res, err := aws.Deploy(ctx, cfg, zipFile, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || !res.Uploaded || res.CodeLocation != "s3://code/"+key || res.CodeSha256 != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("result %+v, want created, uploaded to s3://code/%s", res, key)
	}
	if w := writes.take(); len(w) < 3 {
		t.Errorf("writes %v, want a multipart upload (create, parts, complete)", w)
	}
	got, err := read(key)
	if err != nil || !bytes.Equal(got, zipFile) {
		t.Fatalf("the object at %s: %d bytes, %v; want the package's %d bytes", key, len(got), err, len(zipFile))
	}
	// And on versitygw's disk, past S3.
	if disk, err := os.ReadFile(filepath.Join(gw.Root(), "code", filepath.FromSlash(key))); err != nil || !bytes.Equal(disk, zipFile) {
		t.Errorf("the file behind the object: %d bytes, %v", len(disk), err)
	}
	code, _ := f.create["Code"].(map[string]any)
	if code["S3Bucket"] != "code" || code["S3Key"] != key || code["ZipFile"] != nil {
		t.Errorf("CreateFunction Code %v, want S3Bucket code, S3Key %s and no ZipFile", code, key)
	}

	// The same package again: an update from the same object, no upload.
	res, err = aws.Deploy(ctx, cfg, zipFile, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Uploaded || res.CodeLocation != "s3://code/"+key {
		t.Errorf("re-deploy result %+v, want updated from the object already there", res)
	}
	if w := writes.take(); len(w) != 0 {
		t.Errorf("the re-deploy of the same package wrote %v", w)
	}
	if f.create["S3Bucket"] != "code" || f.create["S3Key"] != key || f.create["ZipFile"] != nil {
		t.Errorf("UpdateFunctionCode request %v, want S3Bucket code, S3Key %s and no ZipFile", f.create, key)
	}

	// A small package goes through S3 too once a code location is set,
	// under its own key; the first stays.
	small, _ := aws.BootstrapZip([]byte("\x7fELF v2"))
	sum2 := sha256.Sum256(small)
	key2 := "gale/packages/gale-" + hex.EncodeToString(sum2[:]) + ".zip"
	res, err = aws.Deploy(ctx, cfg, small, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || res.CodeLocation != "s3://code/"+key2 || f.create["S3Key"] != key2 {
		t.Errorf("small package: result %+v, request %v", res, f.create)
	}
	if w := writes.take(); len(w) != 1 {
		t.Errorf("small package writes %v, want one PutObject", w)
	}
	objs, err := objstore.ListAll(ctx, bucket, "gale/packages/")
	if err != nil || len(objs) != 2 {
		t.Errorf("objects under the code location: %v, %v; want both packages", objs, err)
	}
	// Lambda cannot read the object: the error says what it needs.
	f2 := &fakeControlPlane{}
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	cfg.Endpoint = srv2.URL
	_, err = aws.Deploy(ctx, cfg, small, opts)
	t.Logf("Lambda cannot read the package: %v", err)
	if err == nil || !strings.Contains(err.Error(), "CreateFunction") || !strings.Contains(err.Error(), "s3:GetObject") ||
		!strings.Contains(err.Error(), "s3://code/gale/packages") || !strings.Contains(err.Error(), "function's region, us-east-1") {
		t.Errorf("Lambda cannot read the package: %v", err)
	}

	// A code bucket that does not exist: the upload names it.
	opts.Code = "s3://no-such-bucket/p"
	_, err = aws.Deploy(ctx, cfg, small, opts)
	if !errors.Is(err, aws.ErrNoSuchBucket) || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Errorf("a missing code bucket: %v", err)
	}
}
