// Command glider measures Glider, Gale's ephemeral computational storage,
// side by side with data shipping on loopback servers in this process:
//
//   - bandwidth of writing and reading an action vs a file with 1 MiB
//     operations (thesis Fig. 5.6);
//   - aggregate write bandwidth of 1..8 parallel actions, and of as many
//     parallel files (thesis Fig. 5.7);
//   - the reduce of thesis Fig. 5.5 at small scale: W workers each emit M
//     random (key, value) pairs as text over 1,024 keys, summed per key.
//     Data shipping writes each worker's pairs to a file (in Glider storage,
//     or on the local file system) and one reducer reads them all; Glider
//     streams the pairs into a merge action and reads its result. Time,
//     bytes moved, requests and bytes stored are reported with ratios, and
//     every strategy's sums are checked against the generator's.
//
// It prints tables and writes a JSON results file:
//
//	go run ./bench/glider -out bench/results/glider.json
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/galeproject/gale/glider"
)

// sink is an action that consumes its write streams directly.
type sink struct{ n int64 }

func (s *sink) OnWrite(_ context.Context, r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	s.n += n
	return err
}

// source is an action whose read stream is option "size" bytes, written
// in 1 MiB operations.
type source struct{ size int64 }

func (s *source) OnCreate(_ context.Context, env *glider.Env) error {
	n, err := strconv.ParseInt(env.Options["size"], 10, 64)
	s.size = n
	return err
}

func (s *source) OnRead(_ context.Context, w io.Writer) error {
	buf := make([]byte, 1<<20)
	for left := s.size; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

type bandwidth struct {
	Op         string  `json:"op"`
	Bytes      int64   `json:"bytes"`
	FileMiBps  float64 `json:"file_mib_per_s"`
	ActionMiBs float64 `json:"action_mib_per_s"`
	Ratio      float64 `json:"action_over_file"`
}

type parallel struct {
	Streams    int     `json:"streams"`
	BytesEach  int64   `json:"bytes_each"`
	ActionMiBs float64 `json:"actions_mib_per_s"`
	FileMiBps  float64 `json:"files_mib_per_s"`
}

type reduceRun struct {
	Strategy    string  `json:"strategy"`
	Workers     int     `json:"workers"`
	Pairs       int     `json:"pairs_per_worker"`
	Seconds     float64 `json:"seconds"`
	BytesMoved  int64   `json:"bytes_moved"`
	Requests    int64   `json:"requests"`
	BytesStored int64   `json:"bytes_stored"`
}

type reduceCmp struct {
	Workers         int     `json:"workers"`
	TimeRatio       float64 `json:"glider_time_over_shipping"`
	TimeRatioFS     float64 `json:"glider_time_over_local_fs_shipping"`
	BytesRatio      float64 `json:"glider_bytes_over_shipping"`
	RequestsRatio   float64 `json:"glider_requests_over_shipping"`
	StorageRatio    float64 `json:"glider_stored_over_shipping"`
	StorageSavedPct float64 `json:"storage_saved_percent"`
}

type results struct {
	Date      string      `json:"date"`
	GoVersion string      `json:"go"`
	CPUs      int         `json:"cpus"`
	Command   string      `json:"command"`
	Bandwidth []bandwidth `json:"bandwidth_1mib_ops"`
	Parallel  []parallel  `json:"parallel_actions"`
	Reduce    []reduceRun `json:"reduce_runs"`
	Compare   []reduceCmp `json:"reduce_comparison"`
}

func main() {
	out := flag.String("out", "bench/results/glider.json", "JSON results file")
	bwSize := flag.Int64("bw-bytes", 1<<30, "bytes per bandwidth measurement")
	parSize := flag.Int64("par-bytes", 256<<20, "bytes per stream in the parallel measurement")
	pairs := flag.Int("pairs", 1_000_000, "pairs per worker in the reduce")
	workers := flag.String("workers", "5,10", "worker counts of the reduce")
	reps := flag.Int("reps", 3, "repetitions (the median is reported)")
	flag.Parse()
	if err := run(*out, *bwSize, *parSize, *pairs, *workers, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "glider bench:", err)
		os.Exit(1)
	}
}

