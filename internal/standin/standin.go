// Package standin decides what a test does when a stand-in it needs — an
// emulator or protocol server that scripts/install-standins.sh installs
// under .tools/ (Azurite, the Lambda Runtime Interface Emulator,
// versitygw) — is missing: it fails, naming the stand-in and the script,
// so that a plain go test ./... says what it did not test; with
// GALE_STANDINS=skip (and CI unset) it skips instead.
//
// This package imports the standard library only and starts no
// goroutines.
package standin

import (
	"os"
	"testing"
)

// SkipEnv is the environment variable that, set to "skip", makes tests
// whose stand-in is missing skip instead of failing (except in CI).
const SkipEnv = "GALE_STANDINS"

// Missing ends the test t, whose stand-in is missing as what says
// ("aws-lambda-rie not found in .tools/bin"): it fails it, or skips it
// when SkipEnv is "skip" and CI is not set.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(SkipEnv) == "skip" && os.Getenv("CI") == "" {
		t.Skipf("%s; skipped (%s=skip)", what, SkipEnv)
	}
	t.Fatalf("%s: run scripts/install-standins.sh (make test does), or set %s=skip to skip the tests that need it", what, SkipEnv)
}
