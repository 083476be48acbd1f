package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/state"
)

// startDSO runs `gale dso serve` on a free loopback port and returns the
// process and its address.
func startDSO(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dso", "serve", "--listen", "127.0.0.1:0", "--token", "tok"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "serving shared objects on ")
	if err != nil || !ok {
		t.Fatalf("gale dso serve: %q, %v", line, err)
	}
	return cmd, addr
}

// TestDSODataDirCommands: a second server on a data directory in use is
// refused; after a SIGKILL, a flipped byte in the log makes serve refuse
// to start naming the repair command, and `gale dso repair` keeps every
// record before the damage.
func TestDSODataDirCommands(t *testing.T) {
	bin := buildGale(t)
	dir := t.TempDir()
	ctx := context.Background()
	srv, addr := startDSO(t, bin, "--data-dir", dir)

	out, err := exec.Command(bin, "dso", "serve", "--listen", "127.0.0.1:0", "--token", "tok", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") || !strings.Contains(string(out), "stop that server first") {
		t.Fatalf("second server on one data dir: %v\n%s", err, out)
	}

	c, err := state.Dial(ctx, state.ClientConfig{Servers: []string{addr}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	l := c.List("items").Persistent()
	for i := 0; i < 10; i++ {
		if _, err := l.Append(ctx, []byte(fmt.Sprintf("item-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	_ = srv.Process.Signal(syscall.SIGKILL)
	_ = srv.Wait()

	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if len(segs) == 0 {
		t.Fatal("no log segment in the data dir")
	}
	seg := segs[len(segs)-1]
	b, _ := os.ReadFile(seg)
	i := strings.Index(string(b), "item-4")
	if i < 0 {
		t.Fatal("item-4 not in the last segment")
	}
	b[i+2] ^= 1
	_ = os.WriteFile(seg, b, 0o644)

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err = exec.CommandContext(cctx, bin, "dso", "serve", "--listen", "127.0.0.1:0", "--token", "tok", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "gale dso repair --data-dir "+dir) {
		t.Fatalf("serve on a damaged log: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "dso", "repair", "--data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kept 5 log records") || !strings.Contains(string(out), ".damaged") {
		t.Fatalf("gale dso repair: %v\n%s", err, out)
	}
	_, addr = startDSO(t, bin, "--data-dir", dir)
	c, err = state.Dial(ctx, state.ClientConfig{Servers: []string{addr}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	items, err := c.List("items").Range(ctx, 0, 100)
	if err != nil || len(items) != 4 || string(items[3]) != "item-3" {
		t.Fatalf("after repair: %q, %v (want item-0..item-3)", items, err)
	}
}

// TestKMeansOnReplicatedClusterSurvivesACrash runs `gale run kmeans` with
// its model on a three-member DSO cluster (rf = 2) and SIGKILLs a member
// (not the one holding the barrier) mid-run: the job finishes with the
// same rounds as the local reference.
func TestKMeansOnReplicatedClusterSurvivesACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildGale(t)
	dir := t.TempDir()
	points := filepath.Join(dir, "points")
	if out, err := exec.Command(bin, "gen", "points", "--count", "30000", "--dim", "3", "--k", "4", "--parts", "3", "--out", points).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	km := []string{"run", "kmeans", "--k", "4", "--input", points, "--workers", "3", "--iterations", "30", "-q"}
	local, err := exec.Command(bin, append(km, "--mode", "local")...).CombinedOutput()
	if err != nil {
		t.Fatalf("local kmeans: %v\n%s", err, local)
	}
	want := costLines(string(local))

	first, a1 := startDSO(t, bin, "--cluster", "--rf", "2", "--partitions", "16")
	p2, a2 := startDSO(t, bin, "--join", a1)
	p3, a3 := startDSO(t, bin, "--join", a1)
	procs := map[string]*exec.Cmd{a1: first, a2: p2, a3: p3}
	ctx := context.Background()
	c, err := state.Dial(ctx, state.ClientConfig{Servers: []string{a1, a2, a3}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for stable := 0; stable < 20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not settle: %+v", c.View())
		}
		before := c.View().Epoch
		c.RefreshView(ctx)
		v := c.View()
		if len(v.Members) == 3 && v.Epoch == before {
			stable++
		} else {
			stable = 0
		}
	}
	// The victim: a member other than the barrier's (a crash there fails
	// the waiting workers, who restart; tested in state) whose process
	// this test started, so it can be killed.
	barrier := c.Locate(state.TypeCyclicBarrier, "kmeans/barrier")
	var victim string
	for _, a := range []string{a2, a3, a1} {
		if a != barrier {
			victim = a
			break
		}
	}
	job := exec.Command(bin, append(km, "--dso", strings.Join([]string{a1, a2, a3}, ","), "--dso-token", "tok")...)
	var out strings.Builder
	job.Stdout, job.Stderr = &out, &out
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	for !killed && time.Now().Before(deadline.Add(time.Minute)) {
		if n, err := c.AtomicLong("kmeans/iteration").Persistent().Get(ctx); err == nil && n >= 3 {
			_ = procs[victim].Process.Signal(syscall.SIGKILL)
			killed = true
			t.Logf("SIGKILLed the member at %s in round %d", victim, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := job.Wait(); err != nil {
		t.Fatalf("kmeans on the cluster: %v\n%s", err, out.String())
	}
	if !killed {
		t.Fatalf("the job ended before round 3:\n%s", out.String())
	}
	if got := costLines(out.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kmeans on the cluster with a member killed:\n%s\nwant rounds:\n%s", out.String(), strings.Join(want, "\n"))
	}

	// The killed member is gone from the membership; one more leaves.
	var alive []string
	for _, a := range []string{a1, a2, a3} {
		if a != victim {
			alive = append(alive, a)
		}
	}
	members := func() string {
		b, err := exec.Command(bin, "dso", "members", "--server", alive[0], "--token", "tok").CombinedOutput()
		if err != nil {
			t.Fatalf("gale dso members: %v\n%s", err, b)
		}
		return string(b)
	}
	for start := time.Now(); !strings.HasPrefix(members(), "2 members"); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("gale dso members after the crash:\n%s", members())
		}
	}
	if m := members(); strings.Contains(m, victim) || !strings.Contains(m, alive[1]) {
		t.Fatalf("gale dso members:\n%s", m)
	}
	b, err := exec.Command(bin, "dso", "leave", "--server", alive[1], "--token", "tok").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "removed") {
		t.Fatalf("gale dso leave: %v\n%s", err, b)
	}
	for start := time.Now(); !strings.HasPrefix(members(), "1 members"); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("gale dso members after leave:\n%s", members())
		}
	}
	// The data stays with the remaining member.
	if n, err := c.AtomicLong("kmeans/iteration").Persistent().Get(ctx); err != nil || n < 3 {
		t.Fatalf("round counter after the leave: %d, %v", n, err)
	}
}
