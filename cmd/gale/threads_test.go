package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestCloudThreadsAcrossProcesses runs the pi job with its cloud threads in
// worker processes of the gale binary, sharing counters through the
// driver's DSO server. (Barriers and user-defined objects across processes
// are exercised by k-means and logistic regression on the process backend.)
func TestCloudThreadsAcrossProcesses(t *testing.T) {
	bin := buildGale(t)
	out, err := exec.Command(bin, "run", "pi", "--backend", "process", "--workers", "3", "--samples", "200000").CombinedOutput()
	if err != nil {
		t.Fatalf("gale run pi --backend process: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`from (\d+) points \((\d+) inside\) by 3 cloud threads`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("unexpected output: %s", out)
	}
	total, _ := strconv.Atoi(string(m[1]))
	inside, _ := strconv.Atoi(string(m[2]))
	if total != 600000 {
		t.Errorf("shared counter holds %d points, want exactly 600000", total)
	}
	// pi/4 of the points fall inside; 6 standard deviations of a binomial.
	if ratio := float64(inside) / float64(total); ratio < 0.7854-0.0032 || ratio > 0.7854+0.0032 {
		t.Errorf("inside ratio %.4f is not near π/4", ratio)
	}
}
