package glider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// probeState is shared by every probe instance of a test: it observes how
// the server runs the methods.
type probeState struct {
	running atomic.Int32 // methods executing action code right now
	maxSeen atomic.Int32
	started chan string

	mu     sync.Mutex
	events []string
	total  int64
}

func (p *probeState) enter() {
	n := p.running.Add(1)
	for {
		m := p.maxSeen.Load()
		if n <= m || p.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
}

func (p *probeState) leave() { p.running.Add(-1) }

func (p *probeState) log(e string) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *probeState) log2() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.events, ",")
}

// probe's methods count themselves as running except while blocked inside
// the stream's Read or Write (where the server may yield the action lock).
type probe struct {
	st    *probeState
	bytes int64 // action state, mutated without locks: the race detector checks the action lock
}

type probeReader struct {
	st *probeState
	r  io.Reader
}

func (p probeReader) Read(b []byte) (int, error) {
	p.st.leave()
	defer p.st.enter()
	return p.r.Read(b)
}

func (a *probe) OnWrite(_ context.Context, r io.Reader) error {
	a.st.enter()
	defer a.st.leave()
	br := bufio.NewReader(probeReader{a.st, r})
	name, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	a.st.log(name + " start")
	if a.st.started != nil {
		a.st.started <- name
	}
	n, err := io.Copy(io.Discard, br)
	a.bytes += n
	a.st.mu.Lock()
	a.st.total += n
	a.st.mu.Unlock()
	a.st.log(name + " end")
	return err
}

func (a *probe) OnRead(_ context.Context, w io.Writer) error {
	a.st.enter()
	defer a.st.leave()
	a.st.leave()
	_, err := fmt.Fprintf(w, "%d\n", a.bytes)
	a.st.enter()
	return err
}

func probeCluster(t *testing.T, st *probeState) (*Cluster, *Client) {
	reg := DefaultRegistry()
	reg.Register("probe", func() Action { return &probe{st: st} })
	cl := startCluster(t, ClusterConfig{StorageServers: 1, ActiveServers: 1, Registry: reg})
	return cl, dial(t, cl, "probe")
}

func TestActionRunsOneMethodAtATime(t *testing.T) {
	for _, interleave := range []bool{false, true} {
		t.Run(fmt.Sprintf("interleave=%v", interleave), func(t *testing.T) {
			st := &probeState{}
			_, c := probeCluster(t, st)
			ctx := testCtx(t)
			if _, err := c.CreateAction(ctx, "/p", "probe", ActionOptions{Interleave: interleave}); err != nil {
				t.Fatal(err)
			}
			var want atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 8 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(i), 9))
					w, err := c.ActionWriter(ctx, "/p")
					if err != nil {
						errs <- err
						return
					}
					data := append([]byte(fmt.Sprintf("w%d\n", i)), pattern(100_000+rng.IntN(3<<20), uint64(i))...)
					want.Add(int64(len(data) - len(fmt.Sprintf("w%d\n", i))))
					if err := writeRandomly(w, data, rng, 200_000); err != nil {
						errs <- err
						return
					}
					if err := w.Close(); err != nil {
						errs <- err
					}
				})
			}
			for range 4 {
				wg.Go(func() {
					if _, err := c.ReadAction(ctx, "/p"); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if m := st.maxSeen.Load(); m != 1 {
				t.Fatalf("%d methods ran at the same time", m)
			}
			out, err := c.ReadAction(ctx, "/p")
			if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(want.Load()) {
				t.Fatalf("action state %q, want %d (%v)", out, want.Load(), err)
			}
		})
	}
}

