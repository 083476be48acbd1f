package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/galeproject/gale/state"
)

// Centroid is one centroid of the availability experiment's k-means
// model, a replicated user-defined object.
type Centroid struct{ Coords []float64 }

// Set stores the coordinates.
func (c *Centroid) Set(x []float64) { c.Coords = x }

// Get returns the coordinates.
func (c *Centroid) Get() []float64 { return c.Coords }

const benchToken = "bench"

func benchRegistry() *state.Registry {
	reg := state.NewRegistry()
	state.RegisterType[BenchInt](reg, "BenchInt")
	state.RegisterType[Centroid](reg, "Centroid")
	return reg
}

// memberMain runs this program as a cluster member when
// GALE_BENCH_DSO_MEMBER is set ("rf=N" starts a cluster, "join=ADDR" joins
// one); it prints its address and serves until killed.
func memberMain(spec string) {
	cc := &state.ClusterConfig{FailTimeout: 500 * time.Millisecond}
	if rf, ok := strings.CutPrefix(spec, "rf="); ok {
		cc.ReplicationFactor, _ = strconv.Atoi(rf)
	} else {
		cc.Join = []string{strings.TrimPrefix(spec, "join=")}
	}
	s, err := state.NewServer(state.ServerConfig{Token: benchToken, Registry: benchRegistry(), Cluster: cc,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("addr:", s.Addr())
	_ = s.Serve(context.Background())
	os.Exit(0)
}

type member struct {
	cmd  *exec.Cmd
	addr string
}

func startMember(spec string) (*member, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "GALE_BENCH_DSO_MEMBER="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr: ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("member process: %q, %v", line, err)
	}
	return &member{cmd: cmd, addr: addr}, nil
}

func (m *member) kill() {
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
}

// startCluster starts n member processes with replication factor rf and
// waits until the view is stable.
func startCluster(ctx context.Context, n, rf int) ([]*member, *state.Client, error) {
	first, err := startMember(fmt.Sprintf("rf=%d", rf))
	if err != nil {
		return nil, nil, err
	}
	ms := []*member{first}
	stop := func() {
		for _, m := range ms {
			m.kill()
		}
	}
	for i := 1; i < n; i++ {
		m, err := startMember("join=" + first.addr)
		if err != nil {
			stop()
			return nil, nil, err
		}
		ms = append(ms, m)
	}
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.addr)
	}
	c, err := state.Dial(ctx, state.ClientConfig{Servers: addrs, Token: benchToken})
	if err != nil {
		stop()
		return nil, nil, err
	}
	if err := waitStable(ctx, c, n); err != nil {
		_ = c.Close()
		stop()
		return nil, nil, err
	}
	return ms, c, nil
}

func waitStable(ctx context.Context, c *state.Client, members int) error {
	deadline := time.Now().Add(60 * time.Second)
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
		case time.Since(since) > 2*time.Second:
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cluster did not settle on %d members", members)
}

