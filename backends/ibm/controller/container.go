package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/galeproject/gale/backends/ibm"
)

// container is one action container: a worker process serving the action
// interface on a loopback port.
type container struct {
	id     string
	addr   string
	cmd    *exec.Cmd
	client *http.Client
	exited chan struct{} // closed when the process has exited
	ctx    context.Context
	cancel context.CancelFunc // called once the process has exited

	mu        sync.Mutex
	logs      []string      // lines of the current activation
	sentinels int           // sentinels seen since the last takeLogs
	changed   chan struct{} // closed and replaced on every new sentinel
}

// startContainer starts a container for a and waits until it accepts
// connections.
func (c *Controller) startContainer(a *action) (*container, error) {
	for attempt := 0; ; attempt++ {
		ct, err := c.tryStart(a)
		if err == nil || attempt == 2 {
			return ct, err
		}
	}
}

func (c *Controller) tryStart(a *action) (*container, error) {
	// Pick a free loopback port. Another process could take it before the
	// worker binds it; the worker then exits and the start is retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	c.mu.Lock()
	apiHost := c.url
	c.mu.Unlock()

	id := newID() + newID()
	cmd := exec.Command(a.command, c.cfg.Args...)
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	cmd.Env = append(cmd.Env,
		ibm.EnvAPIHost+"="+apiHost,
		"GALE_WORKER=ibm",
		ibm.EnvProtocol+"=http",
		ibm.EnvActionAddr+"="+addr,
		ibm.EnvInstance+"="+id[:12],
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("controller: starting container %s: %w", a.command, err)
	}
	ct := &container{id: id[:12], addr: addr, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}}
	ct.ctx, ct.cancel = context.WithCancel(c.ctx)
	var readers sync.WaitGroup
	readers.Add(2)
	c.wg.Add(3)
	for _, r := range []struct {
		rd     io.Reader
		stream string
	}{{stdout, "stdout"}, {stderr, "stderr"}} {
		go func() {
			defer c.wg.Done()
			defer readers.Done()
			ct.readLogs(r.rd, r.stream, c.cfg.Output)
		}()
	}
	go func() {
		defer c.wg.Done()
		readers.Wait() // Wait must follow the pipes' readers
		cmd.Wait()
		close(ct.exited)
		ct.cancel()
	}()
	// The supervisor above reaps the process; kill it when the controller
	// closes.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-c.ctx.Done():
			ct.kill()
		case <-ct.exited:
		}
	}()

	deadline := time.Now().Add(c.cfg.StartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return ct, nil
		}
		select {
		case <-ct.exited:
			return nil, fmt.Errorf("controller: container %s exited before serving the action interface on %s", a.command, addr)
		case <-c.ctx.Done():
			ct.kill()
			return nil, c.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ct.kill()
			return nil, fmt.Errorf("controller: container %s did not listen on %s within %v", a.command, addr, c.cfg.StartTimeout)
		}
	}
}

// readLogs copies one output stream into the current activation's logs,
// counting sentinels.
func (ct *container) readLogs(r io.Reader, stream string, other io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		ct.mu.Lock()
		if line == ibm.LogSentinel {
			ct.sentinels++
			close(ct.changed)
			ct.changed = make(chan struct{})
		} else {
			ct.logs = append(ct.logs, time.Now().UTC().Format(time.RFC3339Nano)+" "+stream+": "+line)
			fmt.Fprintf(other, "container %s %s: %s\n", ct.id, stream, line)
		}
		ct.mu.Unlock()
	}
}

// takeLogs waits up to d for both streams' sentinels and returns the
// activation's log lines; without them, it notes that logs may be missing,
// as OpenWhisk does.
func (ct *container) takeLogs(d time.Duration) []string {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ct.mu.Lock()
		if ct.sentinels >= 2 {
			logs := ct.logs
			ct.logs, ct.sentinels = nil, ct.sentinels-2
			ct.mu.Unlock()
			if logs == nil {
				logs = []string{}
			}
			return logs
		}
		changed := ct.changed
		ct.mu.Unlock()
		select {
		case <-changed:
		case <-ct.exited:
			deadline.Reset(0)
		case <-deadline.C:
			ct.mu.Lock()
			logs := append(ct.logs, time.Now().UTC().Format(time.RFC3339Nano)+" stderr: The action did not initialize or run as expected. Log data might be missing.")
			ct.logs, ct.sentinels = nil, 0
			ct.mu.Unlock()
			return logs
		}
	}
}

// post sends one request of the action interface, bounded by timeout.
func (ct *container) post(path string, body any, timeout time.Duration) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	// ct.ctx ends when the container dies, which ends the request at once.
	ctx, cancel := context.WithTimeout(ct.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ct.addr+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ct.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && !ct.alive() {
			return 0, nil, errors.New("the container exited")
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, nil, context.DeadlineExceeded
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

func (ct *container) alive() bool {
	select {
	case <-ct.exited:
		return false
	default:
		return true
	}
}

// kill ends the container's process; its supervisor reaps it.
func (ct *container) kill() {
	if ct.alive() && ct.cmd.Process != nil {
		ct.cmd.Process.Kill()
	}
	ct.client.CloseIdleConnections()
}
