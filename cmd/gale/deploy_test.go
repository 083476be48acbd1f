package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Outside a module that has the gale command, a deploy packages this very
// binary when it can run on the function's platform, and says so; when it
// cannot, the error says how to build one.
func TestFunctionBinaryOutsideGalesModule(t *testing.T) {
	t.Chdir(t.TempDir())
	var stderr bytes.Buffer
	got, err := functionBinary{tags: slimTags("gcp"), goarch: runtime.GOARCH}.load(context.Background(), &stderr)
	if runtime.GOOS != "linux" {
		if err == nil || !strings.Contains(err.Error(), "--binary") {
			t.Errorf("on %s: %v, want an error pointing to --binary", runtime.GOOS, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deployed %d bytes, not this binary's %d", len(got), len(want))
	}
	if !strings.Contains(stderr.String(), "deploying this gale binary as it is") || !strings.Contains(stderr.String(), "gale_slim,gale_gcp") {
		t.Errorf("the note says %q", &stderr)
	}

	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if other == "" {
		return
	}
	_, err = functionBinary{tags: slimTags("aws"), goarch: other}.load(context.Background(), &stderr)
	if err == nil || !strings.Contains(err.Error(), "GOARCH="+other) || !strings.Contains(err.Error(), "--binary") {
		t.Errorf("for linux/%s: %v, want an error saying how to build one", other, err)
	}

	// --binary wins, and a missing one is named.
	p := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(p, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := (functionBinary{binary: p}).load(context.Background(), &stderr); err != nil || string(b) != "\x7fELF" {
		t.Errorf("--binary: %q, %v", b, err)
	}
	if _, err := (functionBinary{binary: p + ".missing"}).load(context.Background(), &stderr); err == nil || !strings.Contains(err.Error(), "worker.missing") {
		t.Errorf("a missing --binary: %v", err)
	}
}