// replicatedLatency measures sequential 1 KiB put and get on replicated
// Blobs of 3-member clusters at rf = 1, 2, 3, and Redis with a replica
// (SET then WAIT 1), side by side in one run: the measurements cycle
// through rf 1, 2, 3 and Redis three times, so that a change in the
// machine's load during the run weighs on each alike. It reports means
// (as the thesis) and medians.
func replicatedLatency(ctx context.Context, redisAddr string, ops int, add func(result)) error {
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte(i)
	}
	const cycles = 3
	type series struct{ put, get []time.Duration }
	var all [5]series // index rf 1..3; 4 is Redis
	key := func(i int) string { return fmt.Sprintf("rlat-%d", i%100) }
	measure := func(s *[]time.Duration, n int, f func(i int) error) error {
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := f(i); err != nil {
				return err
			}
			*s = append(*s, time.Since(t0))
		}
		return nil
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if n, err := rdb.Do(ctx, "WAIT", 1, 1000).Int(); err != nil || n < 1 {
		return fmt.Errorf("redis at %s has no replica that acknowledges WAIT 1 (%d, %v); bench/dso/run.sh starts one", redisAddr, n, err)
	}
	rPut := func(i int) error {
		if err := rdb.Set(ctx, key(i), val, 0).Err(); err != nil {
			return err
		}
		return rdb.Do(ctx, "WAIT", 1, 0).Err()
	}
	rGet := func(i int) error { return rdb.Get(ctx, key(i)).Err() }
	// One cluster at a time (an idle cluster's ticks and heartbeats
	// would load the others' runs), in cycles rf 1, 2, 3, 1, 2, 3, ...
	// with Redis measured in every cycle.
	per := max(1, ops/cycles)
	for cy := 0; cy < cycles; cy++ {
		for rf := 1; rf <= 3; rf++ {
			ms, c, err := startCluster(ctx, 3, rf)
			if err != nil {
				return err
			}
			put := func(i int) error { return c.Blob(key(i)).Persistent().Set(ctx, val) }
			get := func(i int) error { _, err := c.Blob(key(i)).Persistent().Get(ctx); return err }
			var junk []time.Duration
			err = measure(&junk, max(100, per/10), put) // warm up, create the objects
			if err == nil {
				err = measure(&junk, max(100, per/10), get)
			}
			if err == nil {
				err = measure(&all[rf].put, per, put)
			}
			if err == nil {
				err = measure(&all[rf].get, per, get)
			}
			_ = c.Close()
			for _, m := range ms {
				m.kill()
			}
			if err != nil {
				return err
			}
		}
		if err := measure(&all[4].put, per, rPut); err != nil {
			return err
		}
		if err := measure(&all[4].get, per, rGet); err != nil {
			return err
		}
	}
	mean := func(ds []time.Duration) float64 {
		var t time.Duration
		for _, d := range ds {
			t += d
		}
		return float64(t.Microseconds()) / float64(len(ds))
	}
	median := func(ds []time.Duration) float64 {
		c := append([]time.Duration(nil), ds...)
		slices.Sort(c)
		return float64(c[len(c)/2].Nanoseconds()) / 1e3
	}
	var puts, gets, putsMed, getsMed [5]float64
	for i := 1; i <= 4; i++ {
		puts[i], gets[i] = mean(all[i].put), mean(all[i].get)
		putsMed[i], getsMed[i] = median(all[i].put), median(all[i].get)
	}
	for rf := 1; rf <= 3; rf++ {
		add(result{Name: fmt.Sprintf("1 KiB put, rf=%d (Redis: SET+WAIT 1)", rf), Unit: "µs", DSO: puts[rf], Redis: puts[4], Better: "lower",
			Note: fmt.Sprintf("median %.0f µs (Redis %.0f)", putsMed[rf], putsMed[4])})
		add(result{Name: fmt.Sprintf("1 KiB get, rf=%d (Redis: GET)", rf), Unit: "µs", DSO: gets[rf], Redis: gets[4], Better: "lower",
			Note: fmt.Sprintf("median %.0f µs (Redis %.0f)", getsMed[rf], getsMed[4])})
	}
	fmt.Printf("medians (µs): put rf=1 %.0f, rf=2 %.0f, rf=3 %.0f, Redis %.0f; get rf=1 %.0f, rf=2 %.0f, rf=3 %.0f, Redis %.0f\n",
		putsMed[1], putsMed[2], putsMed[3], putsMed[4], getsMed[1], getsMed[2], getsMed[3], getsMed[4])
	fmt.Printf("rf=2 / rf=1: put %.2fx, get %.2fx (target: within 2.5x); rf=3 / rf=2: put %.2fx, get %.2fx (means; medians: put %.2fx, get %.2fx)\n",
		puts[2]/puts[1], gets[2]/gets[1], puts[3]/puts[2], gets[3]/gets[2], putsMed[2]/putsMed[1], getsMed[2]/getsMed[1])
	return nil
}

