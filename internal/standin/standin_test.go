package standin

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A missing stand-in fails the test with the fix; GALE_STANDINS=skip
// skips it, except in CI.
func TestMissing(t *testing.T) {
	if os.Getenv("STANDIN_HELPER") == "1" {
		Missing(t, "thing not installed")
		return
	}
	for _, c := range []struct {
		env  []string
		says string
	}{
		{nil, "--- FAIL"},
		{[]string{"GALE_STANDINS=skip"}, "--- SKIP"},
		{[]string{"GALE_STANDINS=skip", "CI=true"}, "--- FAIL"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), append([]string{"STANDIN_HELPER=1", "CI=", "GALE_STANDINS="}, c.env...)...)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.says) || !strings.Contains(string(out), "thing not installed") {
			t.Errorf("with %v: want %s naming the stand-in:\n%s", c.env, c.says, out)
		}
		if c.says == "--- FAIL" && !strings.Contains(string(out), "scripts/install-standins.sh") {
			t.Errorf("with %v: the failure does not name the install script:\n%s", c.env, out)
		}
	}
}