func run(out string, bwSize, parSize int64, pairs int, workerList string, reps int) error {
	ctx := context.Background()
	reg := glider.DefaultRegistry()
	reg.Register("sink", func() glider.Action { return &sink{} })
	reg.Register("source", func() glider.Action { return &source{} })
	cfg := glider.DefaultClusterConfig()
	cfg.Registry = reg
	cfg.Storage = glider.DefaultStorageConfig()
	cfg.Storage.Capacity = 4 << 30
	cl, err := glider.NewCluster(cfg)
	if err != nil {
		return err
	}
	if err := cl.Start(ctx); err != nil {
		return err
	}
	defer cl.Close()

	res := results{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Command: fmt.Sprintf("go run ./bench/glider -bw-bytes %d -par-bytes %d -pairs %d -workers %s -reps %d", bwSize, parSize, pairs, workerList, reps)}

	fmt.Printf("Glider on loopback: 1 metadata, 1 DRAM storage, 1 active server; %d CPUs, %s\n\n", res.CPUs, res.GoVersion)

	// (a) action vs file, 1 MiB operations.
	c, err := cl.Dial(ctx, "bench")
	if err != nil {
		return err
	}
	defer c.Close()
	w, r, err := bandwidths(ctx, c, bwSize, reps)
	if err != nil {
		return err
	}
	res.Bandwidth = []bandwidth{w, r}
	fmt.Printf("(a) bandwidth with 1 MiB operations, %d MiB per run (thesis Fig 5.6: reads ≤ 11%% lower, writes up to 12%% higher)\n", bwSize>>20)
	fmt.Printf("    %-6s %12s %12s %8s\n", "op", "file MiB/s", "action MiB/s", "ratio")
	for _, b := range res.Bandwidth {
		fmt.Printf("    %-6s %12.0f %12.0f %8.2f\n", b.Op, b.FileMiBps, b.ActionMiBs, b.Ratio)
	}

	// (b) parallel actions.
	fmt.Printf("\n(b) aggregate write bandwidth, %d MiB per stream (thesis Fig 5.7: scales like files until the network limit)\n", parSize>>20)
	fmt.Printf("    %-8s %14s %14s\n", "streams", "actions MiB/s", "files MiB/s")
	for _, p := range []int{1, 2, 4, 8} {
		pr, err := parallelRun(ctx, cl, p, parSize, reps)
		if err != nil {
			return err
		}
		res.Parallel = append(res.Parallel, pr)
		fmt.Printf("    %-8d %14.0f %14.0f\n", p, pr.ActionMiBs, pr.FileMiBps)
	}

	// (c) the reduce.
	fmt.Printf("\n(c) reduce: W workers × %d text pairs over 1,024 keys, summed per key (thesis Fig 5.5: −18%%..−27%% time, half the bytes, −99.8%% storage)\n", pairs)
	fmt.Printf("    %-22s %3s %9s %12s %9s %12s\n", "strategy", "W", "seconds", "bytes moved", "requests", "bytes stored")
	for _, ws := range splitInts(workerList) {
		runs, cmp, err := reduceAll(ctx, cl, ws, pairs, reps)
		if err != nil {
			return err
		}
		for _, r := range runs {
			fmt.Printf("    %-22s %3d %9.3f %12d %9d %12d\n", r.Strategy, r.Workers, r.Seconds, r.BytesMoved, r.Requests, r.BytesStored)
		}
		fmt.Printf("    ratios glider/shipping (W=%d): time %.2f (vs local FS %.2f), bytes %.2f, requests %.3f, storage %.5f (%.2f%% less)\n",
			ws, cmp.TimeRatio, cmp.TimeRatioFS, cmp.BytesRatio, cmp.RequestsRatio, cmp.StorageRatio, cmp.StorageSavedPct)
		res.Reduce = append(res.Reduce, runs...)
		res.Compare = append(res.Compare, cmp)
	}

	if out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nwrote %s\n", out)
	}
	return nil
}

func splitInts(s string) []int {
	var out []int
	for _, f := range bytes.Split([]byte(s), []byte(",")) {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(f))); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// bandwidths measures 1 MiB writes and reads of a file and of an action.
