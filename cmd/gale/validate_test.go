package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unwritable --report-json or --events stops the job before any task
// runs: no output is committed, so a rerun with a good path is not
// refused.
func TestUnwritableReportFailsBeforeTheJobRuns(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(corpus, []byte("a b c\nb c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GALE_CONFIG", config)
	for _, flag := range []string{"--report-json", "--events"} {
		out := filepath.Join(dir, "out"+flag)
		bad := filepath.Join(dir, "no-such-dir", "file.json")
		root := newRootCmd()
		var stdout bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stdout)
		root.SetArgs([]string{"run", "wordcount", "--input", corpus, "--output", out, flag, bad, "-q", "--top", "0"})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Fatalf("%s %s: err = %v, want an error naming the flag", flag, bad, err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s %s: the job ran and committed %s before failing", flag, bad, out)
		}
	}
}
