package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// Serve is the worker side of the protocol: it announces itself on out,
// then reads tasks from in, runs each with h (one at a time) and writes
// its result to out, until in ends — the backend retired this worker, or
// the backend's process died — or ctx is done. A task still running then
// has its context cancelled and is waited for; its result is dropped.
// Serve returns nil when in ends cleanly, ctx.Err() when ctx is done, and
// an error if the protocol is broken. It closes in, if in is an io.Closer,
// before it returns (that is how it stops reading early); in must be one
// for Serve to return before in ends.
//
// A panic in h is recovered and reported to the backend as a function
// error of type "panic". Serve owns two goroutines, the frame reader and
// the running task, and waits for both before it returns.
//
// Programs do not call Serve directly: the gale package's worker entry
// (gale.Run, gale.ServeWorkerIfRequested) calls ServeInherited when the
// process was started by a Backend. Serve is exported for tests and for
// other transports.
func Serve(ctx context.Context, h backends.Handler, in io.Reader, out io.Writer) error {
	if _, err := out.Write(appendFrame(nil, frameHello, []byte(protocolName))); err != nil {
		return fmt.Errorf("process: worker: announcing itself: %w", err)
	}
	type frame struct {
		typ  byte
		body []byte
	}
	frames := make(chan frame)
	readErr := make(chan error, 1)
	stopRead := make(chan struct{})
	results := make(chan []byte, 1) // at most one task runs
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			typ, body, err := readFrame(br)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- frame{typ, body}:
			case <-stopRead:
				return
			}
		}
	}()

	busy, cold := false, true
	cancelTask := context.CancelFunc(func() {})
	// stop ends the task and the reader and waits for both.
	stop := func() {
		cancelTask()
		close(stopRead)
		if c, ok := in.(io.Closer); ok {
			c.Close() // unblocks the reader if the input has not ended
		}
		wg.Wait()
	}
	for {
		select {
		case f := <-frames:
			if f.typ != frameTask {
				stop()
				return fmt.Errorf("process: worker: unexpected frame type %q from the backend", f.typ)
			}
			if busy {
				stop()
				return errors.New("process: worker: the backend sent a task while another one was running")
			}
			_, payload, err := decodeTask(f.body)
			if err != nil {
				stop()
				return err
			}
			tctx, cancel := context.WithCancel(ctx)
			cancelTask = cancel
			busy = true
			wg.Add(1)
			go func(cold bool) {
				defer wg.Done()
				results <- runTask(tctx, h, payload, cold)
			}(cold)
			cold = false
		case r := <-results:
			cancelTask()
			busy = false
			if _, err := out.Write(r); err != nil {
				stop()
				return fmt.Errorf("process: worker: writing a result: %w", err)
			}
		case err := <-readErr:
			stop()
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("process: worker: reading tasks: %w", err)
		case <-ctx.Done():
			stop()
			return ctx.Err()
		}
	}
}

// runTask runs one task and returns its result frame.
func runTask(ctx context.Context, h backends.Handler, payload []byte, cold bool) (frame []byte) {
	r := result{start: time.Now()}
	if cold {
		r.flags |= flagCold
	}
	defer func() {
		if p := recover(); p != nil {
			r.end = time.Now()
			r.flags |= flagError
			r.errType, r.errMsg = "panic", fmt.Sprintf("%v\n%s", p, debug.Stack())
			frame = resultFrame(r)
		}
	}()
	out, err := h(ctx, payload)
	r.end = time.Now()
	if err == nil && len(out) > MaxPayload {
		err = fmt.Errorf("process: result of %d bytes exceeds the %d-byte limit; write large results to object storage", len(out), MaxPayload)
	}
	if err != nil {
		r.flags |= flagError
		r.errType, r.errMsg = "error", err.Error()
		var fe *backends.FunctionError
		if errors.As(err, &fe) {
			r.errType, r.errMsg = fe.Type, fe.Message
		}
		if errors.Is(err, backends.ErrNotStarted) {
			r.flags |= flagNotStarted
		}
		return resultFrame(r)
	}
	r.payload = out
	return resultFrame(r)
}
