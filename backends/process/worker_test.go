package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// pipePeer drives Serve in-process over io.Pipes, as a Backend would.
type pipePeer struct {
	tasks   *io.PipeWriter
	results *bufio.Reader
	done    chan error
}

func servePipes(ctx context.Context, h func(context.Context, []byte) ([]byte, error)) *pipePeer {
	tr, tw := io.Pipe()
	rr, rw := io.Pipe()
	p := &pipePeer{tasks: tw, results: bufio.NewReader(rr), done: make(chan error, 1)}
	go func() {
		err := Serve(ctx, h, tr, rw)
		rw.Close()
		p.done <- err
	}()
	return p
}

func (p *pipePeer) next(t *testing.T, want byte) []byte {
	t.Helper()
	typ, body, err := readFrame(p.results)
	if err != nil || typ != want {
		t.Fatalf("read frame: type %q, %v; want type %q", typ, err, want)
	}
	return body
}

func TestServeAnswersTasksInOrderAndStopsAtEOF(t *testing.T) {
	p := servePipes(context.Background(), func(_ context.Context, b []byte) ([]byte, error) {
		if string(b) == "bad" {
			return nil, errors.New("bad task")
		}
		return bytes.ToUpper(b), nil
	})
	if hello := p.next(t, frameHello); string(hello) != protocolName {
		t.Fatalf("hello = %q", hello)
	}
	for i, tc := range []struct {
		in, out, errMsg string
	}{{"abc", "ABC", ""}, {"bad", "", "bad task"}, {"x", "X", ""}} {
		if _, err := p.tasks.Write(taskFrame("t", []byte(tc.in))); err != nil {
			t.Fatal(err)
		}
		r, err := decodeResult(p.next(t, frameResult))
		if err != nil {
			t.Fatal(err)
		}
		if cold := r.flags&flagCold != 0; cold != (i == 0) {
			t.Errorf("task %d: cold = %v", i, cold)
		}
		if string(r.payload) != tc.out || r.errMsg != tc.errMsg || (tc.errMsg != "") != (r.flags&flagError != 0) {
			t.Errorf("task %q: result %+v", tc.in, r)
		}
		if r.start.After(r.end) || r.start.IsZero() {
			t.Errorf("task %q: start %v end %v", tc.in, r.start, r.end)
		}
	}
	p.tasks.Close()
	if err := <-p.done; err != nil {
		t.Errorf("Serve after the end of tasks: %v, want nil", err)
	}
}

func TestServeCancelsTheRunningTaskWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	p := servePipes(ctx, func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	p.next(t, frameHello)
	p.tasks.Write(taskFrame("t", []byte("wait")))
	<-started
	cancel()
	if err := <-p.done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want context.Canceled", err)
	}
}

func TestServeRejectsASecondTaskWhileBusy(t *testing.T) {
	release := make(chan struct{})
	p := servePipes(context.Background(), func(ctx context.Context, _ []byte) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	defer close(release)
	p.next(t, frameHello)
	p.tasks.Write(taskFrame("a", nil))
	p.tasks.Write(taskFrame("b", nil))
	select {
	case err := <-p.done:
		if err == nil {
			t.Error("Serve accepted two tasks at once")
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return")
	}
}

func FuzzDecodeFrames(f *testing.F) {
	f.Add(taskFrame("job/s0/t1", []byte(`{"kind":"x"}`))[5:], []byte{})
	f.Add(resultFrame(result{start: time.Unix(1, 2), end: time.Unix(3, 4), flags: flagError, errType: "panic", errMsg: "m"})[5:], []byte("p"))
	f.Fuzz(func(t *testing.T, body, payload []byte) {
		decodeTask(body)
		decodeResult(body)
		// Round trips.
		id, p, err := decodeTask(taskFrame(string(body), payload)[5:])
		if err != nil || id != string(body) || !bytes.Equal(p, payload) {
			t.Fatalf("task round trip: %q %q %v", id, p, err)
		}
		in := result{start: time.Unix(0, 5), end: time.Unix(0, 9), flags: flagError | flagCold, errType: string(body), errMsg: string(payload)}
		out, err := decodeResult(resultFrame(in)[5:])
		if err != nil || out.errType != in.errType || out.errMsg != in.errMsg || !out.start.Equal(in.start) || out.flags != in.flags {
			t.Fatalf("result round trip: %+v %v", out, err)
		}
	})
}