func bandwidths(ctx context.Context, c *glider.Client, size int64, reps int) (bandwidth, bandwidth, error) {
	buf := make([]byte, 1<<20)
	var fw, fr, aw, ar []float64
	for i := range reps {
		path := fmt.Sprintf("/bw/f%d", i)
		if err := c.MkdirAll(ctx, "/bw"); err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		start := time.Now()
		w, err := c.Create(ctx, path, "")
		if err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := w.Write(buf); err != nil {
				return bandwidth{}, bandwidth{}, err
			}
		}
		if err := w.Close(); err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		fw = append(fw, mibps(size, time.Since(start)))

		start = time.Now()
		r, err := c.Open(ctx, path)
		if err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		n, err := io.CopyBuffer(io.Discard, onlyReader{r}, buf)
		_ = r.Close()
		if err != nil || n != size {
			return bandwidth{}, bandwidth{}, fmt.Errorf("file read %d of %d bytes: %v", n, size, err)
		}
		fr = append(fr, mibps(size, time.Since(start)))
		if err := c.Delete(ctx, path); err != nil {
			return bandwidth{}, bandwidth{}, err
		}

		sinkPath, srcPath := fmt.Sprintf("/bw/sink%d", i), fmt.Sprintf("/bw/src%d", i)
		if _, err := c.CreateAction(ctx, sinkPath, "sink", glider.ActionOptions{}); err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		if _, err := c.CreateAction(ctx, srcPath, "source", glider.ActionOptions{Options: map[string]string{"size": strconv.FormatInt(size, 10)}}); err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		start = time.Now()
		aww, err := c.ActionWriter(ctx, sinkPath)
		if err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := aww.Write(buf); err != nil {
				return bandwidth{}, bandwidth{}, err
			}
		}
		if err := aww.Close(); err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		aw = append(aw, mibps(size, time.Since(start)))

		start = time.Now()
		arr, err := c.ActionReader(ctx, srcPath)
		if err != nil {
			return bandwidth{}, bandwidth{}, err
		}
		n, err = io.CopyBuffer(io.Discard, onlyReader{arr}, buf)
		_ = arr.Close()
		if err != nil || n != size {
			return bandwidth{}, bandwidth{}, fmt.Errorf("action read %d of %d bytes: %v", n, size, err)
		}
		ar = append(ar, mibps(size, time.Since(start)))
		_ = c.Delete(ctx, sinkPath)
		_ = c.Delete(ctx, srcPath)
	}
	w := bandwidth{Op: "write", Bytes: size, FileMiBps: median(fw), ActionMiBs: median(aw)}
	r := bandwidth{Op: "read", Bytes: size, FileMiBps: median(fr), ActionMiBs: median(ar)}
	w.Ratio, r.Ratio = w.ActionMiBs/w.FileMiBps, r.ActionMiBs/r.FileMiBps
	return w, r, nil
}

// onlyReader hides other methods so io.Copy uses Read with its buffer (the
// 1 MiB operations being measured).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// parallelRun writes size bytes into each of p actions (and then p files)
// at once, one client per stream, as p workers would.
func parallelRun(ctx context.Context, cl *glider.Cluster, p int, size int64, reps int) (parallel, error) {
	var acts, files []float64
	for rep := range reps {
		for _, kind := range []string{"action", "file"} {
			clients := make([]*glider.Client, p)
			for i := range p {
				c, err := cl.Dial(ctx, "bench")
				if err != nil {
					return parallel{}, err
				}
				defer c.Close()
				clients[i] = c
				if kind == "action" {
					if _, err := c.CreateAction(ctx, fmt.Sprintf("/par/%d-%d-%d", p, rep, i), "sink", glider.ActionOptions{}); err != nil {
						if errors.Is(err, glider.ErrNotFound) {
							_ = c.MkdirAll(ctx, "/par")
							_, err = c.CreateAction(ctx, fmt.Sprintf("/par/%d-%d-%d", p, rep, i), "sink", glider.ActionOptions{})
						}
						if err != nil {
							return parallel{}, err
						}
					}
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, p)
			start := time.Now()
			for i, c := range clients {
				wg.Go(func() {
					buf := make([]byte, 1<<20)
					path := fmt.Sprintf("/par/%d-%d-%d", p, rep, i)
					var w io.WriteCloser
					var err error
					if kind == "action" {
						w, err = c.ActionWriter(ctx, path)
					} else {
						w, err = c.Create(ctx, path+".f", "")
					}
					if err != nil {
						errs <- err
						return
					}
					for left := size; left > 0; left -= int64(len(buf)) {
						if _, err := w.Write(buf); err != nil {
							errs <- err
							return
						}
					}
					errs <- w.Close()
				})
			}
			wg.Wait()
			d := time.Since(start)
			close(errs)
			for err := range errs {
				if err != nil {
					return parallel{}, err
				}
			}
			bw := mibps(int64(p)*size, d)
			if kind == "action" {
				acts = append(acts, bw)
			} else {
				files = append(files, bw)
			}
			for i := range p {
				path := fmt.Sprintf("/par/%d-%d-%d", p, rep, i)
				if kind == "file" {
					path += ".f"
				}
				if err := clients[0].Delete(ctx, path); err != nil {
					return parallel{}, err
				}
			}
		}
	}
	return parallel{Streams: p, BytesEach: size, ActionMiBs: median(acts), FileMiBps: median(files)}, nil
}

// genPairs returns worker w's text pairs and adds them to want.
func genPairs(w, pairs int, want map[string]int64) []byte {
	rng := rand.New(rand.NewPCG(uint64(w), 55))
	b := make([]byte, 0, pairs*26)
	for range pairs {
		k, v := rng.IntN(1024), int64(rng.Uint64())
		ks := strconv.Itoa(k)
		want[ks] += v
		b = append(strconv.AppendInt(append(append(b, ks...), ' '), v, 10), '\n')
	}
	return b
}

// sumText parses "key value" lines into sums (the data-shipping reducer).
func sumText(r io.Reader, sums map[string]int64) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		i := bytes.IndexByte(l, ' ')
		if i < 0 {
			return fmt.Errorf("bad line %q", l)
		}
		v, ok := parseInt64(l[i+1:])
		if !ok {
			return fmt.Errorf("bad value in %q", l)
		}
		sums[string(l[:i])] += v
	}
	return sc.Err()
}

