package gale_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/gensort"
)

// TestGliderShuffleUnderFaults runs word count with the glider strategy
// while every task's first attempt fails after running to its end, loses
// its result or runs twice: each map task's partial counts reach the merge
// actions from several attempts, and must count once.
func TestGliderShuffleUnderFaults(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 21, nil)
	want := refCount(t, in)
	for _, f := range []faulty.Fault{faulty.Fail, faulty.Lose, faulty.Duplicate} {
		t.Run(f.String(), func(t *testing.T) {
			fb := newFaulty(t, faulty.Config{Rule: onFirstAttempt(f)})
			report := runWordCount(t, fb, in, want, gale.ShuffleStrategy(gale.GliderShuffle),
				gale.JobID("glider-faults-"+f.String()))
			if s := report.Shuffles[0]; s.Strategy != "glider" {
				t.Fatalf("the shuffle ran as %q, want glider", s.Strategy)
			}
		})
	}
}

// failingMerge wraps a merge action and fails chosen write streams: the
// first clean stream of each writer to a partition in foldThenFail is
// folded into the action and then reported failed (the writer's result is
// lost), the first to a partition in failBefore is failed without being
// folded. A map task that streams to both fails after it has ended some of
// its streams and before ending others; its retries stream everything
// again.
type failingMerge struct {
	inner glider.Action
	path  string
	inj   *injector
}

type injector struct {
	foldThenFail, failBefore string // path suffixes
	mu                       sync.Mutex
	clean                    map[string]int // clean streams per path and writer
	injected                 int
}

func (a *failingMerge) OnCreate(ctx context.Context, env *glider.Env) error {
	a.path = env.Path
	return a.inner.(glider.Creator).OnCreate(ctx, env)
}

func (a *failingMerge) OnWrite(ctx context.Context, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err // a cut stream: the inner action never sees it
	}
	_, v, err := glider.NewRecordReader(bytes.NewReader(data)).Next()
	if err != nil {
		return err
	}
	id, _ := binary.Uvarint(v)
	a.inj.mu.Lock()
	key := fmt.Sprint(a.path, "/", id)
	a.inj.clean[key]++
	first := a.inj.clean[key] == 1
	if first && (strings.HasSuffix(a.path, a.inj.foldThenFail) || strings.HasSuffix(a.path, a.inj.failBefore)) {
		a.inj.injected++
	}
	a.inj.mu.Unlock()
	switch {
	case first && strings.HasSuffix(a.path, a.inj.failBefore):
		return errors.New("injected: the stream failed before its data was kept")
	case first && strings.HasSuffix(a.path, a.inj.foldThenFail):
		if err := a.inner.(glider.WriteHandler).OnWrite(ctx, bytes.NewReader(data)); err != nil {
			return err
		}
		return errors.New("injected: the stream's data was kept, then its result was lost")
	}
	return a.inner.(glider.WriteHandler).OnWrite(ctx, bytes.NewReader(data))
}

func (a *failingMerge) OnRead(ctx context.Context, w io.Writer) error {
	return a.inner.(glider.ReadHandler).OnRead(ctx, w)
}

func (a *failingMerge) StateBytes() int64 { return a.inner.(glider.Sizer).StateBytes() }

// TestGliderMergeRetryAfterPartialStreams makes map tasks fail after they
// ended their stream to one merge action but before ending the stream to
// another (and, on the second attempt, again on a third action), under
// word count and an unlifted sum: the retries stream every partition
// again, and the outputs still equal data shipping's and the independent
// answers.
func TestGliderMergeRetryAfterPartialStreams(t *testing.T) {
	in := corpus(t, t.TempDir(), "in.txt", 200<<10, 22, nil)
	want := refCount(t, in)
	reg := glider.DefaultRegistry()
	inj := &injector{foldThenFail: "/part-00001", failBefore: "/part-00002", clean: map[string]int{}}
	reg.Wrap(glider.ActionMerge, func(a glider.Action) glider.Action { return &failingMerge{inner: a, inj: inj} })
	cl, err := glider.NewCluster(glider.ClusterConfig{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
	})
	const ns = "faults"
	use := gale.UseGlider(cl.MetaAddr(), ns, cl.Token(ns))

	fb := newFaulty(t, faulty.Config{})
	report := runWordCount(t, fb, in, want, gale.ShuffleStrategy(gale.GliderShuffle), use, gale.MaxAttempts(4))
	_, retries := totalTasks(report)
	inj.mu.Lock()
	injected := inj.injected
	inj.mu.Unlock()
	if injected == 0 || retries == 0 {
		t.Fatalf("injected %d stream failures and the job retried %d tasks; want both", injected, retries)
	}
	t.Logf("word count: %d injected stream failures, %d retries", injected, retries)

	const n = 60000
	sums := func(strategy string, opts ...gale.RunOption) map[int64]int64 {
		p := gale.NewPipeline()
		c := gale.Collect(gale.SumPerKey(gale.Generate(p, n, gliderPair)))
		opts = append([]gale.RunOption{gale.Workers(2), gale.Partitions(3), gale.NoCombinerLifting(),
			gale.ShuffleStrategy(strategy), gale.MaxAttempts(4)}, opts...)
		if _, err := gale.Run(context.Background(), p, opts...); err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		got := map[int64]int64{}
		for _, kv := range c.Values() {
			got[kv.Key] = kv.Value
		}
		return got
	}
	wantSums := map[int64]int64{}
	for i := range int64(n) {
		kv := gliderPair(i)
		wantSums[kv.Key] += kv.Value
	}
	inj.mu.Lock()
	before := inj.injected
	inj.mu.Unlock()
	ds, gl := sums(gale.DataShipping), sums(gale.GliderShuffle, use)
	inj.mu.Lock()
	injected = inj.injected - before
	inj.mu.Unlock()
	if injected == 0 {
		t.Fatal("no stream failure was injected into the unlifted sum")
	}
	if !maps.Equal(ds, wantSums) || !maps.Equal(gl, ds) {
		t.Fatalf("sums differ: data shipping %d keys, glider %d keys, want %d", len(ds), len(gl), len(wantSums))
	}
}

