// Command shuffle compares Gale's two shuffle strategies side by side, in
// one run, on the same inputs: data shipping (map tasks write partitioned
// objects to object storage, reduce tasks read their ranges back; over the
// local filesystem and over an S3 protocol server on loopback) and glider
// (map tasks stream into Glider merge or sort actions that combine or sort
// as data arrives; reduce tasks read the results). For each workload it
// reports time, shuffle bytes moved across the worker/storage boundary,
// requests and bytes stored between the stages, and the ratios
// glider / data shipping. Outputs are checked to be identical.
//
// Workloads (the thesis's Glider experiments at this machine's scale):
//
//   - reduce: W map tasks × M random (key, value) pairs over 1,024 keys,
//     summed per key (Fig. 5.5);
//
//   - word count over a generated text corpus (a lifted combine);
//
//   - sort of sort-benchmark records (Fig. 5.9).
//
//     go run ./bench/shuffle [-pairs 5000000] [-text 256MiB] [-records 2000000] [-rounds 3]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/dustin/go-humanize"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
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

type measure struct {
	Seconds     []float64 `json:"seconds"`
	Median      float64   `json:"median_s"`
	BytesMoved  int64     `json:"shuffle_bytes_moved"`
	Requests    int64     `json:"shuffle_requests"`
	BytesStored int64     `json:"bytes_stored"`
}

type variant struct {
	name    string
	options func() []gale.RunOption
}

func run() error {
	pairs := flag.Int64("pairs", 5_000_000, "reduce: total (key, value) pairs")
	textSize := flag.String("text", "256MiB", "word count: corpus size")
	records := flag.Int64("records", 2_000_000, "sort: records (100 bytes each)")
	rounds := flag.Int("rounds", 3, "rounds (median reported)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gale-bench"), "working directory")
	out := flag.String("out", "bench/results/shuffle.json", "results file")
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

	variants := []variant{
		{"data shipping (filesystem)", func() []gale.RunOption { return []gale.RunOption{gale.ShuffleStrategy(gale.DataShipping)} }},
		{"data shipping (S3 protocol)", func() []gale.RunOption {
			return []gale.RunOption{gale.ShuffleStrategy(gale.DataShipping), gale.StoreOptions(s3opts), gale.TempStore("s3://shuffle/tmp")}
		}},
		{"glider", func() []gale.RunOption { return []gale.RunOption{gale.ShuffleStrategy(gale.GliderShuffle)} }},
	}

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
		run  func(opts []gale.RunOption) (*gale.Report, []byte, error)
	}
	workloads := []workload{
		{fmt.Sprintf("reduce: %s pairs over 1,024 keys", humanize.Comma(*pairs)), func(opts []gale.RunOption) (*gale.Report, []byte, error) {
			p := gale.NewPipeline()
			sums := gale.Collect(gale.SumPerKey(gale.Generate(p, *pairs, randomPair)))
			r, err := gale.Run(ctx, p, append(opts, gale.Workers(workers))...)
			if err != nil {
				return nil, nil, err
			}
			v := sums.Values()
			slices.SortFunc(v, func(a, b gale.KV[int64, int64]) int { return int(a.Key - b.Key) })
			b, _ := json.Marshal(v)
			return r, b, nil
		}},
		{"word count, " + humanize.IBytes(tsize), func(opts []gale.RunOption) (*gale.Report, []byte, error) {
			o, err := os.MkdirTemp(*dir, "wc-")
			if err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(o)
			p := gale.NewPipeline()
			wordcount.Build(p, []string{corpus}, filepath.Join(o, "out"))
			r, err := gale.Run(ctx, p, append(opts, gale.Workers(workers))...)
			if err != nil {
				return nil, nil, err
			}
			return r, readParts(filepath.Join(o, "out")), nil
		}},
		{fmt.Sprintf("sort, %s records", humanize.Comma(*records)), func(opts []gale.RunOption) (*gale.Report, []byte, error) {
			o, err := os.MkdirTemp(*dir, "sort-")
			if err != nil {
				return nil, nil, err
			}
			defer os.RemoveAll(o)
			p := gale.NewPipeline()
			if err := gsort.Build(p, gsort.Records, []string{recFile}, filepath.Join(o, "out")); err != nil {
				return nil, nil, err
			}
			r, err := gale.Run(ctx, p, append(opts, gale.Workers(workers), gale.WorkerMemory(256<<20))...)
			if err != nil {
				return nil, nil, err
			}
			sum, err := gensort.Validate(ctx, bytes.NewReader(readParts(filepath.Join(o, "out"))))
			if err != nil {
				return nil, nil, err
			}
			return r, []byte(fmt.Sprint(sum.Records, sum.Checksum)), nil
		}},
	}

	results := map[string]map[string]*measure{}
	for _, w := range workloads {
		results[w.name] = map[string]*measure{}
		var want []byte
		for r := 0; r < *rounds; r++ {
			for _, v := range variants {
				runtime.GC()
				start := time.Now()
				rep, got, err := w.run(v.options())
				d := time.Since(start).Seconds()
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
				t := rep.Totals()
				m.Seconds = append(m.Seconds, d)
				m.BytesMoved = t.ShuffleBytesWritten + t.ShuffleBytesRead
				m.Requests = shuffleRequests(rep)
				m.BytesStored = 0
				for _, sh := range rep.Shuffles {
					m.BytesStored += sh.BytesStored
				}
				fmt.Printf("round %d  %-40s %-28s %7.2fs\n", r+1, w.name, v.name, d)
			}
		}
	}
	fmt.Printf("\non %d cores, median of %d rounds; ratios are glider / data shipping (filesystem)\n", workers, *rounds)
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "cores": workers, "rounds": *rounds}
	summary := map[string]any{}
	for _, w := range workloads {
		fmt.Printf("\n%s\n", w.name)
		fmt.Printf("  %-28s %9s %14s %10s %14s\n", "strategy", "time", "bytes moved", "requests", "bytes stored")
		for _, v := range variants {
			m := results[w.name][v.name]
			s := slices.Clone(m.Seconds)
			slices.Sort(s)
			m.Median = s[len(s)/2]
			fmt.Printf("  %-28s %8.2fs %14s %10d %14s\n", v.name, m.Median, humanize.IBytes(uint64(m.BytesMoved)), m.Requests,
				humanize.IBytes(uint64(m.BytesStored)))
		}
		ds, gl := results[w.name][variants[0].name], results[w.name]["glider"]
		ratios := map[string]float64{
			"time":         gl.Median / ds.Median,
			"bytes_moved":  float64(gl.BytesMoved) / float64(ds.BytesMoved),
			"requests":     float64(gl.Requests) / float64(ds.Requests),
			"bytes_stored": float64(gl.BytesStored) / float64(ds.BytesStored),
		}
		fmt.Printf("  glider / data shipping: time %.2fx, bytes moved %.2fx, requests %.2fx, bytes stored %.4fx\n",
			ratios["time"], ratios["bytes_moved"], ratios["requests"], ratios["bytes_stored"])
		summary[w.name] = map[string]any{"variants": results[w.name], "ratios": ratios}
	}
	doc["workloads"] = summary
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// shuffleRequests counts the requests of every stage: stage metrics do not
// split requests by tier, and input and output requests are the same under
// both strategies, so differences are the shuffle's.
func shuffleRequests(r *gale.Report) int64 {
	var n int64
	for _, s := range r.Stages {
		n += s.Metrics.Requests
	}
	return n
}

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

func makeBucket(ctx context.Context, endpoint, bucket string) error {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		return err
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	return err
}
