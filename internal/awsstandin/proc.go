//go:build unix

package awsstandin

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a stopped process may take to exit after SIGTERM
// before its process group is killed.
const stopGrace = 5 * time.Second

// proc is a child process in its own process group, with a supervisor
// goroutine that reaps it.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, set before done closes
	wg   *sync.WaitGroup
}

// startProc starts cmd in its own process group; wg tracks its supervisor.
func startProc(cmd *exec.Cmd, wg *sync.WaitGroup) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), wg: wg}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace,
// and waits until the process is reaped. The group goes too: the emulator
// starts the worker as its child.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children the process left behind in its group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process may take it before the caller binds it; callers
// retry on a failed start.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitListening waits until addr accepts connections, the process exits,
// or timeout passes.
func waitListening(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("exited before listening on %s: %v", addr, p.err)
		}
		if time.Now().After(deadline) {
			return errors.New("not listening on " + addr + " after " + timeout.String())
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}
