package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Runs without --output write to out/JOB in Gale's cache directory, which
// they print and the next such run replaces; generated samples are made
// once there and reused; and no run, successful or failed, leaves
// anything in the temporary directory.
func TestRunsLeaveNoLitter(t *testing.T) {
	tmp, home := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_CACHE_HOME", home)
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte("the cat saw the dog\nthe end\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(home, "gale", "out", "wordcount")
	for range 2 {
		stdout, err := execute(t, "run", "wordcount", "-q", "--input", in)
		if err != nil {
			t.Fatalf("gale run wordcount --input %s: %v\n%s", in, err, stdout)
		}
		if !strings.Contains(stdout, "output: "+out) || !strings.Contains(stdout, "the                  3") {
			t.Errorf("the run does not print its output %s and the counts:\n%s", out, stdout)
		}
	}
	if _, err := execute(t, "run", "wordcount", "-q", "--input", in+".missing"); err == nil {
		t.Error("a run with a missing input succeeded")
	}
	kmeans := []string{"run", "kmeans", "--k", "3", "--dim", "2", "--points", "300", "--workers", "2", "--iterations", "2", "-q"}
	first, err := execute(t, kmeans...)
	if err != nil || !strings.Contains(first, "generating "+filepath.Join(home, "gale", "samples")) {
		t.Fatalf("gale %s: %v; want its dataset generated in the cache:\n%s", strings.Join(kmeans, " "), err, first)
	}
	if again, err := execute(t, kmeans...); err != nil || strings.Contains(again, "generating") {
		t.Errorf("second gale %s: %v; want the cached dataset reused:\n%s", strings.Join(kmeans, " "), err, again)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the temporary directory: %s", e.Name())
	}
}
