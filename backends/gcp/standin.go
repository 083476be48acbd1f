package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StandInConfig configures a local stand-in for a deployed function.
type StandInConfig struct {
	// Path is the worker binary, e.g. this program's os.Executable().
	// Required.
	Path string
	// Args are its arguments, e.g. ["worker"] for the gale binary.
	Args []string
	// Env holds extra KEY=VALUE entries on top of this process's
	// environment and the platform's (FUNCTION_TARGET, PORT, HOST).
	Env []string
	// Instances is how many worker processes serve, one port each.
	// Default 2.
	Instances int
	// StartTimeout bounds how long an instance may take to listen.
	// Default 30 s.
	StartTimeout time.Duration
	// Output receives the instances' standard output and error; default
	// os.Stderr.
	Output io.Writer
}

// StandIn is a set of worker processes serving the function through the
// Functions Framework on loopback ports, each started the way the
// platform starts an instance (FUNCTION_TARGET and PORT in its
// environment), so the worker detects the gcp mode itself. Give its URLs
// to Config.Endpoints.
//
// What it does not reproduce: the platform's front end (one URL, scaling
// instances up and down, rejecting with 429/500 under load, cold starts
// of new instances during a run), identity-token checks and the build.
type StandIn struct {
	procs []*standInProc
	urls  []string
	once  sync.Once
}

type standInProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returns
	err    error         // cmd.Wait's error, set before exited closes
}

// StartStandIn starts cfg.Instances worker processes and waits until each
// listens. On error it stops those it started.
func StartStandIn(ctx context.Context, cfg StandInConfig) (*StandIn, error) {
	if cfg.Path == "" {
		return nil, errors.New("gcp: stand-in: no worker binary (StandInConfig.Path)")
	}
	if cfg.Instances < 0 {
		return nil, fmt.Errorf("gcp: stand-in: %d instances", cfg.Instances)
	}
	if cfg.Instances == 0 {
		cfg.Instances = 2
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	var env []string
	for _, kv := range os.Environ() {
		// The instances must find their mode from the platform's
		// variables, as on Cloud Functions.
		if !strings.HasPrefix(kv, "GALE_WORKER=") {
			env = append(env, kv)
		}
	}
	env = append(env, cfg.Env...)
	s := &StandIn{}
	for range cfg.Instances {
		port, err := freePort()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("gcp: stand-in: %w", err)
		}
		cmd := exec.Command(cfg.Path, cfg.Args...)
		cmd.Env = append(env[:len(env):len(env)], "FUNCTION_TARGET="+FunctionTarget, "PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
		cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
		if err := cmd.Start(); err != nil {
			s.Close()
			return nil, fmt.Errorf("gcp: stand-in: starting %s: %w", cfg.Path, err)
		}
		p := &standInProc{cmd: cmd, exited: make(chan struct{})}
		go func() { p.err = cmd.Wait(); close(p.exited) }()
		s.procs = append(s.procs, p)
		s.urls = append(s.urls, "http://127.0.0.1:"+strconv.Itoa(port)+"/")
	}
	deadline := time.Now().Add(cfg.StartTimeout)
	for i, p := range s.procs {
		if err := waitListening(ctx, p, s.urls[i], deadline); err != nil {
			s.Close()
			return nil, fmt.Errorf("gcp: stand-in: instance %d (%s %s): %w", i, cfg.Path, strings.Join(cfg.Args, " "), err)
		}
	}
	return s, nil
}

// URLs returns the instances' URLs.
func (s *StandIn) URLs() []string { return append([]string(nil), s.urls...) }

// Close stops the instances (SIGTERM, then SIGKILL after 5 s) and waits
// for them. It is idempotent and returns nil: instances stopped this way
// exit by a signal.
func (s *StandIn) Close() error {
	s.once.Do(func() {
		for _, p := range s.procs {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		for _, p := range s.procs {
			select {
			case <-p.exited:
			case <-timer.C:
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	})
	return nil
}

// waitListening polls until url's port accepts connections, the process
// exits, ctx ends or the deadline passes.
func waitListening(ctx context.Context, p *standInProc, url string, deadline time.Time) error {
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s in time", addr)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before listening on %s: %v", addr, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
