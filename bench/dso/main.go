// Command dso measures Gale's distributed shared objects side by side with
// Redis and ZooKeeper on loopback (run it through bench/dso/run.sh, which
// starts both):
//
//   - latency of sequential 1 KiB put/get (DSO Blob vs Redis SET/GET);
//   - throughput of 200 concurrent clients on 800 random integer objects,
//     for a simple operation (one multiplication) and a complex one (10,000
//     multiplications), run on the server (a user-defined DSO object vs
//     Redis Lua scripts);
//   - time per barrier, crossed back-to-back by N parties (DSO
//     CyclicBarrier vs a Redis INCR/BLPOP barrier vs ZooKeeper's double
//     barrier recipe);
//   - Monte Carlo π with cloud threads on the local backend.
//
// It prints a table with ratios and writes a JSON results file.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"

	"github.com/galeproject/gale/examples/pi"
	"github.com/galeproject/gale/state"
)

// BenchInt is the integer object of the throughput benchmark: its methods
// run on the DSO server.
type BenchInt struct{ V int64 }

const modulus = 1_000_000_007

// Mul multiplies the value by x once (the simple operation).
func (b *BenchInt) Mul(x int64) int64 {
	if b.V == 0 {
		b.V = 1
	}
	b.V = b.V * x % modulus
	return b.V
}

// MulN multiplies the value by x n times (the complex operation).
func (b *BenchInt) MulN(x, n int64) int64 {
	if b.V == 0 {
		b.V = 1
	}
	for i := int64(0); i < n; i++ {
		b.V = b.V * x % modulus
	}
	return b.V
}

// Clone copies the object (cheaper than the default gob round trip).
func (b *BenchInt) Clone() *BenchInt { c := *b; return &c }

const luaMul = `
local v = tonumber(redis.call('GET', KEYS[1]) or '1')
local x = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do v = (v * x) % 1000000007 end
redis.call('SET', KEYS[1], v)
return v`

type result struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	DSO   float64 `json:"dso"`
	Redis float64 `json:"redis,omitempty"`
	ZK    float64 `json:"zookeeper,omitempty"`
	// Better is "lower" or "higher".
	Better string `json:"better"`
	Note   string `json:"note,omitempty"`
}

type report struct {
	Date     string   `json:"date"`
	Machine  string   `json:"machine"`
	Command  string   `json:"command"`
	Results  []result `json:"results"`
	Duration string   `json:"throughput_duration"`
}