// replicatedThroughput measures the complex operation (10,000
// multiplications on the server) by nClients clients on nObjects objects
// at rf = 2, beside Redis Lua scripts each followed by WAIT 1.
func replicatedThroughput(ctx context.Context, redisAddr string, dur time.Duration, nClients, nObjects int, add func(result)) error {
	ms, c0, err := startCluster(ctx, 3, 2)
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range ms {
			m.kill()
		}
	}()
	_ = c0.Close()
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.addr)
	}
	clients := make([]*state.Client, 16)
	for i := range clients {
		if clients[i], err = state.Dial(ctx, state.ClientConfig{Servers: addrs, Token: benchToken}); err != nil {
			return err
		}
		defer clients[i].Close()
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: nClients})
	defer rdb.Close()
	sha, err := rdb.ScriptLoad(ctx, luaMul).Result()
	if err != nil {
		return err
	}
	run := func(op func(w int, r *rand.Rand) error) (float64, error) {
		var n atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(dur)
		var wg sync.WaitGroup
		for w := 0; w < nClients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 3))
				for time.Now().Before(stop) {
					if err := op(w, r); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return 0, e.(error)
		}
		return float64(n.Load()) / dur.Seconds(), nil
	}
	d, err := run(func(w int, r *rand.Rand) error {
		_, err := state.Call[int64](ctx, clients[w%len(clients)].Object("BenchInt", fmt.Sprintf("r%d", r.IntN(nObjects))).Persistent(), "MulN", int64(3), int64(10_000))
		return err
	})
	if err != nil {
		return err
	}
	rr, err := run(func(w int, r *rand.Rand) error {
		if err := rdb.EvalSha(ctx, sha, []string{fmt.Sprintf("r%d", r.IntN(nObjects))}, 3, 10_000).Err(); err != nil {
			return err
		}
		return rdb.Do(ctx, "WAIT", 1, 0).Err()
	})
	if err != nil {
		return err
	}
	add(result{Name: "complex op throughput, rf=2 (Redis: Lua + WAIT 1)", Unit: "ops/s", DSO: d, Redis: rr, Better: "higher"})
	return nil
}

