package galerunner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/galeproject/gale/backends/config"
)

func init() {
	register.Function1x2(keyOf)
}

func keyOf(s string) (string, int) { return s, len(s) }

// unsupportedPipeline reads two TestStreams, which Gale refuses (a
// pipeline replays one).
func unsupportedPipeline() *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	c := teststream.NewConfig()
	c.AddElements(1, "a", "bb")
	beam.ParDo(s, keyOf, teststream.Create(s, c))
	beam.ParDo(s, keyOf, teststream.Create(s, c))
	return p
}

// writeConfig writes a Gale config file for the test.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// An unsupported pipeline is rejected before the backend is even opened:
// here its configuration is broken too, and the error is the pipeline's.
func TestExecuteChecksThePipelineFirst(t *testing.T) {
	_, err := execute(context.Background(), unsupportedPipeline(), runnerFlags{backend: "gcp", config: writeConfig(t, "{}\n")})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "TestStream") {
		t.Fatalf("execute = %v, want ErrUnsupported naming the TestStream", err)
	}
}

// Triggers run on fixed, sliding and global windows; on session windows,
// whose trigger state would have to merge with them, they are refused
// before any task, naming the trigger, the windows and the alternative.
func TestTriggerOnSessionsIsRefused(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	kv := beam.ParDo(s, keyOf, beam.Create(s, "a", "bb"))
	win := beam.WindowInto(s, window.NewSessions(time.Minute), kv, beam.Trigger(trigger.Repeat(trigger.AfterCount(2))))
	beam.GroupByKey(s, win)
	_, err := execute(context.Background(), p, runnerFlags{backend: "local"})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("execute = %v, want ErrUnsupported", err)
	}
	for _, w := range []string{"trigger Repeat on session windows", "fixed windows"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	t.Log(err)
}

// A cloud backend with no temporary store its workers reach fails before
// any task, naming --gale_temp.
func TestExecuteCloudNeedsTemp(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo(s, keyOf, beam.Create(s, "a", "bb"))
	conf := writeConfig(t, "backends:\n  aws:\n    endpoint: http://127.0.0.1:1\n    region: us-east-1\n")
	_, err := execute(context.Background(), p, runnerFlags{backend: "aws", config: conf})
	t.Log(err)
	if !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "--gale_temp") {
		t.Fatalf("execute = %v, want ErrNotConfigured naming --gale_temp", err)
	}
}

func TestOpenBackendErrors(t *testing.T) {
	t.Setenv("WSK_CONFIG_FILE", writeConfig(t, "")) // not the machine's ~/.wskprops
	empty := writeConfig(t, "{}\n")
	for _, tc := range []struct {
		name, config string
		is           error
		says         []string
	}{
		{"gcp", empty, ErrNotConfigured, []string{"project, region and function", "backends.gcp", empty}},
		{"azure", empty, ErrNotConfigured, []string{"app", "backends.azure", "local_host"}},
		{"ibm", empty, ErrNotConfigured, []string{"ibm.api_host is required", "ibm.auth is required", "backends.ibm"}},
		{"aws", writeConfig(t, "backends:\n  aws:\n    memory_mib: 99999\n"), nil, []string{"backends.aws", "memory"}},
		{"gcp", writeConfig(t, "backends:\n  gcp:\n    regoin: x\n"), nil, []string{"regoin", "backends.gcp"}},
		{"gcp", writeConfig(t, "backends:\n  lambda: {}\n"), nil, []string{`unknown backend section "lambda"`}},
		{"nope", empty, ErrUnknownBackend, []string{"nope", "aws, azure, gcp, ibm, local, process, sim:aws"}},
		{"sim:nope", empty, ErrUnknownBackend, []string{"sim:nope"}},
		{"gcp", filepath.Join(t.TempDir(), "missing.yaml"), nil, []string{"missing.yaml"}},
	} {
		_, err := OpenBackend(context.Background(), BackendConfig{Name: tc.name, ConfigFile: tc.config})
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("OpenBackend(%s, %s) = %v, want %v", tc.name, tc.config, err, tc.is)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if tc.is == ErrNotConfigured && !errors.Is(err, config.ErrNotConfigured) {
			t.Errorf("OpenBackend(%s) = %v, want it to match config.ErrNotConfigured too", tc.name, err)
		}
		for _, w := range tc.says {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("OpenBackend(%s): %v; does not say %q", tc.name, err, w)
			}
		}
	}
}