func main() {
	if spec := os.Getenv("GALE_BENCH_DSO_MEMBER"); spec != "" {
		memberMain(spec)
		return
	}
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	replicaAddr := flag.String("redis-replicated", "", "address of a Redis primary with one replica, for the replicated comparisons (empty: skip them)")
	only := flag.String("only", "", "run only this part: standalone, replicated or availability (default: all)")
	availDur := flag.Duration("avail-duration", 60*time.Second, "length of the availability experiment")
	availClients := flag.Int("avail-clients", 32, "clients of the availability experiment")
	availControl := flag.Bool("avail-control", false, "availability: also run the same load without the crash and the join first (the machine's own dips)")
	availOut := flag.String("avail-out", "docs", "directory for dso-availability.png and .csv")
	zkAddr := flag.String("zk", "127.0.0.1:2181", "ZooKeeper address")
	out := flag.String("out", "bench/results/dso.json", "results file")
	dur := flag.Duration("duration", 5*time.Second, "duration of each throughput run")
	latOps := flag.Int("latency-ops", 5000, "sequential operations per latency measurement")
	clients := flag.Int("clients", 200, "concurrent clients for throughput")
	objects := flag.Int("objects", 800, "objects for throughput")
	rounds := flag.Int("barriers", 1000, "barriers crossed back-to-back")
	zkBudget := flag.Int("zk-party-rounds", 20000, "ZooKeeper barrier: at most this many party-rounds per N (rounds = min(barriers, this/N))")
	partiesFlag := flag.String("parties", "10,50,200", "barrier party counts")
	flag.Parse()
	ctx := context.Background()
	var err error
	if *only == "" || *only == "standalone" {
		err = run(*redisAddr, *zkAddr, *out, *dur, *latOps, *clients, *objects, *rounds, *zkBudget, *partiesFlag)
	}
	printResult := func(r result) {
		line := fmt.Sprintf("%-52s DSO %10.1f %s", r.Name, r.DSO, r.Unit)
		if r.Redis > 0 {
			line += fmt.Sprintf(" | Redis %10.1f (DSO/Redis %.2fx)", r.Redis, r.DSO/r.Redis)
		}
		fmt.Println(line)
	}
	if err == nil && (*only == "" || *only == "replicated") && *replicaAddr != "" {
		err = replicatedLatency(ctx, *replicaAddr, *latOps, printResult)
		if err == nil {
			err = replicatedThroughput(ctx, *replicaAddr, *dur, *clients, *objects, printResult)
		}
	}
	if err == nil && (*only == "" || *only == "availability") {
		if *availControl {
			err = availability(ctx, *availDur, *availClients, *availOut, true)
		}
		if err == nil {
			err = availability(ctx, *availDur, *availClients, *availOut, false)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/dso:", err)
		os.Exit(1)
	}
}

func run(redisAddr, zkAddr, out string, dur time.Duration, latOps, nClients, nObjects, rounds, zkBudget int, partiesFlag string) error {
	ctx := context.Background()
	reg := state.NewRegistry()
	_ = reg
	reg = benchRegistry()
	srv, err := state.NewServer(state.ServerConfig{Token: "bench", Registry: reg})
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(ctx) }()
	defer srv.Close()
	dial := func() (*state.Client, error) {
		return state.Dial(ctx, state.ClientConfig{Servers: []string{srv.Addr()}, Token: "bench"})
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 1000, MinIdleConns: 10})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", redisAddr, err)
	}
	rdb.FlushAll(ctx)

	rep := report{Date: time.Now().UTC().Format(time.RFC3339), Command: "bench/dso/run.sh (go run ./bench/dso " + strings.Join(os.Args[1:], " ") + ")",
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()), Duration: dur.String()}
	add := func(r result) {
		rep.Results = append(rep.Results, r)
		line := fmt.Sprintf("%-44s DSO %10.1f %s", r.Name, r.DSO, r.Unit)
		if r.Redis > 0 {
			line += fmt.Sprintf(" | Redis %10.1f (DSO/Redis %.2fx)", r.Redis, r.DSO/r.Redis)
		}
		if r.ZK > 0 {
			line += fmt.Sprintf(" | ZooKeeper %10.1f (DSO/ZK %.2fx)", r.ZK, r.DSO/r.ZK)
		}
		fmt.Println(line)
	}

	// 1. Sequential 1 KiB put/get latency.
	c, err := dial()
	if err != nil {
		return err
	}
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte(i)
	}
	lat := func(f func(i int) error) (float64, error) {
		for i := 0; i < latOps/10; i++ { // warm up
			if err := f(i); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		for i := 0; i < latOps; i++ {
			if err := f(i); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Microseconds()) / float64(latOps), nil
	}
	key := func(i int) string { return fmt.Sprintf("lat-%d", i%100) }
	dPut, err := lat(func(i int) error { return c.Blob(key(i)).Set(ctx, val) })
	if err != nil {
		return err
	}
	rPut, err := lat(func(i int) error { return rdb.Set(ctx, key(i), val, 0).Err() })
	if err != nil {
		return err
	}
	dGet, err := lat(func(i int) error { _, err := c.Blob(key(i)).Get(ctx); return err })
	if err != nil {
		return err
	}
	rGet, err := lat(func(i int) error { return rdb.Get(ctx, key(i)).Err() })
	if err != nil {
		return err
	}
	add(result{Name: "sequential 1 KiB put, mean latency", Unit: "µs", DSO: dPut, Redis: rPut, Better: "lower"})
	add(result{Name: "sequential 1 KiB get, mean latency", Unit: "µs", DSO: dGet, Redis: rGet, Better: "lower"})
	_ = c.Close()

	// 2. Throughput: nClients concurrent clients, nObjects random objects.
	sha, err := rdb.ScriptLoad(ctx, luaMul).Result()
	if err != nil {
		return err
	}
	dsoClients := make([]*state.Client, nClients)
	for i := range dsoClients {
		if dsoClients[i], err = dial(); err != nil {
			return err
		}
	}
	defer func() {
		for _, c := range dsoClients {
			_ = c.Close()
		}
	}()
	throughput := func(op func(worker int, r *rand.Rand) error) (float64, error) {
		var n atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < nClients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 9))
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := op(w, r); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			}()
		}
		start := time.Now()
		time.Sleep(dur)
		close(stop)
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return 0, e.(error)
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	obj := func(r *rand.Rand) string { return fmt.Sprintf("obj-%d", r.IntN(nObjects)) }
	for _, k := range []struct {
		name string
		n    int64
	}{{"simple op (1 multiplication)", 1}, {"complex op (10,000 multiplications)", 10000}} {
		dOps, err := throughput(func(w int, r *rand.Rand) error {
			o := dsoClients[w].Object("BenchInt", obj(r))
			if k.n == 1 {
				_, err := state.Call[int64](ctx, o, "Mul", int64(3))
				return err
			}
			_, err := state.Call[int64](ctx, o, "MulN", int64(3), k.n)
			return err
		})
		if err != nil {
			return err
		}
		rOps, err := throughput(func(w int, r *rand.Rand) error {
			return rdb.EvalSha(ctx, sha, []string{obj(r)}, 3, k.n).Err()
		})
		if err != nil {
			return err
		}
		add(result{Name: fmt.Sprintf("throughput, %d clients, %s", nClients, k.name), Unit: "ops/s", DSO: dOps, Redis: rOps, Better: "higher"})
	}

	// 3. Barriers.
	// DSO and Redis first, ZooKeeper last: its JVM keeps working (session
	// expiry, ephemeral node clean-up) after a run and would disturb the
	// others' figures.
	type barrierRow struct {
		n              int
		dso, redis, zk float64
		zkRounds       int
	}
	var rows []*barrierRow
	for _, ps := range strings.Split(partiesFlag, ",") {
		var n int
		if _, err := fmt.Sscan(ps, &n); err != nil || n < 1 {
			return fmt.Errorf("bad -parties entry %q", ps)
		}
		row := &barrierRow{n: n, zkRounds: min(rounds, max(1, zkBudget/n))}
		runtime.GC()
		if row.dso, err = barrierDSO(ctx, dsoClients, n, rounds); err != nil {
			return err
		}
		runtime.GC()
		if row.redis, err = barrierRedis(ctx, rdb, n, rounds); err != nil {
			return err
		}
		rows = append(rows, row)
	}
	for _, row := range rows {
		if row.zk, err = barrierZK(zkAddr, row.n, row.zkRounds); err != nil {
			return err
		}
		note := ""
		if row.zkRounds < rounds {
			note = fmt.Sprintf("ZooKeeper averaged over %d barriers", row.zkRounds)
		}
		add(result{Name: fmt.Sprintf("barrier, N=%d parties, time per barrier", row.n), Unit: "ms", DSO: row.dso, Redis: row.redis, ZK: row.zk, Better: "lower", Note: note})
	}

	// 4. Monte Carlo π on cloud threads (local backend).
	for _, w := range []int{1, 2, 4, 8} {
		start := time.Now()
		res, err := pi.Run(ctx, pi.Config{Workers: w, SamplesPerWorker: 5_000_000})
		if err != nil {
			return err
		}
		pps := float64(res.Total) / time.Since(start).Seconds()
		add(result{Name: fmt.Sprintf("Monte Carlo π, %d thread(s), local backend", w), Unit: "Mpoints/s", DSO: pps / 1e6, Better: "higher",
			Note: fmt.Sprintf("estimate %.5f", res.Estimate)})
	}

	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

