package chaos

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/examples/kmeans"
	kdata "github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/logreg"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/awsstandin"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

var (
	full     = flag.Bool("full", false, "run every job under every fault class at three seeds (make chaos)")
	seedFlag = flag.Uint64("seed", 0, "run only this seed")
)

func TestMain(m *testing.M) {
	// The process backend's workers are this binary: register every
	// sample job's kernels before serving as one.
	wordcount.Build(gale.NewPipeline(), []string{"in"}, "out")
	_ = gsort.Build(gale.NewPipeline(), gsort.Text, []string{"in"}, "out")
	kmeans.Register(gale.NewPipeline())
	logreg.Register(gale.NewPipeline())
	gale.ServeWorkerIfRequested()
	os.Exit(m.Run())
}

// rate is the share of invocations (or storage requests) given the fault.
const rate = 0.1

// runDeadline bounds every run: a hang is a failure, not a stuck test.
const runDeadline = 3 * time.Minute

// class is one fault class: the faulty configuration at rate.
type class struct {
	name string
	cfg  func(seed uint64) faulty.Config
}

func invocationClasses() []class {
	one := func(name string, set func(c *faulty.Config)) class {
		return class{name, func(seed uint64) faulty.Config {
			c := faulty.Config{Seed: seed, MaxDelay: 20 * time.Millisecond, SlowFactor: 10, SlowMin: 300 * time.Millisecond}
			set(&c)
			return c
		}}
	}
	return []class{
		one("reject", func(c *faulty.Config) { c.RejectRate = rate }),
		one("fail", func(c *faulty.Config) { c.FailRate = rate }),
		one("crash", func(c *faulty.Config) { c.CrashRate = rate }),
		one("lose", func(c *faulty.Config) { c.LoseRate = rate }),
		one("duplicate", func(c *faulty.Config) { c.DuplicateRate = rate }),
		one("delay", func(c *faulty.Config) { c.DelayRate = rate }),
		one("slow", func(c *faulty.Config) { c.SlowRate = rate }),
		one("hang", func(c *faulty.Config) { c.HangRate = rate }),
		mix,
	}
}

// mix gives a tenth of the invocations one of the faults, each as likely.
var mix = class{"mix", func(seed uint64) faulty.Config {
	r := rate / 8
	return faulty.Config{Seed: seed, RejectRate: r, FailRate: r, CrashRate: r, LoseRate: r, DuplicateRate: r,
		DelayRate: r, SlowRate: r, HangRate: r, MaxDelay: 20 * time.Millisecond, SlowFactor: 10, SlowMin: 300 * time.Millisecond}
}}

// job is a sample job: run it with opts and check its answer against an
// independent one.
type job struct {
	name string
	run  func(t *testing.T, ctx context.Context, opts []gale.RunOption) error
}

// runOptions are the options every chaos run shares: enough attempts that
// ten failures in a row (probability 1e-10) are the only way to fail, a
// task deadline that turns a hang into a retry in seconds, and backups
// that start early enough for tasks of milliseconds.
func runOptions(fb *faulty.Backend, id string) []gale.RunOption {
	return []gale.RunOption{gale.WithBackend("faulty", fb), gale.Workers(4), gale.MaxAttempts(10), gale.JobID(id),
		gale.TaskTimeout(5 * time.Second),
		gale.WithSpeculation(engine.Speculation{MinRuntime: 200 * time.Millisecond})}
}

func newFaulty(t *testing.T, cfg faulty.Config) *faulty.Backend {
	t.Helper()
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(lb, cfg)
	t.Cleanup(func() { _ = fb.Close() })
	return fb
}

func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	if *full {
		return []uint64{1, 2, 3}
	}
	return []uint64{1}
}

// maxSeedTries bounds the seeds a matrix cell tries to get its runs: at
// 10% of 16 invocations a seed injects nothing 18% of the time, so ten
// seeds all injecting nothing (probability 4e-8) means the class is not
// injected at all.
const maxSeedTries = 10