// parseInt64 parses a decimal int64 without allocating (the same parser
// the merge action uses, so both strategies parse at the same cost).
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

func sameSums(got, want map[string]int64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("key %s: %d, want %d", k, got[k], v)
		}
	}
	return nil
}

// countingFile counts the bytes and operations of local-file data shipping.
type countingFile struct {
	f          *os.File
	bytes, ops *int64
	mu         *sync.Mutex
}

func (c countingFile) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.mu.Lock()
	*c.bytes += int64(n)
	*c.ops++
	c.mu.Unlock()
	return n, err
}

func (c countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.mu.Lock()
	*c.bytes += int64(n)
	*c.ops++
	c.mu.Unlock()
	return n, err
}

func reduceAll(ctx context.Context, cl *glider.Cluster, workers, pairs, reps int) ([]reduceRun, reduceCmp, error) {
	want := map[string]int64{}
	data := make([][]byte, workers)
	for w := range workers {
		data[w] = genPairs(w, pairs, want)
	}
	strategies := []string{"shipping (glider files)", "shipping (local fs)", "glider merge action"}
	times := map[string][]float64{}
	last := map[string]reduceRun{}
	for rep := range reps {
		for _, s := range strategies {
			var r reduceRun
			var err error
			switch s {
			case strategies[0]:
				r, err = shipGlider(ctx, cl, data, want, rep)
			case strategies[1]:
				r, err = shipFS(data, want)
			case strategies[2]:
				r, err = mergeGlider(ctx, cl, data, want, rep)
			}
			if err != nil {
				return nil, reduceCmp{}, fmt.Errorf("%s, %d workers: %w", s, workers, err)
			}
			r.Strategy, r.Workers, r.Pairs = s, workers, pairs
			times[s] = append(times[s], r.Seconds)
			last[s] = r
			runtime.GC()
		}
	}
	var runs []reduceRun
	for _, s := range strategies {
		r := last[s]
		r.Seconds = median(times[s])
		runs = append(runs, r)
	}
	ship, fs, g := runs[0], runs[1], runs[2]
	cmp := reduceCmp{Workers: workers, TimeRatio: g.Seconds / ship.Seconds, TimeRatioFS: g.Seconds / fs.Seconds,
		BytesRatio: float64(g.BytesMoved) / float64(ship.BytesMoved), RequestsRatio: float64(g.Requests) / float64(ship.Requests),
		StorageRatio: float64(g.BytesStored) / float64(ship.BytesStored)}
	cmp.StorageSavedPct = 100 * (1 - cmp.StorageRatio)
	return runs, cmp, nil
}

// dialAll returns one client per worker plus one for the reducer.
func dialAll(ctx context.Context, cl *glider.Cluster, n int) ([]*glider.Client, func(), error) {
	cs := make([]*glider.Client, 0, n)
	closeAll := func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}
	for range n {
		c, err := cl.Dial(ctx, "reduce")
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cs = append(cs, c)
	}
	return cs, closeAll, nil
}

func sumStats(cs []*glider.Client) glider.Stats {
	var s glider.Stats
	for _, c := range cs {
		t := c.Stats()
		s.Requests += t.Requests
		s.BytesSent += t.BytesSent
		s.BytesReceived += t.BytesReceived
	}
	return s
}

