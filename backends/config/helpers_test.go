package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends/config"
	"github.com/galeproject/gale/backends/process"
)

// TestMain makes this test binary a process-backend worker when the
// process backend starts it: its handler answers with the payload and the
// arguments the worker got, so a test sees both arrive.
func TestMain(m *testing.M) {
	if os.Getenv(process.WorkerEnv) == process.WorkerEnvValue {
		h := func(_ context.Context, payload []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%s args=%s", payload, strings.Join(os.Args[1:], ",")), nil
		}
		if err := process.ServeInherited(context.Background(), h); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writeFile writes text to a fresh file and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// isolate keeps the machine's own configuration out of a test.
func isolate(t *testing.T) {
	t.Setenv("GALE_CONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("WSK_CONFIG_FILE", writeFile(t, ""))
	t.Setenv("AZURE_FUNCTIONS_KEY", "")
}

func load(t *testing.T, text string) *config.File {
	t.Helper()
	f, err := config.Load(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantErr(t *testing.T, what string, err error, is error, says ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one saying %q", what, says)
		return
	}
	t.Logf("%s: %v", what, err)
	if is != nil && !errors.Is(err, is) {
		t.Errorf("%s: %v, want an error wrapping %v", what, err, is)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %v; does not say %q", what, err, s)
		}
	}
}