// poisonRecord is the record failOnceOn fails on the first time it sees it.
var (
	poisonRecord []byte
	poisoned     atomic.Bool
)

// failOnceOn aborts the task the first time it meets poisonRecord: a map
// task that has already streamed chunks of its partitions into the sort
// actions fails midway, and its retry streams them all again.
func failOnceOn(rec []byte) []byte {
	if bytes.Equal(rec, poisonRecord) && poisoned.CompareAndSwap(false, true) {
		panic("injected: the map task fails after streaming part of its partitions")
	}
	return rec
}

// TestGliderSortRetries sorts records under the glider strategy while a
// map task fails after it streamed chunks of its partitions into the sort
// actions, and while every task's first attempt fails after running to its
// end, loses its result or runs twice: the output equals data shipping's
// and is a valid sort of every record.
func TestGliderSortRetries(t *testing.T) {
	const n = 100_000
	var recs bytes.Buffer
	if _, err := gensort.Generate(context.Background(), &recs, gensort.Config{Count: n, ASCII: true}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "recs.dat")
	if err := os.WriteFile(in, recs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The 30,000th record of the second 4 MiB chunk: its map task has sent
	// a 1 MiB chunk of each partition by then.
	poisonRecord = bytes.Clone(recs.Bytes()[(41943+30000)*100 : (41943+30001)*100])
	run := func(fb *faulty.Backend, strategy string, retried bool) []byte {
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		r := gale.Map(gale.ReadRecords(p, 100, in), failOnceOn)
		gale.WriteRecords(gale.Sort(r, gale.KeyPrefix(10), gale.SortPartitions(2)), out)
		report, err := gale.Run(context.Background(), p, gale.WithBackend("faulty", fb), gale.Workers(2),
			gale.ChunkSize(4<<20), gale.ShuffleStrategy(strategy), gale.MaxAttempts(3),
			gale.NoSpeculation()) // a backup that wins first would leave the failure nothing to retry
		if cerr := fb.Close(); cerr != nil {
			t.Errorf("closing the backend: %v", cerr)
		}
		if err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		if _, retries := totalTasks(report); retried && retries == 0 {
			t.Errorf("%s: no task was retried", strategy)
		}
		got := partBytes(t, out)
		sum, err := gensort.Validate(context.Background(), bytes.NewReader(got))
		if err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		if sum.Records != n {
			t.Fatalf("%s: %d records in the output, want %d", strategy, sum.Records, n)
		}
		return got
	}
	poisoned.Store(false)
	want := run(newFaulty(t, faulty.Config{}), gale.DataShipping, true)
	poisoned.Store(false)
	if got := run(newFaulty(t, faulty.Config{}), gale.GliderShuffle, true); !bytes.Equal(got, want) {
		t.Fatal("a map task failing midway: the glider sort differs from data shipping's")
	}
	for _, f := range []faulty.Fault{faulty.Fail, faulty.Lose, faulty.Duplicate} {
		poisoned.Store(true) // no poison: the backend injects the faults
		if got := run(newFaulty(t, faulty.Config{Rule: onFirstAttempt(f)}), gale.GliderShuffle, f != faulty.Duplicate); !bytes.Equal(got, want) {
			t.Fatalf("%s on first attempts: the glider sort differs from data shipping's", f)
		}
	}
}
