package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// costLines returns the per-round lines of a kmeans or logreg report.
func costLines(out string) []string {
	return regexp.MustCompile(`(?m)^  round .*$`).FindAllString(out, -1)
}

func TestIterativeJobsFromTheCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary")
	}
	t.Parallel() // runs gale processes; sets no environment
	bin := buildGale(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gale %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
		}
		return stdout.String()
	}
	points := filepath.Join(dir, "points")
	run("gen", "points", "--count", "3000", "--dim", "3", "--k", "4", "--parts", "3", "--out", points)
	labeled := filepath.Join(dir, "labeled")
	run("gen", "labeled", "--count", "2000", "--features", "5", "--parts", "2", "--out", labeled)

	// The printed costs (6 significant digits) are the same in every
	// mode and backend, and with a worker restarted mid-run.
	km := []string{"run", "kmeans", "--k", "4", "--input", points, "--workers", "3", "--iterations", "5", "-q"}
	want := costLines(run(append(km, "--mode", "local")...))
	if len(want) != 5 {
		t.Fatalf("local k-means printed %d rounds, want 5", len(want))
	}
	for _, extra := range [][]string{
		{"--backend", "process"},
		{"--backend", "process", "--mode", "stages"},
		{"--fault", "1:2:after-merge"},
	} {
		out := run(append(km, extra...)...)
		if got := costLines(out); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("kmeans %v:\n%s\nwant rounds:\n%s", extra, out, strings.Join(want, "\n"))
		}
		if extra[0] == "--fault" && !strings.Contains(out, "1 worker restart(s)") {
			t.Errorf("kmeans %v did not report the restart:\n%s", extra, out)
		}
	}
	lr := []string{"run", "logreg", "--input", labeled, "--features", "5", "--workers", "2", "--iterations", "4", "--step", "0.5", "-q"}
	wantLR := costLines(run(append(lr, "--mode", "local")...))
	if got := costLines(run(append(lr, "--backend", "process")...)); strings.Join(got, "\n") != strings.Join(wantLR, "\n") || len(got) != 4 {
		t.Errorf("logreg on the process backend: %v, want %v", got, wantLR)
	}
}

func TestIterativeCommandsRejectBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run", "kmeans", "--k", "0", "--dim", "2"},
		{"run", "kmeans", "--k", "2", "--input", "x", "--mode", "spark"},
		{"run", "kmeans", "--k", "2", "--fault", "1:x:after-merge"},
		{"gen", "points", "--count", "10", "--dim", "2", "--k", "2"},
		{"gen", "labeled", "--count", "0", "--out", "x"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(args)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		if err := cmd.Execute(); err == nil {
			t.Errorf("gale %s succeeded", strings.Join(args, " "))
		}
	}
}