// Without interleaving, a method waiting for its stream keeps the action:
// the second writer's method starts only after the first one returned.
func TestActionWithoutInterleavingBlocksOthers(t *testing.T) {
	st := &probeState{started: make(chan string, 2)}
	_, c := probeCluster(t, st)
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/p", "probe", ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	a, err := c.ActionWriter(ctx, "/p")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.Write([]byte("A\n"))
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	<-st.started // A's method runs and now waits for more data, holding the lock
	b, err := c.ActionWriter(ctx, "/p")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = b.Write([]byte("B\nsome data"))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { bDone <- b.Close() }()
	_, _ = a.Write([]byte("more"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	if got, want := st.log2(), "A start,A end,B start,B end"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}

// With interleaving, a method waiting for its stream yields the action to
// another method, which runs to completion while the first still waits.
func TestActionInterleaving(t *testing.T) {
	st := &probeState{started: make(chan string, 2)}
	_, c := probeCluster(t, st)
	ctx := testCtx(t)
	if _, err := c.CreateAction(ctx, "/p", "probe", ActionOptions{Interleave: true}); err != nil {
		t.Fatal(err)
	}
	a, err := c.ActionWriter(ctx, "/p")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.Write([]byte("A\n"))
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	<-st.started
	// B completes while A's stream is still open (without interleaving
	// this would wait forever; the test's context bounds it).
	if err := c.WriteAction(ctx, "/p", []byte("B\n0123456789")); err != nil {
		t.Fatal(err)
	}
	<-st.started
	_, _ = a.Write([]byte("abc"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := st.log2(), "A start,B start,B end,A end"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if m := st.maxSeen.Load(); m != 1 {
		t.Fatalf("%d methods ran at the same time", m)
	}
	out, _ := c.ReadAction(ctx, "/p")
	if strings.TrimSpace(string(out)) != "13" {
		t.Fatalf("state %q, want 13 bytes", out)
	}
}

// failing is an action whose methods fail or panic on demand and which
// reports the error its OnWrite saw.
type failing struct {
	seen    chan error
	deleted *atomic.Bool
	n       int
}

func (f *failing) OnCreate(_ context.Context, env *Env) error {
	if env.Options["fail"] == "create" {
		return errors.New("refusing to be created")
	}
	if env.Options["fail"] == "panic-create" {
		panic("creation panic")
	}
	return nil
}

func (f *failing) OnWrite(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if f.seen != nil {
		f.seen <- err
	}
	if err != nil {
		return err
	}
	switch string(b) {
	case "panic":
		var m map[string]int
		m["x"]++ // a real runtime panic
	case "fail":
		return errors.New("bad input")
	}
	f.n++
	return nil
}

func (f *failing) OnRead(_ context.Context, w io.Writer) error {
	_, err := fmt.Fprint(w, f.n)
	return err
}

func (f *failing) OnDelete(context.Context) error {
	f.deleted.Store(true)
	return nil
}

func TestActionFailures(t *testing.T) {
	seen := make(chan error, 4)
	var deleted atomic.Bool
	reg := DefaultRegistry()
	reg.Register("failing", func() Action { return &failing{seen: seen, deleted: &deleted} })
	cl := startCluster(t, ClusterConfig{StorageServers: 1, ActiveServers: 1, Registry: reg})
	c := dial(t, cl, "fail")
	ctx := testCtx(t)

	if _, err := c.CreateAction(ctx, "/x", "no-such-type", ActionOptions{}); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "no-such-type") {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/x", "failing", ActionOptions{Options: map[string]string{"fail": "create"}}); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("failing OnCreate: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/x", "failing", ActionOptions{Options: map[string]string{"fail": "panic-create"}}); !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking OnCreate: %v", err)
	}
	if _, err := c.Lookup(ctx, "/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed creation left a node: %v", err)
	}
	if _, err := c.CreateAction(ctx, "/m", ActionMerge, ActionOptions{Options: map[string]string{"combine": "nope"}}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("merge with an unknown combiner: %v", err)
	}

	if _, err := c.CreateAction(ctx, "/f", "failing", ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	err := c.WriteAction(ctx, "/f", []byte("panic"))
	<-seen
	if !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "/f") {
		t.Fatalf("panicking OnWrite: %v", err)
	}
	err = c.WriteAction(ctx, "/f", []byte("fail"))
	<-seen
	if !errors.Is(err, ErrActionFailed) || !strings.Contains(err.Error(), "bad input") {
		t.Fatalf("failing OnWrite: %v", err)
	}
	// The panic failed only its stream: the action and the server go on.
	if err := c.WriteAction(ctx, "/f", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	<-seen
	if out, err := c.ReadAction(ctx, "/f"); err != nil || string(out) != "1" {
		t.Fatalf("read after failures: %q %v", out, err)
	}

	// A stream cut mid-transfer: the action sees ErrStreamBroken.
	w, err := c.ActionWriter(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 3*DefaultBlockSize+10)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := <-seen; !errors.Is(err, ErrStreamBroken) {
		t.Fatalf("action saw %v after an abort, want ErrStreamBroken", err)
	}
	// ... and the same when the writing client goes away.
	c2 := dial(t, cl, "fail")
	w, err = c2.ActionWriter(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, DefaultBlockSize+10)); err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	if err := <-seen; !errors.Is(err, ErrStreamBroken) {
		t.Fatalf("action saw %v after its writer vanished, want ErrStreamBroken", err)
	}
	if out, err := c.ReadAction(ctx, "/f"); err != nil || string(out) != "1" {
		t.Fatalf("cut streams changed the state: %q %v", out, err)
	}

	// Filter actions have no OnWrite.
	if err := c.WriteFile(ctx, "/in", "", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAction(ctx, "/flt", ActionFilter, ActionOptions{Options: map[string]string{"input": "/in"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ActionWriter(ctx, "/flt"); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("writing a filter: %v", err)
	}
	if err := c.Delete(ctx, "/f"); err != nil {
		t.Fatal(err)
	}
	if !deleted.Load() {
		t.Fatal("OnDelete did not run")
	}
}
