package awsstandin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/galeproject/gale/internal/standin"
)

// Tool names installed by scripts/install-standins.sh.
const (
	EmulatorTool  = "aws-lambda-rie"
	VersityGWTool = "versitygw"
)

// ErrNotInstalled is returned by Tool when a stand-in is missing.
var ErrNotInstalled = errors.New("awsstandin: stand-in not installed (run scripts/install-standins.sh)")

// Tool returns the path of an installed stand-in binary: in GALE_TOOLS_BIN
// if set, else in .tools/bin of the enclosing repository (found by walking
// up from the working directory to go.mod's directory), else on PATH.
func Tool(name string) (string, error) {
	var dirs []string
	if d := os.Getenv("GALE_TOOLS_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, ".tools", "bin")); err == nil {
				dirs = append(dirs, filepath.Join(d, ".tools", "bin"))
			}
			if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s not found in .tools/bin, GALE_TOOLS_BIN or PATH", ErrNotInstalled, name)
}

// RequireTool returns a stand-in's path for a test. A missing stand-in
// fails the test naming the install script, or skips it with
// GALE_STANDINS=skip (see internal/standin).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := Tool(name)
	if err != nil {
		standin.Missing(t, err.Error())
	}
	return p
}
