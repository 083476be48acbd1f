package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A job killed between the two renames of the fallback switch (no atomic
// exchange) leaves no output: the next cleanup moves the new output in if
// it is complete, else the previous one back.
func TestCleanLocalFinishesAnInterruptedSwitch(t *testing.T) {
	for _, complete := range []bool{true, false} {
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		stage := localStagingDir(out, "job-dead")
		files := map[string]string{
			stage + localOldSuffix + "/part-00000": "old\n",
			stage + localOldSuffix + "/_SUCCESS":   "",
			stage + "/part-00000":                  "new\n",
		}
		if complete {
			files[stage+"/_SUCCESS"] = ""
		}
		writeFiles(t, files)
		c, err := cleanLocal(out, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "part-00000"))
		want := map[bool]string{true: "new\n", false: "old\n"}[complete]
		if err != nil || string(b) != want {
			t.Errorf("complete=%v: output part %q (%v), want %q", complete, b, err, want)
		}
		if left := readDir(t, parent); !slices.Equal(left, []string{"out"}) {
			t.Errorf("complete=%v: left %v beside the output (removed %v)", complete, left, c.Removed)
		}
	}
}

// Staging areas are removed when their job is dead — its process gone
// from this host, or its heartbeat too old — and kept while it is live.
func TestCleanLocalKeepsLiveJobs(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	now := time.Now()
	records := map[string]jobRecord{
		"job-live":      newJobRecord("job-live"), // this process, registered below
		"job-ended":     newJobRecord("job-ended"),
		"job-exited":    {Job: "job-exited", Host: hostname, PID: exited.Process.Pid, Heartbeat: now},
		"job-elsewhere": {Job: "job-elsewhere", Host: "another-host", PID: 1, Heartbeat: now},
		"job-stale":     {Job: "job-stale", Host: "another-host", PID: 1, Heartbeat: now.Add(-2 * StaleAfter)},
	}
	defer jobStarted("job-live")()
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	files := map[string]string{out + "/part-00000": "committed\n", localStagingDir(out, "job-norecord") + "/attempts/x": "x"}
	for id, r := range records {
		dir := localStagingDir(out, id)
		files[dir+"/attempts/a"] = "a"
		files[dir+localRecordSuffix] = string(r.encode())
	}
	writeFiles(t, files)
	c, err := cleanLocal(out, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"job-elsewhere", "job-live"}; !slices.Equal(c.Live, want) {
		t.Errorf("live jobs %v, want %v", c.Live, want)
	}
	want := []string{".out.gale-job-elsewhere", ".out.gale-job-elsewhere.job", ".out.gale-job-live", ".out.gale-job-live.job", "out"}
	if left := readDir(t, parent); !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

// CleanTemp removes the temporary stores and spill directories of killed
// processes, and nothing else.
func TestCleanTempRemovesKilledProcessesLeftovers(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	dead := exited.Process.Pid
	dir := t.TempDir()
	deadRec := jobRecord{Job: "job-dead", Host: hostname, PID: dead, Heartbeat: time.Now()}
	defer jobStarted("job-live")()
	writeFiles(t, map[string]string{
		filepath.Join(dir, "gale-job-dead-123", jobRecordKey):                string(deadRec.encode()),
		filepath.Join(dir, "gale-job-dead-123", "shuffle", "x"):              "x",
		filepath.Join(dir, "gale-job-live-456", jobRecordKey):                string(newJobRecord("job-live").encode()),
		filepath.Join(dir, "gale-norecord-789", "x"):                         "x",
		filepath.Join(dir, spillDirPrefix+itoa(dead)+"-111", "run-0"):        "r",
		filepath.Join(dir, spillDirPrefix+itoa(os.Getpid())+"-222", "run-0"): "r",
		filepath.Join(dir, "unrelated", "x"):                                 "x",
	})
	if _, err := CleanTemp(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"gale-extsort-" + itoa(os.Getpid()) + "-222", "gale-job-live-456", "gale-norecord-789", "unrelated"}
	if left := readDir(t, dir); !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
