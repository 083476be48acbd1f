package ibm

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestPackageAction(t *testing.T) {
	bin := []byte("\x7fELF fake binary for the test\n")
	z, err := PackageAction(bin)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte: the package depends only on the binary.
	again, _ := PackageAction(bin)
	if !bytes.Equal(z, again) {
		t.Fatal("two packages of one binary differ")
	}
	sum := sha256.Sum256(z)
	if got := hex.EncodeToString(sum[:]); got != packageSHA256 {
		t.Errorf("package sha256 %s, want %s (the zip layout changed)", got, packageSHA256)
	}
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "exec" {
		t.Fatalf("entries %v, want exactly exec", zr.File)
	}
	f := zr.File[0]
	if f.Mode().Perm() != 0o755 || !f.Mode().IsRegular() || !f.Modified.Equal(zipTime) {
		t.Errorf("exec mode %v modified %v", f.Mode(), f.Modified)
	}
	rc, _ := f.Open()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, bin) {
		t.Errorf("exec holds %q", got)
	}
	if _, err := PackageAction(nil); err == nil {
		t.Error("an empty binary was packaged")
	}
}

// packageSHA256 pins the zip of TestPackageAction's binary.
const packageSHA256 = "bcef5afa76e9da799af68e6731ff2b42274417e5a9f85f2cec5c120f3d80ec38"

func TestDeployRequest(t *testing.T) {
	f, url := newFakeWhisk(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 200, nil, `{}` })
	b := newTestBackend(t, url, func(c *Config) { c.MemoryMiB, c.Timeout, c.Action = 512, 90*time.Second, "gale" })
	z, _ := PackageAction([]byte("bin"))
	for _, dc := range []DeployConfig{{}, {Image: "openwhisk/action-golang-v1.22"}} {
		if err := b.Deploy(context.Background(), z, dc); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.reqs()
	if len(reqs) != 2 || reqs[0] != "PUT /api/v1/namespaces/ns1/actions/gale?overwrite=true" {
		t.Fatalf("requests %q", reqs)
	}
	for i, want := range []struct{ kind, image string }{{DefaultKind, ""}, {"blackbox", "openwhisk/action-golang-v1.22"}} {
		var doc struct {
			Namespace, Name string
			Exec            struct {
				Kind, Code, Image string
				Binary            bool
			}
			Limits struct{ Timeout, Memory, Logs int }
		}
		if err := json.Unmarshal(f.bodies[i], &doc); err != nil {
			t.Fatal(err)
		}
		code, _ := base64.StdEncoding.DecodeString(doc.Exec.Code)
		if doc.Name != "gale" || doc.Namespace != "ns1" || doc.Exec.Kind != want.kind || doc.Exec.Image != want.image || !doc.Exec.Binary || !bytes.Equal(code, z) {
			t.Errorf("request %d: %+v", i, doc)
		}
		if doc.Limits.Timeout != 90000 || doc.Limits.Memory != 512 {
			t.Errorf("limits %+v", doc.Limits)
		}
	}
}
