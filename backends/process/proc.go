package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// proc is one worker process and the three goroutines that tend it, all
// owned by the Backend (in its wg): read (the result pipe), logOutput (the
// worker's stdout and stderr) and supervise (stop, kill, reap).
type proc struct {
	b        *Backend
	cmd      *exec.Cmd
	pid      int
	instance string
	in       *os.File // task pipe, our write end
	out      *os.File // result pipe, our read end
	logR     *os.File // output pipe, our read end

	// replies carries the hello body, then one result body per task. At
	// most one is ever pending, since one task at a time is sent.
	replies    chan []byte
	readErr    error         // why reading stopped; set before readerDone closes
	readerDone chan struct{} // closed when the result pipe ends
	logDone    chan struct{} // closed when the output pipe ends
	stopOnce   sync.Once
	stopCh     chan struct{} // closed to retire the worker
	exitErr    error         // the exit status; set before exited closes
	exited     chan struct{} // closed once the process is reaped

	idleSince time.Time // guarded by b.mu

	tailMu sync.Mutex
	tail   []string // the worker's last output lines
}

const tailLines = 100

// start starts a worker process and waits until it reports ready. Its
// slot in b.live is already taken; start gives it back if no process
// could be started.
func (b *Backend) start(ctx context.Context) (*proc, error) {
	p, err := b.spawn()
	if err != nil {
		b.mu.Lock()
		b.live--
		b.signalLocked()
		b.mu.Unlock()
		return nil, fmt.Errorf("starting worker process %s: %w: %w", b.cfg.Path, backends.ErrNotStarted, err)
	}
	timer := time.NewTimer(b.cfg.StartTimeout)
	defer timer.Stop()
	var why error
	select {
	case hello := <-p.replies:
		if string(hello) == protocolName {
			return p, nil
		}
		why = fmt.Errorf("it speaks protocol %q, this backend %q: build the worker from the same Gale version as the driver", hello, protocolName)
	case <-p.readerDone:
		<-p.exited
		why = fmt.Errorf("it exited before it was ready (%s)%s; the worker program must serve tasks when %s=%s is set, as gale.Run and gale.ServeWorkerIfRequested do",
			describeExit(p.exitErr), p.outputTail(), WorkerEnv, WorkerEnvValue)
	case <-timer.C:
		why = fmt.Errorf("it did not report ready within %s (Config.StartTimeout); does the worker program reach gale.Run or gale.ServeWorkerIfRequested when %s=%s is set?",
			b.cfg.StartTimeout, WorkerEnv, WorkerEnvValue)
	case <-ctx.Done():
		why = ctx.Err()
	}
	p.stop()
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, backends.ErrClosed
	}
	return nil, fmt.Errorf("worker process %d of %s: %w: %w", p.pid, b.cfg.Path, backends.ErrNotStarted, why)
}

// spawn starts the process and its goroutines.
func (b *Backend) spawn() (*proc, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	taskR, taskW, err1 := pipe()
	resR, resW, err2 := pipe()
	logR, logW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return nil, err
	}
	cmd := exec.Command(b.cfg.Path, b.cfg.Args...)
	cmd.Env = b.env
	cmd.Dir = b.cfg.Dir
	cmd.Stdout, cmd.Stderr = logW, logW
	cmd.ExtraFiles = []*os.File{taskR, resW} // fds 3 and 4 in the worker
	cmd.SysProcAttr = sysProcAttr()
	err := cmd.Start()
	// The worker's ends are the worker's now: keeping ours open would hide
	// its exit from the readers.
	taskR.Close()
	resW.Close()
	logW.Close()
	if err != nil {
		taskW.Close()
		resR.Close()
		logR.Close()
		return nil, err
	}
	p := &proc{
		b: b, cmd: cmd, pid: cmd.Process.Pid, instance: fmt.Sprintf("process-%d", cmd.Process.Pid),
		in: taskW, out: resR, logR: logR,
		replies: make(chan []byte, 1), readerDone: make(chan struct{}), logDone: make(chan struct{}),
		stopCh: make(chan struct{}), exited: make(chan struct{}),
	}
	b.mu.Lock()
	b.stats.Started++
	b.all[p] = struct{}{}
	closed := b.closed
	b.wg.Add(3)
	b.mu.Unlock()
	go p.read()
	go p.logOutput()
	go b.supervise(p)
	if closed {
		p.stop()
	}
	return p, nil
}