// matrix runs each job under each class at len(seeds()) seeds that
// inject the class. A seed whose run injected none of its faults proves
// nothing: its run is skipped (it still had to succeed) and the next seed
// is tried, so every cell counts only runs that met the fault.
func matrix(t *testing.T, jobs []job, classes []class) {
	for _, j := range jobs {
		for _, c := range classes {
			base := seeds()
			injected, failed := 0, false
			var seed uint64
			for try := 0; injected < len(base) && !failed && try < maxSeedTries; try++ {
				if try < len(base) {
					seed = base[try]
				} else if *seedFlag != 0 {
					break // reproducing one seed: no other
				} else {
					seed++
				}
				ok := t.Run(fmt.Sprintf("%s/%s/seed=%d", j.name, c.name, seed), func(t *testing.T) {
					fb := newFaulty(t, c.cfg(seed))
					ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
					defer cancel()
					start := time.Now()
					err := j.run(t, ctx, runOptions(fb, fmt.Sprintf("chaos-%s-%s-%d", j.name, c.name, seed)))
					cerr := fb.Close()
					st := fb.Stats()
					if err != nil {
						t.Fatalf("%s under %s faults (seed %d, injected %+v) after %s: %v", j.name, c.name, seed, st,
							time.Since(start).Round(time.Millisecond), err)
					}
					if cerr != nil {
						t.Errorf("closing the backend: %v", cerr)
					}
					t.Logf("seed %d: %+v in %s", seed, st, time.Since(start).Round(time.Millisecond))
					if c.name != "mix" && st.Passed == st.Invocations {
						t.Skipf("no %s fault was injected in %d invocations; the run proves nothing, trying another seed", c.name, st.Invocations)
					}
					injected++
				})
				failed = !ok
			}
			if !failed && injected < len(base) && *seedFlag == 0 {
				t.Errorf("%s/%s: only %d of %d runs injected a %s fault in %d seeds", j.name, c.name, injected, len(base), c.name, maxSeedTries)
			}
		}
	}
}

// TestInvocationFaults runs the sample jobs under the faulty backend.
// The fast subset: word count under every class, the others under the
// mix; -full: every job under every class.
func TestInvocationFaults(t *testing.T) {
	classes := invocationClasses()
	if *full {
		matrix(t, allJobs(t), classes)
		return
	}
	jobs := allJobs(t)
	matrix(t, jobs[:1], classes)
	matrix(t, jobs[1:], []class{mix})
}