// parties runs n goroutines doing rounds barriers and returns the mean time
// per barrier in ms.
func parties(n, rounds int, await func(p, round int) error) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for p := 0; p < n; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := await(p, r); err != nil {
					errs[p] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return 0, e
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(rounds), nil
}

func barrierDSO(ctx context.Context, cs []*state.Client, n, rounds int) (float64, error) {
	key := fmt.Sprintf("barrier-%d-%d", n, time.Now().UnixNano())
	return parties(n, rounds, func(p, _ int) error {
		_, _, err := cs[p%len(cs)].CyclicBarrier(key, n).Await(ctx)
		return err
	})
}

// barrierRedis is the BLPOP barrier: each party INCRs the round's counter;
// the last one pushes n-1 tokens that the others BLPOP.
func barrierRedis(ctx context.Context, rdb *redis.Client, n, rounds int) (float64, error) {
	base := fmt.Sprintf("rb-%d-%d", n, time.Now().UnixNano())
	return parties(n, rounds, func(p, r int) error {
		cnt := fmt.Sprintf("%s:%d:n", base, r)
		rel := fmt.Sprintf("%s:%d:rel", base, r)
		v, err := rdb.Incr(ctx, cnt).Result()
		if err != nil {
			return err
		}
		if v == int64(n) {
			if n > 1 {
				toks := make([]any, n-1)
				for i := range toks {
					toks[i] = 1
				}
				return rdb.RPush(ctx, rel, toks...).Err()
			}
			return nil
		}
		return rdb.BLPop(ctx, 0, rel).Err()
	})
}

