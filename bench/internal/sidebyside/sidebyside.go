// Package sidebyside holds what the side-by-side benchmarks (bench/sort,
// bench/wordcount) share: running one variant as a child process so its
// time and peak resident memory are its own, CPU and allocation profiles
// of a child, the machine's load beside every figure, and medians.
//
// A benchmark re-executes itself with Child's flag to run one variant; the
// child does the work and exits, so nothing it allocated or started
// outlives the run.
package sidebyside

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run is one measured run of a variant.
type Run struct {
	Seconds float64 `json:"seconds"`
	// MaxRSSMiB is the peak resident memory of the process that ran the
	// variant (for Gale on the local backend, all its workers together).
	MaxRSSMiB float64 `json:"max_rss_mib"`
	// CPUSeconds is the user and system CPU time the process used: on a
	// machine shared with other work it varies far less than the wall
	// time, which includes the time other processes held the cores.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Load is the one-minute load average before and after the run.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Load returns the one-minute load average (0 where it is unknown).
func Load() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// Exec runs name with args (and extra environment) as a child process,
// under nice when nice is set, and measures it.
func Exec(niceness int, env []string, name string, args ...string) (Run, error) {
	if niceness != 0 {
		args = append([]string{"-n", strconv.Itoa(niceness), name}, args...)
		name = "nice"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	runtime.GC()
	r := Run{LoadBefore: Load()}
	start := time.Now()
	out, err := cmd.Output()
	r.Seconds = time.Since(start).Seconds()
	r.LoadAfter = Load()
	if err != nil {
		return r, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
		r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return r, nil
}

// Self returns the path of the running benchmark, to re-execute it as a
// child.
func Self() (string, error) { return os.Executable() }

// Profile starts a CPU profile into cpu (when not empty) and returns a
// function that stops it and writes an allocation profile into mem (when
// not empty).
func Profile(cpu, mem string) (stop func() error, err error) {
	var f *os.File
	if cpu != "" {
		if f, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	if mem != "" {
		runtime.MemProfileRate = 512 << 10
	}
	return func() error {
		if f != nil {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				return err
			}
		}
		if mem == "" {
			return nil
		}
		m, err := os.Create(mem)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(m, 0); err != nil {
			m.Close()
			return err
		}
		return m.Close()
	}, nil
}

// Median returns the median of runs' seconds (the upper middle one for an
// even count).
func Median(runs []Run) float64 {
	s := make([]float64, len(runs))
	for i, r := range runs {
		s[i] = r.Seconds
	}
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// MedianCPU returns the median of runs' CPU seconds.
func MedianCPU(runs []Run) float64 {
	s := make([]float64, len(runs))
	for i, r := range runs {
		s[i] = r.CPUSeconds
	}
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// MaxRSS returns the largest peak resident memory of runs, in MiB.
func MaxRSS(runs []Run) float64 {
	var m float64
	for _, r := range runs {
		m = max(m, r.MaxRSSMiB)
	}
	return m
}

// LoadRange returns the lowest and highest load average seen around runs.
func LoadRange(runs []Run) (lo, hi float64) {
	for i, r := range runs {
		a, b := min(r.LoadBefore, r.LoadAfter), max(r.LoadBefore, r.LoadAfter)
		if i == 0 || a < lo {
			lo = a
		}
		hi = max(hi, b)
	}
	return lo, hi
}