// availability reproduces Crucial's availability experiment: 3 member
// processes, rf = 2, clients reading 200 centroids in a loop; a member is
// SIGKILLed a third of the way in and a new one joins at two thirds. It
// writes inferences per second over time as CSV and PNG and prints the
// dip, the longest stall and the recovery time.
func availability(ctx context.Context, dur time.Duration, nClients int, outDir string, control bool) error {
	ms, admin, err := startCluster(ctx, 3, 2)
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range ms {
			m.kill()
		}
	}()
	defer admin.Close()
	const centroids, dim = 200, 16
	for i := 0; i < centroids; i++ {
		x := make([]float64, dim)
		for j := range x {
			x[j] = float64(i*dim + j)
		}
		if err := admin.Object("Centroid", fmt.Sprintf("c%d", i)).Persistent().Invoke(ctx, "Set", x); err != nil {
			return err
		}
	}
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.addr)
	}
	const bucket = 100 * time.Millisecond
	nb := int(dur/bucket) + 1
	counts := make([]atomic.Int64, nb)
	var failures atomic.Int64
	start := time.Now()
	stopAt := start.Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < nClients; w++ {
		c, err := state.Dial(ctx, state.ClientConfig{Servers: addrs, Token: benchToken})
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			point := make([]float64, dim)
			for i := 0; time.Now().Before(stopAt); i++ {
				// One inference: fetch a centroid and measure a point's
				// distance to it.
				x, err := state.Call[[]float64](ctx, c.Object("Centroid", fmt.Sprintf("c%d", (w*7+i)%centroids)).Persistent(), "Get")
				if err != nil {
					failures.Add(1)
					continue
				}
				var d float64
				for j := range x {
					d += (x[j] - point[j]) * (x[j] - point[j])
				}
				_ = math.Sqrt(d)
				if b := int(time.Since(start) / bucket); b < nb {
					counts[b].Add(1)
				}
			}
		}()
	}
	killAt, joinAt := dur/3, 2*dur/3
	if control {
		// The control run: the same load with no crash and no join, so
		// the same measures read the machine's own dips.
		wg.Wait()
	} else {
		time.Sleep(killAt)
		victim := ms[0]
		victim.kill()
		ms = ms[1:]
		time.Sleep(joinAt - killAt)
		nm, err := startMember("join=" + ms[0].addr)
		if err != nil {
			return err
		}
		ms = append(ms, nm)
		wg.Wait()
	}

	rate := make([]float64, nb-1) // per-second rates of each bucket
	for i := range rate {
		rate[i] = float64(counts[i].Load()) / bucket.Seconds()
	}
	// Smooth over 1 s windows for the figures.
	win := int(time.Second / bucket)
	avg := func(from, to int) float64 {
		if to > len(rate) {
			to = len(rate)
		}
		if from < 0 {
			from = 0
		}
		var s float64
		for i := from; i < to; i++ {
			s += rate[i]
		}
		return s / float64(max(1, to-from))
	}
	kb, jb := int(killAt/bucket), int(joinAt/bucket)
	base := avg(2*win, kb) // from 2 s (warm) to the kill
	minWin := math.Inf(1)
	for i := kb; i+win <= jb; i++ {
		minWin = min(minWin, avg(i, i+win))
	}
	longestZero, run := 0, 0
	for i := win; i < len(rate); i++ { // after warm-up
		if rate[i] == 0 {
			run++
			longestZero = max(longestZero, run)
		} else {
			run = 0
		}
	}
	recovered := -1.0
	for i := jb; i+win <= len(rate); i++ {
		if avg(i, i+win) >= 0.9*base {
			recovered = float64(i-jb) * bucket.Seconds()
			break
		}
	}
	what, name := "availability", "dso-availability"
	if control {
		what, name = "availability control run (no crash, no join; the same windows)", "dso-availability-control"
	}
	fmt.Printf("%s: %d clients, before the kill %.0f inferences/s; lowest 1-s window between kill and join %.0f (dip %.0f%%); "+
		"longest stretch at zero %v; after the join back within 10%% of the start after %.1f s; %d failed calls\n",
		what, nClients, base, minWin, 100*(1-minWin/base), time.Duration(longestZero)*bucket, recovered, failures.Load())

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(outDir, name+".csv"))
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	_ = cw.Write([]string{"seconds", "inferences_per_second"})
	pts := make(plotter.XYs, 0, len(rate))
	for i := range rate {
		t := float64(i) * bucket.Seconds()
		_ = cw.Write([]string{strconv.FormatFloat(t, 'f', 1, 64), strconv.FormatFloat(rate[i], 'f', 0, 64)})
		pts = append(pts, plotter.XY{X: t, Y: avg(i-win/2, i+win/2)})
	}
	cw.Flush()
	if err := errors.Join(cw.Error(), f.Close()); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("DSO availability: 3 members, rf = 2, %d clients reading 200 centroids", nClients)
	if control {
		p.Title.Text += " (control: no crash)"
	}
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "inferences/s (1 s moving average)"
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	p.Add(l)
	top := 0.0
	for _, q := range pts {
		top = max(top, q.Y)
	}
	p.Y.Min, p.Y.Max = 0, top*1.15
	for _, ev := range []struct {
		at    time.Duration
		label string
	}{{killAt, "member SIGKILLed"}, {joinAt, "member joins"}} {
		if control {
			break
		}
		x := ev.at.Seconds()
		vl, _ := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top * 1.1}})
		vl.Color = color.RGBA{R: 200, A: 255}
		vl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(vl)
		lb, _ := plotter.NewLabels(plotter.XYLabels{XYs: []plotter.XY{{X: x, Y: top * 1.1}}, Labels: []string{" " + ev.label}})
		p.Add(lb)
	}
	return p.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(outDir, name+".png"))
}
