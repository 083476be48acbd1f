package ibm

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
)

// newCOSServer runs gofakes3, an S3 protocol server, on loopback: COS's
// data API is S3's.
func newCOSServer(t *testing.T) (url string, backend *s3mem.Backend) {
	t.Helper()
	backend = s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	return srv.URL, backend
}

func cosConfig(url string) COSConfig {
	return COSConfig{Endpoint: url, AccessKeyID: "hmac-id", SecretAccessKey: "hmac-secret", PathStyle: true, PartSize: 5 << 20}
}

var bucketSeq atomic.Int64

func TestCOSConformance(t *testing.T) {
	url, backend := newCOSServer(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		name := "bucket-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
		name = name[:min(len(name), 50)] + "-" + string(rune('a'+bucketSeq.Add(1)%26))
		if err := backend.CreateBucket(name); err != nil {
			t.Fatal(err)
		}
		s, err := NewCOS(cosConfig(url), name, "jobs/1")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestCOSErrors(t *testing.T) {
	url, _ := newCOSServer(t)
	s, err := NewCOS(cosConfig(url), "missing-bucket", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(context.Background(), "", "", 0); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("list in a missing bucket: %v", err)
	}
	err = COSConfig{AccessKeyID: "x", APIKey: "y"}.Validate()
	for _, want := range []string{"cos.endpoint is required", "not both", "both cos.access_key_id"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want %q", err, want)
		}
	}
	if s, err := NewCOS(COSConfig{Endpoint: url, APIKey: "key", ServiceInstanceID: "crn:x"}, "b", "p"); err != nil || s.String() != "cos://b/p" {
		t.Errorf("IAM config: %v %v", s, err)
	}
}
