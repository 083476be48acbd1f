package state

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The helper process of the cluster crash tests: a cluster member
// (GALE_STATE_TEST_CLUSTER is "rf=N" to start a cluster, or "join=ADDR"),
// printing its address.
func init() {
	spec := os.Getenv("GALE_STATE_TEST_CLUSTER")
	if spec == "" {
		return
	}
	reg := userRegistry()
	cc := &ClusterConfig{Partitions: 16, FailTimeout: time.Second}
	if rf, ok := strings.CutPrefix(spec, "rf="); ok {
		cc.ReplicationFactor, _ = strconv.Atoi(rf)
	} else {
		cc.Join = []string{strings.TrimPrefix(spec, "join=")}
	}
	s, err := NewServer(ServerConfig{Token: testToken, Registry: reg, Cluster: cc, DataDir: os.Getenv("GALE_STATE_TEST_DIR"),
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("addr:", s.Addr())
	_ = s.Serve(context.Background())
	os.Exit(0)
}

type memberProc struct {
	cmd  *exec.Cmd
	addr string
}

func startMember(t *testing.T, spec, dir string) *memberProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GALE_STATE_TEST_CLUSTER="+spec, "GALE_STATE_TEST_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr: ") {
		t.Fatalf("member process (%s): %q, %v", spec, line, err)
	}
	return &memberProc{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "addr: "))}
}

// waitStable waits until the cluster has members members, every partition
// has its replica count, and the view has not changed for a while (no
// partition is moving).
func waitStable(t *testing.T, c *Client, members int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var since time.Time
	var last uint64
	for time.Now().Before(deadline) {
		c.RefreshView(ctx)
		v := c.View()
		ok := len(v.Members) == members
		for _, p := range v.Parts {
			ok = ok && len(p) == min(v.ReplicationFactor, members)
		}
		switch {
		case !ok || v.Epoch != last:
			since, last = time.Now(), v.Epoch
		case time.Since(since) > 1500*time.Millisecond:
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("cluster did not settle on %d members: %+v", members, c.View())
}

// history records operations on one object from several clients.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

const unknownReturn = math.MaxInt64

func (h *history) add(client int, in, o any, call, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: o, Call: call, Return: ret})
	h.mu.Unlock()
}

type xout struct {
	v       int64
	ok      bool
	unknown bool
}

// counterModel: add a -> returns the new value; get -> the value.
var counterModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(st, in, o any) (bool, any) {
		v, i, r := st.(int64), in.(op), o.(xout)
		switch i.kind {
		case "get":
			return r.unknown || r.v == v, v
		default:
			return r.unknown || r.v == v+i.a, v + i.a
		}
	},
	DescribeOperation: func(in, o any) string { return fmt.Sprintf("%v -> %v", in, o) },
}

// registerModel: put a -> returns the previous value; get -> the value.
var registerModel = porcupine.Model{
	Init: func() any { return mapState{} },
	Step: func(st, in, o any) (bool, any) {
		s, i, r := st.(mapState), in.(op), o.(xout)
		if i.kind == "get" {
			return r.unknown || (r.ok == s.ok && (!r.ok || r.v == s.v)), s
		}
		return r.unknown || (r.ok == s.ok && (!r.ok || r.v == s.v)), mapState{v: i.a, ok: true}
	},
	DescribeOperation: func(in, o any) string { return fmt.Sprintf("%v -> %v", in, o) },
}

