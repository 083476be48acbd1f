package wordref

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	want := map[string]int64{"a": 1, "b": 2, "c": 3}
	if err := Diff(map[string]int64{"a": 1, "b": 2, "c": 3}, want); err != nil {
		t.Errorf("equal counts: %v", err)
	}
	err := Diff(map[string]int64{"a": 1, "b": 5, "d": 1}, want)
	if err == nil {
		t.Fatal("no difference found")
	}
	for _, s := range []string{"3 distinct words, the reference counts 3", "3 differ", `"b" 5 (want 2)`, `"c" 0 (want 3)`, `"d" 1 (want 0)`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%v does not say %s", err, s)
		}
	}
}

func TestCountFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "text")
	if err := os.WriteFile(p, []byte("The cat, the hat.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := CountFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(got, map[string]int64{"the": 2, "cat": 1, "hat": 1}); err != nil {
		t.Error(err)
	}
	if _, err := CountFile(p + ".missing"); err == nil {
		t.Error("a missing file counted")
	}
}