func allJobs(t *testing.T) []job {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = 300<<10, 17
	if err := textgen.GenerateFile(context.Background(), text, cfg); err != nil {
		t.Fatal(err)
	}
	counts, err := wordref.CountFile(text)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(text)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(lines)
	sorted := strings.Join(lines, "\n") + "\n"

	wc := func(strategy string) func(*testing.T, context.Context, []gale.RunOption) error {
		return func(t *testing.T, ctx context.Context, opts []gale.RunOption) error {
			out := filepath.Join(t.TempDir(), "out")
			p := gale.NewPipeline()
			wordcount.Build(p, []string{text}, out)
			if _, err := gale.Run(ctx, p, append(opts, gale.ChunkSize(24<<10), gale.Partitions(3),
				gale.ShuffleStrategy(strategy))...); err != nil {
				return err
			}
			got, err := wordref.ReadCountDir(out)
			if err != nil {
				t.Fatalf("reading the output: %v", err)
			}
			if err := wordref.Diff(got, counts); err != nil {
				t.Fatalf("wrong word counts: %v", err)
			}
			return nil
		}
	}
	srt := func(strategy string) func(*testing.T, context.Context, []gale.RunOption) error {
		return func(t *testing.T, ctx context.Context, opts []gale.RunOption) error {
			out := filepath.Join(t.TempDir(), "out")
			p := gale.NewPipeline()
			if err := gsort.Build(p, gsort.Text, []string{text}, out); err != nil {
				t.Fatal(err)
			}
			if _, err := gale.Run(ctx, p, append(opts, gale.ChunkSize(24<<10), gale.Partitions(3),
				gale.ShuffleStrategy(strategy))...); err != nil {
				return err
			}
			if got := committed(t, out); got != sorted {
				t.Fatalf("sorted output differs from the sorted input: %d bytes, want %d", len(got), len(sorted))
			}
			return nil
		}
	}
	points := genData(t, func(st objstore.Store) error {
		return kdata.WritePoints(context.Background(), st, kdata.PointsConfig{Count: 3000, Dim: 4, K: 3, Parts: 3, Seed: 5})
	})
	labeled := genData(t, func(st objstore.Store) error {
		return kdata.WriteLabeled(context.Background(), st, kdata.LabeledConfig{Count: 3000, Features: 4, Parts: 3, Seed: 5})
	})
	km := func(t *testing.T, ctx context.Context, opts []gale.RunOption) error {
		cfg := kmeans.Config{Inputs: []string{points}, K: 3, Iterations: 3, Seed: 2, Workers: 3}
		cfg.Mode = kmeans.ModeLocal
		want, err := kmeans.Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Mode, cfg.RunOptions = kmeans.ModeStages, append(opts, gale.ChunkSize(16<<10))
		got, err := kmeans.Run(ctx, cfg)
		if err != nil {
			return err
		}
		near(t, "centers", got.Centers, want.Centers)
		near(t, "costs", got.Costs, want.Costs)
		return nil
	}
	lr := func(t *testing.T, ctx context.Context, opts []gale.RunOption) error {
		cfg := logreg.Config{Inputs: []string{labeled}, Iterations: 3, Workers: 3}
		cfg.Mode = logreg.ModeLocal
		want, err := logreg.Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Mode, cfg.RunOptions = logreg.ModeStages, append(opts, gale.ChunkSize(16<<10))
		got, err := logreg.Run(ctx, cfg)
		if err != nil {
			return err
		}
		near(t, "weights", got.Weights, want.Weights)
		near(t, "losses", got.Losses, want.Losses)
		return nil
	}
	return []job{
		{"wordcount", wc(gale.DataShipping)},
		{"sort", srt(gale.DataShipping)},
		{"wordcount-glider", wc(gale.GliderShuffle)},
		{"sort-glider", srt(gale.GliderShuffle)},
		{"kmeans-stages", km},
		{"logreg-stages", lr},
	}
}