// TestLinearizableUnderCrash runs three member processes (rf = 2 and 3)
// under concurrent clients calling a Counter, a Map and a user-defined
// object; a third of the way in the first member (the one that started the
// cluster) is SIGKILLed, two thirds in a new member joins. Every history
// must be linearizable (porcupine), and calls are retried across the
// failover with their session numbers so none is lost or applied twice.
func TestLinearizableUnderCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts member processes")
	}
	for _, rf := range []int{2, 3} {
		t.Run(fmt.Sprintf("rf=%d", rf), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			ms := []*memberProc{startMember(t, fmt.Sprintf("rf=%d", rf), "")}
			ms = append(ms, startMember(t, "join="+ms[0].addr, ""), startMember(t, "join="+ms[0].addr, ""))
			addrs := []string{ms[0].addr, ms[1].addr, ms[2].addr}
			ctx := context.Background()
			admin, err := Dial(ctx, ClientConfig{Servers: addrs, Token: testToken})
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			waitStable(t, admin, 3)

			const clients = 4
			const dur = 6 * time.Second
			start := time.Now()
			now := func() int64 { return time.Since(start).Nanoseconds() }
			hc, hm, ht := &history{}, &history{}, &history{}
			var wg sync.WaitGroup
			var failed sync.Map
			for id := 0; id < clients; id++ {
				c, err := Dial(ctx, ClientConfig{Servers: addrs, Token: testToken})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(id)))
					for time.Since(start) < dur {
						call := now()
						var h *history
						var in op
						var o xout
						var err error
						switch r.IntN(6) {
						case 0:
							h, in = hc, op{kind: "get"}
							o.v, err = c.Counter("c").Persistent().Get(ctx)
						case 1:
							h, in = hc, op{kind: "add", a: r.Int64N(5) + 1}
							o.v, err = c.Counter("c").Persistent().Add(ctx, in.a)
						case 2:
							h, in = hm, op{kind: "get"}
							var b []byte
							b, o.ok, err = c.Map("m").Persistent().Get(ctx, "k")
							if o.ok {
								o.v = int64(b[0])
							}
						case 3:
							h, in = hm, op{kind: "put", a: r.Int64N(50)}
							var b []byte
							b, o.ok, err = c.Map("m").Persistent().Put(ctx, "k", []byte{byte(in.a)})
							if o.ok {
								o.v = int64(b[0])
							}
						case 4:
							h, in = ht, op{kind: "get"}
							o.v, err = Call[int64](ctx, c.Object("Centroids", "t").Persistent(), "Total")
						default:
							h, in = ht, op{kind: "add", a: 1}
							o.v, err = Call[int64](ctx, c.Object("Centroids", "t").Persistent(), "Merge", []float64{2}, []int64{1})
						}
						ret := now()
						if err != nil {
							// The outcome is unknown: it may take effect at any
							// time after the call, or never.
							failed.Store(fmt.Sprint(in, err), true)
							h.add(id, in, xout{unknown: true}, call, unknownReturn)
							continue
						}
						h.add(id, in, o, call, ret)
						time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
					}
				}()
			}
			time.Sleep(dur / 3)
			_ = ms[0].cmd.Process.Signal(syscall.SIGKILL)
			t.Logf("SIGKILLed member at %s", ms[0].addr)
			time.Sleep(dur / 3)
			ms = append(ms, startMember(t, "join="+ms[1].addr, ""))
			t.Logf("member at %s joined", ms[3].addr)
			wg.Wait()
			failed.Range(func(k, _ any) bool { t.Logf("call failed: %v", k); return true })
			for name, h := range map[string]struct {
				h *history
				m porcupine.Model
			}{"Counter": {hc, counterModel}, "Map": {hm, registerModel}, "Centroids (user-defined)": {ht, counterModel}} {
				res := porcupine.CheckOperationsTimeout(h.m, h.h.ops, 30*time.Second)
				t.Logf("%s: %d operations, %v", name, len(h.h.ops), res)
				if res == porcupine.Illegal {
					t.Errorf("%s history of %d operations is not linearizable (seed %d)", name, len(h.h.ops), seed)
				}
			}
			// Every acknowledged increment is there exactly once.
			var acked, unknown int64
			for _, o := range hc.ops {
				if in := o.Input.(op); in.kind == "add" {
					if o.Output.(xout).unknown {
						unknown += in.a
					} else {
						acked += in.a
					}
				}
			}
			v, err := admin.Counter("c").Persistent().Get(ctx)
			if err != nil || v < acked || v > acked+unknown {
				t.Fatalf("counter = %d, %v; acknowledged adds sum to %d (+%d unknown)", v, err, acked, unknown)
			}
		})
	}
}
