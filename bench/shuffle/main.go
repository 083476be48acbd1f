// Command shuffle compares Gale's two shuffle strategies side by side, in
// one run, on the same inputs: data shipping (map tasks write partitioned
// objects to storage, reduce tasks read their ranges back; over the local
// filesystem, over an S3 protocol server on loopback, and over Glider
// files) and glider (map tasks stream into Glider merge or sort actions
// that combine or sort as data arrives; filters run in Glider filter
// actions next to the data). For each workload it reports time, the bytes
// that crossed the worker/storage boundary (in total and per kind),
// requests and bytes stored between the stages, and the ratios glider /
// data shipping. Outputs are checked to be identical.
//
// Workloads (the thesis's Glider experiments at this machine's scale):
//
//   - reduce: W map tasks × M random (key, value) pairs over 1,024 keys,
//     summed per key, every pair shipped as in the thesis (Fig. 5.5; the
//     combiner is not lifted, so data shipping writes and reads every
//     pair and glider streams every pair into the merge actions);
//   - word count over a generated text corpus (a lifted combine);
//   - filter then count: the lines of a text stored in Glider that hold a
//     rare word, counted per word (Table 5.2);
//   - sort of sort-benchmark records into an output in Glider storage
//     (Fig. 5.9): data shipping's map tasks write range partitions and
//     reduce tasks read, sort and write them back; glider's sort actions
//     sort the partitions and write the part files themselves.
//
// Every glider run uses one running Glider cluster (gale.UseGlider), as a
// deployment would; -embedded also measures a cluster started per job.
//
//	go run ./bench/shuffle [-pairs 5000000] [-text 256MiB] [-records 2000000] [-rounds 3]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/dustin/go-humanize"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/gensort"
	"github.com/galeproject/gale/internal/textgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/shuffle:", err)
		os.Exit(1)
	}
}

// randomPair is pair i: one of 1,024 keys and a value over the whole
// 64-bit range, from a stream seeded by i, so every run sees the same data.
func randomPair(i int64) gale.KV[int64, int64] {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	return gale.KV[int64, int64]{Key: int64(r.IntN(1024)), Value: int64(r.Uint64())}
}

func splitWords(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}

func formatCount(kv gale.KV[string, int64]) string { return fmt.Sprintf("%s\t%d", kv.Key, kv.Value) }

type measure struct {
	Seconds    []float64 `json:"seconds"`
	Median     float64   `json:"median_s"`
	CPUSeconds []float64 `json:"cpu_seconds"`
	CPUMedian  float64   `json:"cpu_median_s"`
	// ShuffleBytes is what crossed the worker/storage boundary for the
	// shuffle (written and read); Boundary everything that crossed it
	// (input, shuffle, output, and output copied at commit), Ingested what
	// the workers read from storage (input and shuffle).
	ShuffleBytes int64 `json:"shuffle_bytes_moved"`
	Boundary     int64 `json:"boundary_bytes"`
	Ingested     int64 `json:"ingested_bytes"`
	// InputRead is the job's input the workers read (Table 5.2's data
	// ingested by workers).
	InputRead int64 `json:"input_read_bytes"`
	// SamplingBytes is the part of Boundary read by a sort's sampling
	// pass, the same under every strategy.
	SamplingBytes int64 `json:"sampling_bytes,omitempty"`
	Requests      int64 `json:"requests"`
	BytesStored   int64 `json:"bytes_stored"`
	ActionsWrote  int64 `json:"bytes_written_by_actions,omitempty"`
}

type variant struct {
	name    string
	glider  bool
	options func() []gale.RunOption
	// sortOut is where a sort writes (a local directory when empty).
	sortOut func(round int) string
}

type env struct {
	ctx     context.Context
	dir     string
	cl      *glider.Cluster
	reg     *glider.Registry
	gopts   map[string]string // store options of the Glider namespace
	meta    string
	workers int
}