// barrierZK is ZooKeeper's double barrier recipe (enter and leave), one
// session per party.
func barrierZK(addr string, n, rounds int) (float64, error) {
	conns := make([]*zk.Conn, n)
	for i := range conns {
		// One session at a time: opening hundreds at once overflows the
		// server's accept backlog.
		c, events, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithLogInfo(false))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
		timeout := time.After(30 * time.Second)
	wait:
		for {
			select {
			case ev := <-events:
				if ev.State == zk.StateHasSession {
					break wait
				}
			case <-timeout:
				return 0, fmt.Errorf("zookeeper session %d of %d not established", i+1, n)
			}
		}
	}
	root := fmt.Sprintf("/gale-bench-%d-%d", n, time.Now().UnixNano())
	if _, err := conns[0].Create(root, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		return 0, err
	}
	for r := 0; r < rounds; r++ { // generation nodes, created before timing
		if _, err := conns[0].Create(fmt.Sprintf("%s/%d", root, r), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			return 0, err
		}
	}
	return parties(n, rounds, func(p, r int) error {
		c := conns[p]
		dir := fmt.Sprintf("%s/%d", root, r)
		return zkDoubleBarrier(c, dir, fmt.Sprintf("p%04d", p), n)
	})
}

func zkDoubleBarrier(c *zk.Conn, dir, name string, n int) error {
	me := dir + "/" + name
	ready := dir + "/ready"
	// Enter.
	if _, err := c.Create(me, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	for {
		ok, _, ev, err := c.ExistsW(ready)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		kids, _, err := c.Children(dir)
		if err != nil {
			return err
		}
		if len(kids) >= n {
			if _, err := c.Create(ready, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
				return err
			}
			break
		}
		<-ev
	}
	// Leave.
	for {
		kids, _, err := c.Children(dir)
		if err != nil {
			return err
		}
		var ps []string
		for _, k := range kids {
			if k != "ready" {
				ps = append(ps, k)
			}
		}
		sort.Strings(ps)
		if len(ps) == 0 {
			return nil
		}
		present := false
		for _, k := range ps {
			if k == name {
				present = true
			}
		}
		if len(ps) == 1 && present {
			return ignoreNoNode(c.Delete(me, -1))
		}
		var watch string
		if ps[0] == name {
			watch = ps[len(ps)-1] // lowest waits for the highest
		} else {
			if present {
				if err := ignoreNoNode(c.Delete(me, -1)); err != nil {
					return err
				}
			}
			watch = ps[0] // others wait for the lowest
		}
		ok, _, ev, err := c.ExistsW(dir + "/" + watch)
		if err != nil {
			return err
		}
		if ok {
			<-ev
		}
	}
}

func ignoreNoNode(err error) error {
	if err == zk.ErrNoNode {
		return nil
	}
	return err
}