// stop tells the supervisor to retire the worker. It is idempotent.
func (p *proc) stop() { p.stopOnce.Do(func() { close(p.stopCh) }) }

// send writes one frame to the worker; ctx interrupts a write the worker
// does not take. A failed write means the worker did not receive the
// whole frame.
func (p *proc) send(ctx context.Context, frame []byte) error {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		p.in.SetWriteDeadline(time.Unix(1, 0)) // in the past: the write returns
		close(fired)
	})
	_, err := p.in.Write(frame)
	if !stop() {
		<-fired
		if err == nil {
			p.in.SetWriteDeadline(time.Time{})
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	return err
}

// read delivers the worker's frames: the hello first, then results.
func (p *proc) read() {
	defer p.b.wg.Done()
	defer close(p.readerDone)
	br := bufio.NewReaderSize(p.out, 64<<10)
	want := frameHello
	for {
		typ, body, err := readFrame(br)
		if err != nil {
			p.readErr = err
			return
		}
		if typ != want {
			p.readErr = fmt.Errorf("process: worker process %d sent frame type %q, want %q", p.pid, typ, want)
			return
		}
		want = frameResult
		select {
		case p.replies <- body:
		default:
			p.readErr = fmt.Errorf("process: worker process %d sent a result no task was waiting for", p.pid)
			return
		}
	}
}

// logOutput copies the worker's output lines to Config.Output with a
// prefix, remembering the last ones for error messages.
func (p *proc) logOutput() {
	defer p.b.wg.Done()
	defer close(p.logDone)
	prefix := fmt.Sprintf("gale worker %d: ", p.pid)
	br := bufio.NewReaderSize(p.logR, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := strings.TrimSuffix(string(line), "\n")
			p.b.outMu.Lock()
			io.WriteString(p.b.cfg.Output, prefix+text+"\n") // output is best effort
			p.b.outMu.Unlock()
			p.tailMu.Lock()
			if len(p.tail) == tailLines {
				p.tail = append(p.tail[:0], p.tail[1:]...)
			}
			p.tail = append(p.tail, text)
			p.tailMu.Unlock()
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// outputTail returns the end of the worker's output for an error message:
// from the last Go panic or fatal error on if there is one, else the last
// ten lines.
func (p *proc) outputTail() string {
	p.tailMu.Lock()
	lines := append([]string(nil), p.tail...)
	p.tailMu.Unlock()
	if len(lines) == 0 {
		return "; it wrote no output"
	}
	from := max(0, len(lines)-10)
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			from = i
			break
		}
	}
	s := strings.Join(lines[from:], "\n")
	if len(s) > 4096 {
		s = s[:4096] + "\n..."
	}
	return "; its output ended with:\n" + s
}

// supervise waits until the worker exits or is retired, stops it — by
// closing its task pipe, then by killing it after Config.StopTimeout — and
// reaps it.
func (b *Backend) supervise(p *proc) {
	defer b.wg.Done()
	select {
	case <-p.readerDone:
	case <-p.stopCh:
	}
	p.in.Close() // end of tasks: the worker cancels what it runs and exits
	timer := time.NewTimer(b.cfg.StopTimeout)
	select {
	case <-p.readerDone:
	case <-timer.C:
		p.cmd.Process.Kill()
	}
	timer.Stop()
	err := p.cmd.Wait()
	// Our read ends: a descendant of the worker may still hold the other
	// ends; closing ours stops the readers regardless.
	p.out.Close()
	<-p.readerDone
	timer = time.NewTimer(b.cfg.StopTimeout)
	select {
	case <-p.logDone:
	case <-timer.C:
		p.logR.Close()
		<-p.logDone
	}
	timer.Stop()
	p.logR.Close()
	p.exitErr = err
	close(p.exited)
	b.exited(p)
}

// describeExit describes a Wait error.
func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
