//go:build unix

package awsstandin

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials of the versitygw root user that VersityGW starts.
const (
	VersityAccessKey = "GALETESTACCESSKEY"
	VersitySecretKey = "gale-test-secret-key-0123456789"
)

// VersityGW is a versitygw S3 gateway on loopback serving a directory
// through its posix backend: each top-level directory is a bucket.
type VersityGW struct {
	url   string
	root  string
	p     *proc
	procs sync.WaitGroup
	once  sync.Once
}

// StartVersityGW starts versitygw (binary: "" for Tool(VersityGWTool)) on a
// free loopback port, serving root (created if missing) with the given
// buckets created as directories. output receives its log; nil discards
// it. Close stops it.
func StartVersityGW(binary, root string, buckets []string, output io.Writer) (*VersityGW, error) {
	if binary == "" {
		p, err := Tool(VersityGWTool)
		if err != nil {
			return nil, err
		}
		binary = p
	}
	if output == nil {
		output = io.Discard
	}
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(root, b), 0o755); err != nil {
			return nil, err
		}
	}
	// Object metadata goes to a sidecar directory, so the root's
	// filesystem need not support extended attributes.
	// (versitygw compares paths as strings: it must not share a prefix
	// with root.)
	sidecar := filepath.Join(filepath.Dir(root), "versitygw-sidecar-"+filepath.Base(root))
	if strings.HasPrefix(sidecar, root) {
		sidecar = filepath.Join(filepath.Dir(root), "_versitygw-sidecar")
	}
	if err := os.MkdirAll(sidecar, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		g := &VersityGW{url: "http://" + addr, root: root}
		cmd := exec.Command(binary, "--access", VersityAccessKey, "--secret", VersitySecretKey, "--port", addr,
			"--region", "us-east-1", "--quiet", "posix", "--sidecar", sidecar, root)
		cmd.Env = os.Environ()
		cmd.Stdout, cmd.Stderr = output, output
		p, err := startProc(cmd, &g.procs)
		if err != nil {
			return nil, err
		}
		g.p = p
		if err := waitListening(p, addr, 30*time.Second); err != nil {
			p.stop()
			g.procs.Wait()
			lastErr = err
			continue
		}
		return g, nil
	}
	return nil, fmt.Errorf("awsstandin: starting versitygw: %w", lastErr)
}

// URL returns the gateway's endpoint.
func (g *VersityGW) URL() string { return g.url }

// Root returns the directory the gateway serves.
func (g *VersityGW) Root() string { return g.root }

// Env returns the environment entries that point the AWS SDK's default
// chain at the gateway's root user, isolated from the machine's own AWS
// configuration (IsolatedEnv).
func (g *VersityGW) Env(dir string) []string { return IsolatedEnv(dir) }

// IsolatedEnv returns the environment entries that point the AWS SDK's
// default chain at the stand-ins' credentials (versitygw's root user; the
// emulator checks none) in us-east-1, and away from everything of the
// machine's own: profiles, config and credentials files (named under dir,
// which need not exist), endpoints, roles and instance metadata.
func IsolatedEnv(dir string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + VersityAccessKey, "AWS_SECRET_ACCESS_KEY=" + VersitySecretKey, "AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=", "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_S3=", "AWS_ENDPOINT_URL_LAMBDA=",
		"AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_MAX_ATTEMPTS=",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
	}
}

// Isolate sets IsolatedEnv(dir) in this process's environment, which the
// processes it starts inherit: for benchmarks and other programs (tests
// set the entries with t.Setenv).
func Isolate(dir string) error {
	for _, kv := range IsolatedEnv(dir) {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// IsolateTest sets IsolatedEnv in t's environment (t.Setenv, restored
// when t ends), with the files it names under a directory of t's own.
func IsolateTest(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, kv := range IsolatedEnv(dir) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Close stops the gateway and waits for it. It is idempotent.
func (g *VersityGW) Close() error {
	g.once.Do(func() {
		g.p.stop()
		g.procs.Wait()
	})
	return nil
}
