//go:build linux

package awsstandin_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/backends/objstore/objstoretest"
	"github.com/galeproject/gale/internal/awsstandin"
)

// isolateAWS points the SDK's default chain at the gateway's root user
// only.
func isolateAWS(t *testing.T, gw *awsstandin.VersityGW) {
	for _, kv := range gw.Env(t.TempDir()) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestS3OnVersityGW runs the store conformance suite against versitygw,
// which verifies SigV4 signatures and computes real multipart ETags.
func TestS3OnVersityGW(t *testing.T) {
	vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
	gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(t.TempDir(), "s3"), []string{"conf"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	isolateAWS(t, gw)
	n := 0
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		n++
		cfg := aws.S3Config{Endpoint: gw.URL(), PathStyle: true, Region: "us-east-1", PartSize: aws.MinPartSize}
		st, err := aws.NewS3(context.Background(), cfg, "conf", fmt.Sprintf("run-%d", n))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})

	// A wrong secret is refused by the signature check.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	st, err := aws.NewS3(context.Background(), aws.S3Config{Endpoint: gw.URL(), PathStyle: true, Region: "us-east-1"}, "conf", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), "k", strings.NewReader("v")); !errors.Is(err, aws.ErrCredentials) {
		t.Errorf("put with a wrong secret: %v", err)
	}
}
