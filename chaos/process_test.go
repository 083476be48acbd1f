package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/engine"
)

// TestProcessFaults runs sample jobs on the process backend (worker
// processes of this test binary) and, once half of the first stage's
// tasks have ended, sends one worker process SIGKILL (it dies mid-task or
// between tasks) or SIGSTOP (it hangs, holding its task): every run must
// still give the independent answer within the deadline. The fast subset
// runs word count; -full adds sort, k-means and logistic regression.
func TestProcessFaults(t *testing.T) {
	jobs := allJobs(t)
	names := []string{"wordcount"}
	if *full {
		names = append(names, "sort", "kmeans-stages", "logreg-stages")
	}
	for _, name := range names {
		var j job
		for _, c := range jobs {
			if c.name == name {
				j = c
			}
		}
		for _, f := range []struct {
			name string
			sig  syscall.Signal
		}{{"sigkill", syscall.SIGKILL}, {"sigstop", syscall.SIGSTOP}} {
			sig := f.sig
			t.Run(name+"/"+f.name, func(t *testing.T) {
				cfg := process.DefaultConfig()
				cfg.Args = nil // this test binary is the worker (TestMain)
				cfg.Concurrency = 4
				// A stopped worker never exits when retired: kill it soon.
				cfg.StopTimeout = 500 * time.Millisecond
				pb, err := process.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				sg := &signaller{sig: sig}
				t.Cleanup(func() {
					_ = pb.Close()
					sg.release()
				})
				ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
				defer cancel()
				start := time.Now()
				err = j.run(t, ctx, []gale.RunOption{gale.WithBackend("process", pb), gale.Workers(4), gale.MaxAttempts(10),
					gale.JobID(fmt.Sprintf("chaos-proc-%s-%s", name, f.name)), gale.TaskTimeout(5 * time.Second),
					gale.WithSpeculation(engine.Speculation{MinRuntime: 200 * time.Millisecond}), gale.EventsTo(sg)})
				if err != nil {
					t.Fatalf("%s with a worker process sent %v after %s: %v", name, sig, time.Since(start).Round(time.Millisecond), err)
				}
				pid := sg.signalled()
				if pid == 0 {
					t.Fatalf("no worker process was sent %v; the run proves nothing", sig)
				}
				t.Logf("worker %d sent %v; the job finished right in %s", pid, sig, time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// signaller reads a job's events and, once half of the first job's first
// stage has ended, sends sig to one of this process's worker processes
// (one running a task if it finds one). release continues a stopped one.
type signaller struct {
	sig   syscall.Signal
	mu    sync.Mutex
	tasks int
	ended int
	pid   int
}

func (s *signaller) Write(p []byte) (int, error) {
	var ev struct {
		Event string `json:"event"`
		Stage *int   `json:"stage"`
		Plan  *struct {
			Stages []struct {
				Tasks int `json:"tasks"`
			} `json:"stages"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(p, &ev); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ev.Event == "job_start" && ev.Plan != nil && len(ev.Plan.Stages) > 0 && s.tasks == 0:
		s.tasks = ev.Plan.Stages[0].Tasks
	case ev.Event == "task_end" && ev.Stage != nil && *ev.Stage == 0:
		s.ended++
		if s.pid == 0 && s.tasks > 0 && s.ended >= (s.tasks+1)/2 {
			if pid := workerProcess(); pid > 0 && syscall.Kill(pid, s.sig) == nil {
				s.pid = pid
			}
		}
	}
	return len(p), nil
}

func (s *signaller) signalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// release continues the stopped worker, if it is still there, so that no
// process stays stopped after the test (the backend kills the workers it
// retires; this covers one it never got to).
func (s *signaller) release() {
	if pid := s.signalled(); pid != 0 && s.sig == syscall.SIGSTOP {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// workerProcess returns a child process of this one, preferring one in
// state R (running a task); 0 if there is none.
func workerProcess() int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	found := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != self {
			continue
		}
		if f[0] == "R" {
			return pid
		}
		found = pid
	}
	return found
}
