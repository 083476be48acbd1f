package objstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/objstore"
)

func TestLocation(t *testing.T) {
	l, err := objstore.NewLocation("aws", "s3", "bkt", "/jobs/42/")
	if err != nil {
		t.Fatal(err)
	}
	if l.String() != "s3://bkt/jobs/42" || l.Prefix() != "jobs/42/" || l.Bucket() != "bkt" {
		t.Errorf("location = %s, prefix %q, bucket %q", l, l.Prefix(), l.Bucket())
	}
	if got := l.Name("out/part-0"); got != "s3://bkt/jobs/42/out/part-0" {
		t.Errorf("Name = %q", got)
	}
	if k, err := l.WriteKey("put", "a/b"); err != nil || k != "jobs/42/a/b" {
		t.Errorf("WriteKey = %q, %v", k, err)
	}
	if k := l.StoreKey("jobs/42/a/b"); k != "a/b" {
		t.Errorf("StoreKey = %q", k)
	}
	// Reads accept keys other tools wrote; writes follow ValidateKey.
	if k, err := l.ReadKey("stat", "a//b"); err != nil || k != "jobs/42/a//b" {
		t.Errorf("ReadKey of a foreign key = %q, %v", k, err)
	}
	for _, bad := range []string{"", "/abs", "a//b", "../x"} {
		if _, err := l.WriteKey("put", bad); !errors.Is(err, objstore.ErrInvalidKey) || !strings.HasPrefix(err.Error(), "aws: put in s3://bkt/jobs/42: ") {
			t.Errorf("WriteKey(%q) = %v", bad, err)
		}
	}
	if _, err := l.ReadKey("get", ""); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("ReadKey of an empty key = %v", err)
	}
	if _, err := l.GetKey("k", -1); err == nil || !strings.Contains(err.Error(), "aws: get s3://bkt/jobs/42/k: negative offset -1") {
		t.Errorf("GetKey with a negative offset = %v", err)
	}

	root, err := objstore.NewLocation("gcp", "gs", "b", "")
	if err != nil || root.String() != "gs://b" || root.Prefix() != "" || root.Name("k") != "gs://b/k" {
		t.Errorf("root location = %s, %v", root, err)
	}
	for _, bucket := range []string{"", "a/b", "a b", `a\b`} {
		if _, err := objstore.NewLocation("gcp", "gs", bucket, "p"); err == nil || !strings.Contains(err.Error(), "write gs://bucket/prefix") {
			t.Errorf("NewLocation(bucket %q) = %v", bucket, err)
		}
	}
	if _, err := objstore.NewLocation("gcp", "gs", "b", "x/../y"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("NewLocation with a bad prefix = %v", err)
	}
}

func TestByteRange(t *testing.T) {
	cases := []struct {
		off, n int64
		want   string
	}{
		{0, -1, ""},
		{10, -1, "bytes=10-"},
		{0, 5, "bytes=0-4"},
		{7, 1, "bytes=7-7"},
		{1, 1<<63 - 1, "bytes=1-"}, // off+n overflows: to the end
	}
	for _, c := range cases {
		if got := objstore.ByteRange(c.off, c.n); got != c.want {
			t.Errorf("ByteRange(%d, %d) = %q, want %q", c.off, c.n, got, c.want)
		}
	}
}
