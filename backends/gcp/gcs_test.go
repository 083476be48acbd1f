package gcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

// fakeGCS starts fake-gcs-server in-process on a loopback port and
// returns its JSON API endpoint.
func fakeGCS(t *testing.T, buckets ...string) (*fakestorage.Server, string) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
		// Its filesystem backend finds objects by path; the in-memory one
		// scans every object on each write, quadratic in the suite's
		// 1200-object listing test.
		StorageRoot: storageRoot(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	return srv, srv.URL() + "/storage/v1/"
}

// storageRoot is a directory for fake-gcs-server's files: in memory where
// the system has a tmpfs (the server syncs every object it writes).
func storageRoot(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "gale-gcs-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func newTestGCS(t *testing.T, endpoint, bucket, prefix string) *GCS {
	t.Helper()
	// A small chunk so that the conformance suite's multi-MiB objects go
	// as real multi-request resumable uploads.
	s, err := NewGCS(context.Background(), GCSConfig{Endpoint: endpoint, ChunkSize: 1 << 20}, bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestGCSConformance(t *testing.T) {
	_, endpoint := fakeGCS(t, "conf")
	n := 0
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		n++
		return newTestGCS(t, endpoint, "conf", "run"+strings.Repeat("x", n))
	})
}

func TestGCSAtBucketRoot(t *testing.T) {
	_, endpoint := fakeGCS(t, "root")
	s := newTestGCS(t, endpoint, "root", "")
	ctx := context.Background()
	if s.String() != "gs://root" {
		t.Errorf("String() = %q", s.String())
	}
	for _, k := range []string{"b/2", "a", "b/1"} {
		if err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := objstore.ListAll(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range all {
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "a,b/1,b/2" {
		t.Errorf("keys at the bucket root = %v", keys)
	}
	rc, err := s.Get(ctx, "b/2", 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "/2" {
		t.Errorf("Get(b/2, 1, 5) = %q, want %q", got, "/2")
	}
}

func TestGCSMissingBucket(t *testing.T) {
	_, endpoint := fakeGCS(t, "present")
	s := newTestGCS(t, endpoint, "absent", "p")
	ctx := context.Background()
	for name, err := range map[string]error{
		"Put":  s.Put(ctx, "k", strings.NewReader("x")),
		"Stat": func() error { _, err := s.Stat(ctx, "k"); return err }(),
		"Get":  func() error { _, err := s.Get(ctx, "k", 0, -1); return err }(),
	} {
		if !errors.Is(err, ErrNoSuchBucket) || !strings.Contains(err.Error(), `"absent"`) {
			t.Errorf("%s on a missing bucket: %v, want ErrNoSuchBucket naming it", name, err)
		}
	}
}

func TestGCSOpenerAndPrefixIsolation(t *testing.T) {
	srv, endpoint := fakeGCS(t, "b")
	ctx := context.Background()
	r := objstore.NewResolver()
	r.Register("gs", GCSOpener(GCSConfig{}))
	st, err := r.Open(ctx, "gs://b/jobs/1?endpoint="+endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if st.String() != "gs://b/jobs/1" {
		t.Errorf("String() = %q", st.String())
	}
	if err := st.Put(ctx, "out/part-0", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	// The object is where GCS itself says it is, under the prefix.
	obj, err := srv.GetObject("b", "jobs/1/out/part-0")
	if err != nil || !bytes.Equal(obj.Content, []byte("hello")) {
		t.Fatalf("server holds %q, %v; want hello under jobs/1/", obj.Content, err)
	}
	if _, err := r.Open(ctx, "gs://b/x?region=eu"); err == nil || !strings.Contains(err.Error(), `"region"`) {
		t.Errorf("unknown URL parameter: %v", err)
	}
	if _, err := r.Open(ctx, "gs:///x"); err == nil {
		t.Error("a gs URL without a bucket opened")
	}
}

func TestGCSConfigValidate(t *testing.T) {
	err := GCSConfig{Endpoint: "localhost:4443", ChunkSize: 1000}.Validate()
	if err == nil || !strings.Contains(err.Error(), "gs.endpoint") || !strings.Contains(err.Error(), "gs.chunk_size") {
		t.Errorf("Validate = %v, want both problems", err)
	}
}
