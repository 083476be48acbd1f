package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// These tests record concurrent histories of calls from several clients
// (each on its own connection) and check them with porcupine against a
// sequential model of the object. A history is linearizable if some total
// order of the calls, consistent with real time, matches the model.

type op struct {
	kind string
	key  string
	a, b int64
}

type out struct {
	v  int64
	ok bool
}

// record runs clients goroutines doing n calls each and returns the history.
func record(t *testing.T, clients, n int, c []*Client, do func(c *Client, r *rand.Rand) (op, out, error)) []porcupine.Operation {
	t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var hist []porcupine.Operation
	var wg sync.WaitGroup
	for id := 0; id < clients; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(id), 7))
			for i := 0; i < n; i++ {
				call := time.Since(start).Nanoseconds()
				in, o, err := do(c[id%len(c)], r)
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				hist = append(hist, porcupine.Operation{ClientId: id, Input: in, Output: o, Call: call, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return hist
}

func checkLinearizable(t *testing.T, m porcupine.Model, hist []porcupine.Operation) {
	t.Helper()
	switch res := porcupine.CheckOperationsTimeout(m, hist, 20*time.Second); res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Skip("linearizability check timed out (history too large for this machine)")
	default:
		t.Fatalf("history of %d operations is not linearizable", len(hist))
	}
}

func clients(t *testing.T, addr string, n int) []*Client {
	out := make([]*Client, n)
	for i := range out {
		out[i] = dial(t, addr)
	}
	return out
}

func TestLinearizableAtomicLong(t *testing.T) {
	s := startServer(t, ServerConfig{})
	cs := clients(t, s.Addr(), 3)
	ctx := context.Background()
	hist := record(t, 6, 60, cs, func(c *Client, r *rand.Rand) (op, out, error) {
		a := c.AtomicLong("x")
		switch r.IntN(4) {
		case 0:
			v, err := a.Get(ctx)
			return op{kind: "get"}, out{v: v}, err
		case 1:
			x := r.Int64N(5)
			return op{kind: "set", a: x}, out{}, a.Set(ctx, x)
		case 2:
			d := r.Int64N(3) + 1
			v, err := a.AddAndGet(ctx, d)
			return op{kind: "add", a: d}, out{v: v}, err
		default:
			e, u := r.Int64N(5), r.Int64N(5)
			ok, err := a.CompareAndSet(ctx, e, u)
			return op{kind: "cas", a: e, b: u}, out{ok: ok}, err
		}
	})
	checkLinearizable(t, porcupine.Model{
		Init: func() any { return int64(0) },
		Step: func(st, in, o any) (bool, any) {
			v, i, r := st.(int64), in.(op), o.(out)
			switch i.kind {
			case "get":
				return r.v == v, v
			case "set":
				return true, i.a
			case "add":
				return r.v == v+i.a, v + i.a
			default:
				if v == i.a {
					return r.ok, i.b
				}
				return !r.ok, v
			}
		},
		DescribeOperation: func(in, o any) string { return fmt.Sprintf("%v -> %v", in, o) },
	}, hist)
}

type mapState struct {
	v  int64
	ok bool
}

func TestLinearizableMap(t *testing.T) {
	s := startServer(t, ServerConfig{})
	cs := clients(t, s.Addr(), 3)
	ctx := context.Background()
	enc := func(v int64) []byte { return []byte{byte(v)} }
	dec := func(b []byte, ok bool) out {
		if !ok {
			return out{}
		}
		return out{v: int64(b[0]), ok: true}
	}
	hist := record(t, 6, 60, cs, func(c *Client, r *rand.Rand) (op, out, error) {
		m := c.Map("m")
		k := fmt.Sprint("k", r.IntN(3))
		switch r.IntN(4) {
		case 0:
			v, ok, err := m.Get(ctx, k)
			return op{kind: "get", key: k}, dec(v, ok), err
		case 1:
			x := r.Int64N(10)
			v, ok, err := m.Put(ctx, k, enc(x))
			return op{kind: "put", key: k, a: x}, dec(v, ok), err
		case 2:
			v, ok, err := m.Delete(ctx, k)
			return op{kind: "del", key: k}, dec(v, ok), err
		default:
			x := r.Int64N(10)
			v, ok, err := m.PutIfAbsent(ctx, k, enc(x))
			return op{kind: "pia", key: k, a: x}, dec(v, ok), err
		}
	})
	checkLinearizable(t, porcupine.Model{
		// Keys are independent, so the history is checked per key.
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			for _, o := range h {
				k := o.Input.(op).key
				by[k] = append(by[k], o)
			}
			var parts [][]porcupine.Operation
			for _, p := range by {
				parts = append(parts, p)
			}
			return parts
		},
		Init: func() any { return mapState{} },
		Step: func(st, in, o any) (bool, any) {
			s, i, r := st.(mapState), in.(op), o.(out)
			prevOK := r.ok == s.ok && (!s.ok || r.v == s.v)
			switch i.kind {
			case "get":
				return prevOK, s
			case "put":
				return prevOK, mapState{v: i.a, ok: true}
			case "del":
				return prevOK, mapState{}
			default:
				if s.ok {
					return prevOK, s
				}
				return !r.ok, mapState{v: i.a, ok: true}
			}
		},
	}, hist)
}

func TestLinearizableSemaphore(t *testing.T) {
	s := startServer(t, ServerConfig{})
	cs := clients(t, s.Addr(), 3)
	ctx := context.Background()
	hist := record(t, 6, 60, cs, func(c *Client, r *rand.Rand) (op, out, error) {
		sem := c.Semaphore("s", 2)
		switch r.IntN(3) {
		case 0:
			ok, err := sem.TryAcquire(ctx, 1)
			return op{kind: "try"}, out{ok: ok}, err
		case 1:
			return op{kind: "release"}, out{}, sem.Release(ctx, 1)
		default:
			n, err := sem.Available(ctx)
			return op{kind: "avail"}, out{v: int64(n)}, err
		}
	})
	checkLinearizable(t, porcupine.Model{
		Init: func() any { return int64(2) },
		Step: func(st, in, o any) (bool, any) {
			n, i, r := st.(int64), in.(op), o.(out)
			switch i.kind {
			case "try":
				if n > 0 {
					return r.ok, n - 1
				}
				return !r.ok, n
			case "release":
				return true, n + 1
			default:
				return r.v == n, n
			}
		},
	}, hist)
}

func TestLinearizableFuture(t *testing.T) {
	s := startServer(t, ServerConfig{})
	cs := clients(t, s.Addr(), 3)
	ctx := context.Background()
	hist := record(t, 6, 30, cs, func(c *Client, r *rand.Rand) (op, out, error) {
		f := c.Future("f")
		if r.IntN(4) == 0 {
			x := r.Int64N(100)
			err := f.Set(ctx, []byte{byte(x)})
			if err != nil && !isAlreadySet(err) {
				return op{}, out{}, err
			}
			return op{kind: "set", a: x}, out{ok: err == nil}, nil
		}
		done, err := f.IsDone(ctx)
		return op{kind: "done"}, out{ok: done}, err
	})
	checkLinearizable(t, porcupine.Model{
		Init: func() any { return mapState{} },
		Step: func(st, in, o any) (bool, any) {
			s, i, r := st.(mapState), in.(op), o.(out)
			if i.kind == "set" {
				if s.ok {
					return !r.ok, s
				}
				return r.ok, mapState{v: i.a, ok: true}
			}
			return r.ok == s.ok, s
		},
	}, hist)
}

func isAlreadySet(err error) bool { return errorsIs(err, ErrAlreadySet) }

var errorsIs = errors.Is