func runWorkers(data [][]byte, f func(w int, b []byte) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(data))
	for w, b := range data {
		wg.Go(func() { errs <- f(w, b) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// shipGlider: each worker writes its pairs to a Glider file; the reducer
// reads every file and sums.
func shipGlider(ctx context.Context, cl *glider.Cluster, data [][]byte, want map[string]int64, rep int) (reduceRun, error) {
	cs, closeAll, err := dialAll(ctx, cl, len(data)+1)
	if err != nil {
		return reduceRun{}, err
	}
	defer closeAll()
	dir := fmt.Sprintf("/ship%d", rep)
	if err := cs[0].MkdirAll(ctx, dir); err != nil {
		return reduceRun{}, err
	}
	before := sumStats(cs)
	start := time.Now()
	err = runWorkers(data, func(w int, b []byte) error {
		return cs[w].WriteFile(ctx, fmt.Sprintf("%s/w%03d", dir, w), "", b)
	})
	if err != nil {
		return reduceRun{}, err
	}
	red := cs[len(data)]
	st, err := red.ClusterStats(ctx)
	if err != nil {
		return reduceRun{}, err
	}
	kids, err := red.List(ctx, dir)
	if err != nil {
		return reduceRun{}, err
	}
	sums := map[string]int64{}
	for _, k := range kids {
		r, err := red.Open(ctx, k.Path)
		if err != nil {
			return reduceRun{}, err
		}
		err = sumText(r, sums)
		_ = r.Close()
		if err != nil {
			return reduceRun{}, err
		}
	}
	d := time.Since(start)
	traffic := sumStats(cs).Sub(before)
	if err := sameSums(sums, want); err != nil {
		return reduceRun{}, err
	}
	if err := red.DeleteAll(ctx, dir); err != nil {
		return reduceRun{}, err
	}
	return reduceRun{Seconds: d.Seconds(), BytesMoved: traffic.BytesSent + traffic.BytesReceived, Requests: traffic.Requests, BytesStored: st.BytesStored}, nil
}

// shipFS: the same over files on the local file system.
func shipFS(data [][]byte, want map[string]int64) (reduceRun, error) {
	dir, err := os.MkdirTemp("", "glider-bench-")
	if err != nil {
		return reduceRun{}, err
	}
	defer os.RemoveAll(dir)
	var mu sync.Mutex
	var moved, ops int64
	start := time.Now()
	err = runWorkers(data, func(w int, b []byte) error {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("w%03d", w)))
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(countingFile{f: f, bytes: &moved, ops: &ops, mu: &mu}, 1<<20)
		_, err = bw.Write(b)
		if err == nil {
			err = bw.Flush()
		}
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return reduceRun{}, err
	}
	var stored int64
	sums := map[string]int64{}
	for w := range data {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("w%03d", w)))
		if err != nil {
			return reduceRun{}, err
		}
		fi, _ := f.Stat()
		stored += fi.Size()
		err = sumText(bufio.NewReaderSize(countingFile{f: f, bytes: &moved, ops: &ops, mu: &mu}, 1<<20), sums)
		_ = f.Close()
		if err != nil {
			return reduceRun{}, err
		}
	}
	d := time.Since(start)
	if err := sameSums(sums, want); err != nil {
		return reduceRun{}, err
	}
	return reduceRun{Seconds: d.Seconds(), BytesMoved: moved, Requests: ops, BytesStored: stored}, nil
}

// mergeGlider: workers stream their pairs into one merge action; the
// reducer reads the merged sums.
func mergeGlider(ctx context.Context, cl *glider.Cluster, data [][]byte, want map[string]int64, rep int) (reduceRun, error) {
	cs, closeAll, err := dialAll(ctx, cl, len(data)+1)
	if err != nil {
		return reduceRun{}, err
	}
	defer closeAll()
	path := fmt.Sprintf("/sum%d", rep)
	before := sumStats(cs)
	start := time.Now()
	if _, err := cs[0].CreateAction(ctx, path, glider.ActionMerge, glider.ActionOptions{
		Options: map[string]string{"combine": glider.CombineInt64Sum, "format": "text"}}); err != nil {
		return reduceRun{}, err
	}
	err = runWorkers(data, func(w int, b []byte) error { return cs[w].WriteAction(ctx, path, b) })
	if err != nil {
		return reduceRun{}, err
	}
	red := cs[len(data)]
	out, err := red.ReadAction(ctx, path)
	if err != nil {
		return reduceRun{}, err
	}
	sums := map[string]int64{}
	if err := sumText(bytes.NewReader(out), sums); err != nil {
		return reduceRun{}, err
	}
	d := time.Since(start)
	traffic := sumStats(cs).Sub(before)
	st, err := red.ClusterStats(ctx)
	if err != nil {
		return reduceRun{}, err
	}
	if err := sameSums(sums, want); err != nil {
		return reduceRun{}, err
	}
	if err := red.Delete(ctx, path); err != nil {
		return reduceRun{}, err
	}
	return reduceRun{Seconds: d.Seconds(), BytesMoved: traffic.BytesSent + traffic.BytesReceived, Requests: traffic.Requests, BytesStored: st.ActionBytes}, nil
}