func genData(t *testing.T, write func(objstore.Store) error) string {
	t.Helper()
	dir := t.TempDir()
	st, err := gale.OpenStore(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(st); err != nil {
		t.Fatal(err)
	}
	return dir
}

// near checks values against an independent computation's, allowing
// the rounding of sums added in another order.
func near(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9*math.Max(1, math.Max(math.Abs(got[i]), math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// committed checks that dir holds a committed output (_SUCCESS and part
// files only) and returns the part files' bytes in order.
func committed(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	success := false
	for _, e := range ents {
		switch {
		case e.Name() == "_SUCCESS":
			success = true
		case strings.HasPrefix(e.Name(), "part-"):
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
		default:
			t.Errorf("output holds %s, neither a part file nor _SUCCESS", e.Name())
		}
	}
	if !success {
		t.Errorf("output %s has no _SUCCESS", dir)
	}
	return buf.String()
}

// TestStorageFaults runs word count with its input, temporary store and
// output on an S3-compatible server behind faulty.HTTPHandler, and the
// invocations under the faulty backend's mix too.
func TestStorageFaults(t *testing.T) {
	classes := []struct {
		name string
		cfg  faulty.HTTPConfig
	}{
		{"slowdown", faulty.HTTPConfig{SlowDownRate: rate}},
		{"error", faulty.HTTPConfig{ErrorRate: rate}},
		{"error-after", faulty.HTTPConfig{ErrorAfterRate: rate}},
		{"cut", faulty.HTTPConfig{CutRate: rate}},
		{"slow", faulty.HTTPConfig{SlowRate: rate, MaxDelay: 20 * time.Millisecond}},
		{"mix", faulty.HTTPConfig{SlowDownRate: rate / 5, ErrorRate: rate / 5, ErrorAfterRate: rate / 5, CutRate: rate / 5,
			SlowRate: rate / 5, MaxDelay: 20 * time.Millisecond}},
	}
	if !*full {
		classes = classes[len(classes)-1:]
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = 120<<10, 23
	if err := textgen.GenerateFile(context.Background(), text, cfg); err != nil {
		t.Fatal(err)
	}
	want, err := wordref.CountFile(text)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes {
		for _, seed := range seeds() {
			t.Run(fmt.Sprintf("%s/seed=%d", c.name, seed), func(t *testing.T) {
				hc := c.cfg
				hc.Seed = seed
				opts, h := startS3(t, "data", hc)
				ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
				defer cancel()
				// The input goes in before the faults start to count.
				if err := putRetrying(ctx, opts, "s3://data/in/text.txt", data); err != nil {
					t.Fatal(err)
				}
				fb := newFaulty(t, mix.cfg(seed))
				p := gale.NewPipeline()
				wordcount.Build(p, []string{"s3://data/in"}, "s3://data/out")
				_, err := gale.Run(ctx, p, append(runOptions(fb, fmt.Sprintf("chaos-s3-%s-%d", c.name, seed)),
					gale.StoreOptions(opts), gale.TempStore("s3://data/tmp"), gale.ChunkSize(16<<10), gale.Partitions(2))...)
				_ = fb.Close()
				if err != nil {
					t.Fatalf("word count on S3 under %s storage faults (seed %d, injected %+v, invocations %+v): %v",
						c.name, seed, h.Stats(), fb.Stats(), err)
				}
				got := readS3Counts(t, ctx, opts)
				if err := wordref.Diff(got, want); err != nil {
					t.Fatalf("wrong word counts (seed %d): %v", seed, err)
				}
				t.Logf("seed %d: storage %+v, invocations %+v", seed, h.Stats(), fb.Stats())
			})
		}
	}
}

// startS3 serves an in-memory S3 bucket on loopback behind a fault
// handler and returns the store options that reach it.
func startS3(t *testing.T, bucket string, cfg faulty.HTTPConfig) (map[string]string, *faulty.HTTPHandler) {
	t.Helper()
	awsstandin.IsolateTest(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	h := faulty.NewHTTP(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server(), cfg)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return map[string]string{"s3.endpoint": srv.URL, "s3.path_style": "true", "s3.region": "us-east-1"}, h
}

// putRetrying writes an object through the faults (test setup).
func putRetrying(ctx context.Context, opts map[string]string, url string, data []byte) error {
	dir, key := url[:strings.LastIndex(url, "/")], url[strings.LastIndex(url, "/")+1:]
	var err error
	for range 20 {
		var st objstore.Store
		if st, err = gale.OpenStore(ctx, dir, opts); err == nil {
			if err = st.Put(ctx, key, bytes.NewReader(data)); err == nil {
				return nil
			}
		}
	}
	return err
}

// readS3Counts reads the committed output's counts through the faults,
// retrying a read the faults broke (a reader's retries, not the job's).
func readS3Counts(t *testing.T, ctx context.Context, opts map[string]string) map[string]int64 {
	t.Helper()
	var lastErr error
	for range 20 {
		st, err := gale.OpenStore(ctx, "s3://data/out", opts)
		if err != nil {
			lastErr = err
			continue
		}
		objs, err := objstore.ListAll(ctx, st, "")
		if err != nil {
			lastErr = err
			continue
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		var buf bytes.Buffer
		ok := slices.Contains(keys, "_SUCCESS")
		if !ok {
			t.Fatalf("output has no _SUCCESS: %q", keys)
		}
		for _, k := range keys {
			if k == "_SUCCESS" {
				continue
			}
			if !strings.HasPrefix(k, "part-") {
				t.Fatalf("output holds %s, neither a part object nor _SUCCESS", k)
			}
			rc, err := st.Get(ctx, k, 0, -1)
			if err != nil {
				lastErr = err
				break
			}
			_, err = io.Copy(&buf, rc)
			rc.Close()
			if err != nil {
				lastErr = err
				break
			}
		}
		if lastErr != nil {
			lastErr = nil
			continue
		}
		counts, err := wordref.ParseCounts(&buf)
		if err != nil {
			t.Fatalf("parsing the output: %v", err)
		}
		return counts
	}
	t.Fatalf("reading the output through the faults: %v", lastErr)
	return nil
}