const ns = "bench"

func run() error {
	pairs := flag.Int64("pairs", 5_000_000, "reduce: total (key, value) pairs")
	textSize := flag.String("text", "256MiB", "word count and filter: corpus size")
	records := flag.Int64("records", 2_000_000, "sort: records (100 bytes each)")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	pred := flag.String("filter-predicate", "prefix", "filter: the line predicate (substring, prefix, regexp)")
	word := flag.String("filter", "nol ke", "filter: the predicate's argument (the default keeps about 0.2% of the default text)")
	only := flag.String("only", "", "run only the workloads whose name contains this")
	embedded := flag.Bool("embedded", false, "also run glider with an embedded cluster started per job")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "working directory")
	out := flag.String("out", "bench/results/shuffle.json", "results file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of each glider job (gale.Run alone) to this file name plus .N (go tool pprof merges them)")
	onlyVariant := flag.String("variant", "", "run only the strategies whose name contains this (the ratios need the baseline and glider)")
	flag.Parse()
	ctx := context.Background()
	workers := runtime.NumCPU()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	// An S3 protocol server on loopback for data shipping over S3.
	s3srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer s3srv.Close()
	os.Setenv("AWS_ACCESS_KEY_ID", "bench")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "bench")
	if err := makeBucket(ctx, s3srv.URL, "shuffle"); err != nil {
		return err
	}
	s3opts := map[string]string{"s3.endpoint": s3srv.URL, "s3.path_style": "true", "s3.region": "us-east-1"}

	// One running Glider cluster, its active servers knowing the jobs'
	// functions (RegisterGliderFunctions before each job).
	reg := glider.DefaultRegistry()
	st := glider.DefaultStorageConfig()
	st.Capacity = 8 << 30
	cl, err := glider.NewCluster(glider.ClusterConfig{Registry: reg, StorageServers: 1, ActiveServers: 1, Storage: st})
	if err != nil {
		return err
	}
	if err := cl.Start(ctx); err != nil {
		return err
	}
	defer cl.Close()
	e := &env{ctx: ctx, dir: *dir, cl: cl, reg: reg, meta: cl.MetaAddr(), workers: workers,
		gopts: map[string]string{"glider.namespace": ns, "glider.token": cl.Token(ns)}}
	both := func(a, b map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range a {
			m[k] = v
		}
		for k, v := range b {
			m[k] = v
		}
		return m
	}
	gurl := "glider://" + e.meta
	variants := []variant{
		{name: "data shipping (filesystem)", options: func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.DataShipping), gale.StoreOptions(e.gopts)}
		}},
		{name: "data shipping (S3 protocol)", options: func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.DataShipping), gale.StoreOptions(both(s3opts, e.gopts)), gale.TempStore("s3://shuffle/tmp")}
		}},
		{name: "data shipping (Glider files)", options: func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.DataShipping), gale.StoreOptions(e.gopts), gale.TempStore(gurl + "/tmp")}
		}, sortOut: func(r int) string { return fmt.Sprintf("%s/out/ds-%d", gurl, r) }},
		{name: "glider", glider: true, options: func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.GliderShuffle), gale.StoreOptions(e.gopts),
				gale.UseGlider(e.meta, ns, cl.Token(ns))}
		}, sortOut: func(r int) string { return fmt.Sprintf("%s/out/glider-%d", gurl, r) }},
	}
	if *embedded {
		variants = append(variants, variant{name: "glider (cluster per job)", glider: true, options: func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.GliderShuffle), gale.StoreOptions(e.gopts)}
		}})
	}
	baseline := "data shipping (Glider files)"

	// Inputs.
	tsize, err := humanize.ParseBytes(*textSize)
	if err != nil {
		return err
	}
	tcfg := textgen.DefaultConfig()
	tcfg.Size = int64(tsize)
	corpus := filepath.Join(*dir, fmt.Sprintf("corpus-%d-%d.txt", tcfg.Seed, tcfg.Size))
	if fi, err := os.Stat(corpus); err != nil || fi.Size() != tcfg.Size {
		if err := textgen.GenerateFile(ctx, corpus, tcfg); err != nil {
			return err
		}
	}
	gstore, err := gale.OpenStore(ctx, gurl, e.gopts)
	if err != nil {
		return err
	}
	f, err := os.Open(corpus)
	if err != nil {
		return err
	}
	err = gstore.Put(ctx, "in/corpus.txt", f)
	f.Close()
	if err != nil {
		return fmt.Errorf("storing the corpus in Glider: %w", err)
	}
	recFile := filepath.Join(*dir, fmt.Sprintf("records-ascii-%d.dat", *records))
	if fi, err := os.Stat(recFile); err != nil || fi.Size() != *records*100 {
		var buf bytes.Buffer
		if _, err := gensort.Generate(ctx, &buf, gensort.Config{Count: *records, ASCII: true}); err != nil {
			return err
		}
		if err := os.WriteFile(recFile, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}

	type workload struct {
		name string
		run  func(v variant, round int) (*gale.Report, []byte, error)
	}
	// job runs one pipeline and times gale.Run alone (not the checks of
	// the output): wall time and the CPU time of this process, which runs
	// the workers and every server (Glider, S3) alike.
	var wall, cpu time.Duration
	profiles := 0
	job := func(p *gale.Pipeline, v variant, extra ...gale.RunOption) (*gale.Report, error) {
		if err := gale.RegisterGliderFunctions(p, reg); err != nil {
			return nil, err
		}
		if *cpuprofile != "" && v.glider {
			profiles++
			f, err := os.Create(fmt.Sprintf("%s.%d", *cpuprofile, profiles))
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return nil, err
			}
			defer pprof.StopCPUProfile()
		}
		c0, t0 := cpuTime(), time.Now()
		r, err := gale.Run(ctx, p, append(append(v.options(), gale.Workers(workers)), extra...)...)
		wall, cpu = time.Since(t0), cpuTime()-c0
		return r, err
	}
	workloads := []workload{
		{fmt.Sprintf("reduce: %s pairs over 1,024 keys", humanize.Comma(*pairs)), func(v variant, _ int) (*gale.Report, []byte, error) {
			p := gale.NewPipeline()
			sums := gale.Collect(gale.SumPerKey(gale.Generate(p, *pairs, randomPair)))
			r, err := job(p, v, gale.NoCombinerLifting())
			if err != nil {
				return nil, nil, err
			}
			vals := sums.Values()
			slices.SortFunc(vals, func(a, b gale.KV[int64, int64]) int { return int(a.Key - b.Key) })
			b, _ := json.Marshal(vals)
			return r, b, nil
		}},
		{"word count, " + humanize.IBytes(tsize), func(v variant, _ int) (*gale.Report, []byte, error) {
			o, err := os.MkdirTemp(*dir, "wc-")
			if err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(o)
			p := gale.NewPipeline()
			wordcount.Build(p, []string{corpus}, filepath.Join(o, "out"))
			r, err := job(p, v)
			if err != nil {
				return nil, nil, err
			}
			return r, readParts(filepath.Join(o, "out")), nil
		}},
		{fmt.Sprintf("filter %s %q then count, %s in Glider", *pred, *word, humanize.IBytes(tsize)), func(v variant, _ int) (*gale.Report, []byte, error) {
			o, err := os.MkdirTemp(*dir, "filter-")
			if err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(o)
			p := gale.NewPipeline()
			lines := gale.FilterLines(gale.ReadText(p, gurl+"/in/corpus.txt"), *pred, *word)
			gale.WriteText(gale.Map(gale.CountPerElement(gale.FlatMap(lines, splitWords)), formatCount), filepath.Join(o, "out"))
			r, err := job(p, v)
			if err != nil {
				return nil, nil, err
			}
			return r, sortedLines(readParts(filepath.Join(o, "out"))), nil
		}},
		{fmt.Sprintf("sort, %s records", humanize.Comma(*records)), func(v variant, round int) (*gale.Report, []byte, error) {
			o, err := os.MkdirTemp(*dir, "sort-")
			if err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(o)
			dst := filepath.Join(o, "out")
			if v.sortOut != nil {
				dst = v.sortOut(round)
			}
			p := gale.NewPipeline()
			if err := gsort.Build(p, gsort.Records, []string{recFile}, dst); err != nil {
				return nil, nil, err
			}
			r, err := job(p, v, gale.WorkerMemory(256<<20))
			if err != nil {
				return nil, nil, err
			}
			var data []byte
			if v.sortOut != nil {
				data, err = readStore(ctx, dst, e.gopts)
				if err != nil {
					return nil, nil, err
				}
				if err := removeStore(ctx, dst, e.gopts); err != nil {
					return nil, nil, err
				}
			} else {
				data = readParts(dst)
			}
			sum, err := gensort.Validate(ctx, bytes.NewReader(data))
			if err != nil {
				return nil, nil, err
			}
			return r, []byte(fmt.Sprint(sum.Records, sum.Checksum)), nil
		}},
	}

	results := map[string]map[string]*measure{}
	var names []string
	for _, w := range workloads {
		if *only != "" && !strings.Contains(w.name, *only) {
			continue
		}
		names = append(names, w.name)
		results[w.name] = map[string]*measure{}
		var want []byte
		for r := 0; r < *rounds; r++ {
			for _, v := range variants {
				if *onlyVariant != "" && !strings.Contains(v.name, *onlyVariant) {
					continue
				}
				runtime.GC()
				rep, got, err := w.run(v, r)
				d := wall.Seconds()
				if err != nil {
					return fmt.Errorf("%s, %s: %w", w.name, v.name, err)
				}
				if want == nil {
					want = got
				} else if !bytes.Equal(got, want) {
					return fmt.Errorf("%s: %s output differs from %s's", w.name, v.name, variants[0].name)
				}
				m := results[w.name][v.name]
				if m == nil {
					m = &measure{}
					results[w.name][v.name] = m
				}
				m.Seconds = append(m.Seconds, d)
				m.CPUSeconds = append(m.CPUSeconds, cpu.Seconds())
				account(m, rep)
				fmt.Printf("round %d  %-44s %-30s %7.2fs  cpu %6.2fs\n", r+1, w.name, v.name, d, cpu.Seconds())
			}
		}
	}
	fmt.Printf("\non %d cores, median of %d rounds; ratios are glider / %s\n", workers, *rounds, baseline)
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "cores": workers, "rounds": *rounds,
		"baseline": baseline}
	summary := map[string]any{}
	for _, name := range names {
		fmt.Printf("\n%s\n", name)
		fmt.Printf("  %-30s %8s %8s %11s %11s %11s %11s %9s %11s\n", "strategy", "time", "cpu", "shuffle", "boundary", "ingested", "input read", "requests", "stored")
		for _, v := range variants {
			m := results[name][v.name]
			if m == nil {
				continue // left out with -variant
			}
			s := slices.Clone(m.Seconds)
			slices.Sort(s)
			m.Median = s[len(s)/2]
			c := slices.Clone(m.CPUSeconds)
			slices.Sort(c)
			m.CPUMedian = c[len(c)/2]
			fmt.Printf("  %-30s %7.2fs %7.2fs %11s %11s %11s %11s %9d %11s\n", v.name, m.Median, m.CPUMedian, ib(m.ShuffleBytes), ib(m.Boundary),
				ib(m.Ingested), ib(m.InputRead), m.Requests, ib(m.BytesStored))
		}
		ds, gl := results[name][baseline], results[name]["glider"]
		if ds == nil || gl == nil {
			continue
		}
		ratio := func(a, b int64) float64 {
			if b == 0 {
				return 0
			}
			return float64(a) / float64(b)
		}
		ratios := map[string]float64{
			"time":                    gl.Median / ds.Median,
			"cpu":                     gl.CPUMedian / ds.CPUMedian,
			"time_vs_filesystem":      gl.Median / results[name][variants[0].name].Median,
			"shuffle_bytes":           ratio(gl.ShuffleBytes, ds.ShuffleBytes),
			"boundary_bytes":          ratio(gl.Boundary, ds.Boundary),
			"boundary_after_sampling": ratio(gl.Boundary-gl.SamplingBytes, ds.Boundary-ds.SamplingBytes),
			"ingested":                ratio(gl.Ingested, ds.Ingested),
			"input_read":              ratio(gl.InputRead, ds.InputRead),
			"requests":                ratio(gl.Requests, ds.Requests),
			"bytes_stored":            ratio(gl.BytesStored, ds.BytesStored),
		}
		fmt.Printf("  glider / baseline: time %.2fx (vs filesystem %.2fx), cpu %.2fx, shuffle bytes %.2fx, boundary bytes %.2fx (%.2fx after sampling), ingested %.4fx, input read %.4fx, requests %.2fx, stored %.4fx\n",
			ratios["time"], ratios["time_vs_filesystem"], ratios["cpu"], ratios["shuffle_bytes"], ratios["boundary_bytes"], ratios["boundary_after_sampling"],
			ratios["ingested"], ratios["input_read"], ratios["requests"], ratios["bytes_stored"])
		summary[name] = map[string]any{"variants": results[name], "ratios": ratios}
	}
	doc["workloads"] = summary
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// account fills m's byte and request counts from a job's report.
func account(m *measure, r *gale.Report) {
	m.ShuffleBytes, m.Boundary, m.Ingested, m.SamplingBytes, m.Requests, m.BytesStored, m.ActionsWrote, m.InputRead = 0, 0, 0, 0, 0, 0, 0, 0
	for _, s := range r.Stages {
		t := s.Metrics
		all := t.ObjectBytesRead + t.ObjectBytesWritten + t.ShuffleBytesRead + t.ShuffleBytesWritten
		m.ShuffleBytes += t.ShuffleBytesWritten + t.ShuffleBytesRead
		m.Boundary += all
		m.Ingested += t.ObjectBytesRead + t.ShuffleBytesRead
		m.InputRead += t.ObjectBytesRead
		m.Requests += t.Requests
		if strings.HasPrefix(s.Name, "sampling ") {
			m.SamplingBytes += all
		}
	}
	for _, sh := range r.Shuffles {
		m.BytesStored += sh.BytesStored
		m.ActionsWrote += sh.BytesWrittenByActions
		m.Boundary += sh.BytesCopiedAtCommit
	}
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ib(n int64) string { return humanize.IBytes(uint64(n)) }

func readParts(dir string) []byte {
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	slices.Sort(parts)
	var all []byte
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	return all
}

func sortedLines(b []byte) []byte {
	ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(ls)
	return []byte(strings.Join(ls, "\n"))
}

// readStore concatenates the part files of an output in an object store.
func readStore(ctx context.Context, url string, opts map[string]string) ([]byte, error) {
	st, err := gale.OpenStore(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	objs, err := objstore.ListAll(ctx, st, "part-")
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, o := range objs {
		rc, err := st.Get(ctx, o.Key, 0, -1)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, b...)
	}
	return all, nil
}

func removeStore(ctx context.Context, url string, opts map[string]string) error {
	st, err := gale.OpenStore(ctx, url, opts)
	if err != nil {
		return err
	}
	objs, err := objstore.ListAll(ctx, st, "")
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := st.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

func makeBucket(ctx context.Context, endpoint, bucket string) error {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		return err
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	return err
}
