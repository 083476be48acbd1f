package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestCloudThreadsAcrossProcesses runs the pi and santa jobs with their
// cloud threads in worker processes of the gale binary, sharing counters,
// semaphores, barriers and futures through the driver's DSO server.
func TestCloudThreadsAcrossProcesses(t *testing.T) {
	t.Parallel() // runs gale processes; sets no environment
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
	// Worker processes start at different times, so some elves begin late:
	// santa must still fill every group of three (and checks its invariants).
	out, err = exec.Command(bin, "run", "santa", "--backend", "process", "--deliveries", "4").CombinedOutput()
	if err != nil {
		t.Fatalf("gale run santa --backend process: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`4 deliveries and 10 elf groups of three in .*; \d+ events checked`).Match(out) {
		t.Fatalf("unexpected output: %s", out)
	}
}
