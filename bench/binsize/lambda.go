package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/internal/awsstandin"
	"github.com/galeproject/gale/probe"
)

// The Lambda stand-in is started and reached as bench/backends does
// (cloud.go, startAWS): an emulator pool whose bootstrap is the build
// under test, and the production Lambda client pointed at it.

// invokeTimeout bounds one invocation on the stand-in.
const invokeTimeout = 60 * time.Second

// standIn starts fresh Lambda emulator pools.
type standIn struct {
	emulator string
	out      io.Writer
	seq      int // the next probe request's sequence number
}

// newStandIn finds the emulator and isolates the AWS SDK's credential
// chain, or says why the stand-in cannot run here.
func newStandIn(showOutput bool) (*standIn, error) {
	emu, err := awsstandin.Tool(awsstandin.EmulatorTool)
	if err != nil {
		return nil, err
	}
	if err := awsstandin.Isolate(filepath.Join(os.TempDir(), "gale-bench-no-aws-config")); err != nil {
		return nil, err
	}
	return &standIn{emulator: emu, out: discardOr(showOutput)}, nil
}

// lambdaSample is one fresh pool's figures.
type lambdaSample struct {
	setup, cold time.Duration
	warm        []time.Duration
}

// start starts a pool of one emulator running bin and the client.
func (s *standIn) start(ctx context.Context, bin string) (*awsstandin.Pool, *aws.Lambda, error) {
	pool, err := awsstandin.StartPool(awsstandin.PoolConfig{Emulator: s.emulator, Bootstrap: bin, Size: 1, Output: s.out})
	if err != nil {
		return nil, nil, err
	}
	l, err := aws.NewLambda(ctx, aws.LambdaConfig{Region: "us-east-1", Endpoint: pool.URL(),
		Function: awsstandin.FunctionName, Concurrency: 1, MemoryMiB: 512})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, l, nil
}

// invoke runs one probe task (sleep 0 s) and checks its answer; cold is
// whether it must be the worker's first.
func (s *standIn) invoke(ctx context.Context, l backends.Backend, cold bool) (time.Duration, error) {
	seq := s.seq
	s.seq++
	ctx, cancel := context.WithTimeout(ctx, invokeTimeout)
	defer cancel()
	t0 := time.Now()
	res, err := l.Invoke(ctx, backends.Task{ID: fmt.Sprintf("binsize-%d", seq), Payload: probe.NewRequest(probe.Sleep, 0, 0, seq)})
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	var resp probe.Response
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		return 0, fmt.Errorf("decoding the probe's answer %.200q: %w", res.Payload, err)
	}
	if resp.Kind != probe.ResultKind || resp.Seq != seq {
		return 0, fmt.Errorf("the probe answered kind %q seq %d, want %q seq %d", resp.Kind, resp.Seq, probe.ResultKind, seq)
	}
	if resp.Cold != cold {
		return 0, fmt.Errorf("invocation %d: the worker reports cold=%v, want %v", seq, resp.Cold, cold)
	}
	return d, nil
}

// sample starts a fresh pool running bin, times its first invocation and
// then warm more.
func (s *standIn) sample(ctx context.Context, bin string, warm int) (lambdaSample, error) {
	t0 := time.Now()
	pool, l, err := s.start(ctx, bin)
	if err != nil {
		return lambdaSample{}, err
	}
	defer pool.Close()
	defer l.Close()
	out := lambdaSample{setup: time.Since(t0)}
	if out.cold, err = s.invoke(ctx, l, true); err != nil {
		return out, fmt.Errorf("cold invocation: %w", err)
	}
	for range warm {
		d, err := s.invoke(ctx, l, false)
		if err != nil {
			return out, fmt.Errorf("warm invocation: %w", err)
		}
		out.warm = append(out.warm, d)
	}
	return out, nil
}

// unlinked tries bin, which does not link the aws backend, once as the
// bootstrap and returns what happened, in one line: the invocation's
// error and the error the bootstrap printed.
func (s *standIn) unlinked(ctx context.Context, bin string) string {
	var log lockedBuffer
	saved := s.out
	s.out = io.MultiWriter(saved, &log)
	defer func() { s.out = saved }()
	pool, l, err := s.start(ctx, bin)
	if err != nil {
		return "the stand-in did not start: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := l.Invoke(ctx, backends.Task{ID: "binsize-unlinked", Payload: probe.NewRequest(probe.Sleep, 0, 0, 0)})
	l.Close()
	pool.Close() // its output is all in log now
	if err == nil {
		return fmt.Sprintf("the invocation unexpectedly succeeded: %.200q", res.Payload)
	}
	msg := "the invocation failed (" + strings.Join(strings.Fields(err.Error()), " ") + ")"
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.HasPrefix(line, "gale:") {
			return msg + "; the bootstrap exited saying: " + line
		}
	}
	return msg
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// process's output copiers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
