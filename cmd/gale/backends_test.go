package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/backends"
)

func writeConfig(t *testing.T, text string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GALE_CONFIG", p)
}

func TestConfigRejectsUnknownKeysAndSections(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"backends:\n  nosuch: {}\n", `unknown backend section "nosuch"`},
		{"backends:\n  process:\n    concurency: 3\n", "backends.process"},
		{"storag:\n  s3.region: x\n", "field storag not found"},
	} {
		writeConfig(t, tc.text)
		_, _, err := openBackend(t.Context(), "process", backendEnv{Stderr: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: got %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
	t.Setenv("GALE_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
	if _, err := loadConfig(); err == nil {
		t.Error("a GALE_CONFIG naming a missing file was accepted")
	}
}

func TestConfigFeedsBackendsAndStores(t *testing.T) {
	writeConfig(t, "backends:\n  process:\n    concurrency: 3\nstorage:\n  s3.region: eu-west-1\n")
	b, cfg, err := openBackend(t.Context(), "process", backendEnv{Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n := backends.TraitsOf(b).MaxConcurrency; n != 3 {
		t.Errorf("process backend concurrency %d, want 3 from the config", n)
	}
	if len(storeOptions(cfg)) != 1 {
		t.Error("storage options were not passed on")
	}
	var out bytes.Buffer
	cmd := newBackendsCmd()
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"local", "process", "max concurrency"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gale backends output lacks %q:\n%s", want, out.String())
		}
	}
	if _, _, err := openBackend(t.Context(), "nosuch", backendEnv{}); err == nil || !strings.Contains(err.Error(), "available: ") || !strings.Contains(err.Error(), "local, process") {
		t.Errorf("unknown backend: %v", err)
	}
}
