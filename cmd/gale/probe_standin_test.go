package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// probeStandIn runs the parallelism probe against a cloud backend's local
// stand-in (configured by env, as for the backend's word-count test): a
// few one-tenth-second sleeps must all succeed, each on a recorded
// instance, with in-function durations near what was asked.
func probeStandIn(t *testing.T, bin, backend string, env ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "probe.json")
	cmd := exec.Command(bin, "probe", "--backend", backend, "--invocations", "3", "--task", "sleep",
		"--duration", "100ms", "--json", out)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gale probe --backend %s: %v\n%s", backend, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Invocations int     `json:"invocations"`
		OK          int     `json:"ok"`
		Failures    int     `json:"failures"`
		Instances   int     `json:"instances"`
		RunP50      float64 `json:"run_p50_s"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("probe JSON: %v\n%s", err, b)
	}
	t.Logf("probe of %s: %+v", backend, m)
	if m.Invocations != 3 || m.OK != 3 || m.Failures != 0 || m.Instances < 1 {
		t.Errorf("probe of %s: %+v", backend, m)
	}
	if m.RunP50 < 0.095 || m.RunP50 > 0.5 {
		t.Errorf("probe of %s: in-function p50 %.3fs for a 100ms sleep", backend, m.RunP50)
	}
}
