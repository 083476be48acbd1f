package gale_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/state"
)

func startDSO(t *testing.T) (*state.Client, []string, string) {
	t.Helper()
	const token = "iterate-test-token"
	srv, err := state.NewServer(state.ServerConfig{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	c, err := state.Dial(context.Background(), state.ClientConfig{Servers: []string{srv.Addr()}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, []string{srv.Addr()}, token
}

// sumRounds: every round, each worker adds its partition's sum scaled by
// the round to a shared total, then waits at the barrier; a worker counts
// its rounds in a shared counter so a restarted worker resumes.
func sumRounds(ctx context.Context, it *gale.Iteration, part []int64) error {
	var local int64
	for _, v := range part {
		local += v
	}
	total := it.DSO.AtomicLong("total")
	round := it.DSO.AtomicLong(fmt.Sprintf("round-%d", it.Worker))
	barrier := it.DSO.CyclicBarrier("barrier", it.Workers)
	for {
		r, err := round.Get(ctx)
		if err != nil {
			return err
		}
		if r >= 5 {
			return nil
		}
		if _, err := total.AddAndGet(ctx, local*(r+1)); err != nil {
			return err
		}
		if _, _, err := barrier.Await(ctx); err != nil {
			return err
		}
		if _, err := round.IncrementAndGet(ctx); err != nil {
			return err
		}
	}
}

func square(i int64) int64 { return i * i }

func TestIterateRunsLongLivedWorkersOverSharedState(t *testing.T) {
	dso, servers, token := startDSO(t)
	p := gale.NewPipeline()
	gale.Iterate(gale.Generate(p, 1000, square), 4, sumRounds)
	report, err := gale.Run(context.Background(), p, gale.Workers(4), gale.WithDSO(servers, token))
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for i := int64(0); i < 1000; i++ {
		want += i * i
	}
	want *= 1 + 2 + 3 + 4 + 5
	got, err := dso.AtomicLong("total").Get(context.Background())
	if err != nil || got != want {
		t.Fatalf("total = %d (%v), want %d", got, err, want)
	}
	last := report.Stages[len(report.Stages)-1]
	if last.Tasks != 4 {
		t.Errorf("iterate stage has %d tasks, want 4", last.Tasks)
	}
	var n int64
	for _, row := range last.TaskRows {
		n += row.Metrics.RecordsIn
		if row.Metrics.RecordsIn < 240 || row.Metrics.RecordsIn > 260 {
			t.Errorf("worker %d got %d elements, want about 250", row.Task, row.Metrics.RecordsIn)
		}
	}
	if n != 1000 {
		t.Errorf("workers got %d elements, want 1000", n)
	}
}

func TestIterateNeedsEveryWorkerAtOnceAndADSO(t *testing.T) {
	_, servers, token := startDSO(t)
	p := gale.NewPipeline()
	gale.Iterate(gale.Generate(p, 10, square), 8, sumRounds)
	_, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WithDSO(servers, token))
	if err == nil || !contains(err.Error(), "all must run at once") {
		t.Fatalf("got %v, want a concurrency error before running", err)
	}
	p = gale.NewPipeline()
	gale.Iterate(gale.Generate(p, 10, square), 2, sumRounds)
	if _, err := gale.Run(context.Background(), p, gale.Workers(2)); err == nil || !contains(err.Error(), "WithDSO") {
		t.Fatalf("got %v, want an error asking for WithDSO", err)
	}
}

func scale(f int64, v int64) int64  { return f * v }
func above(min int64, v int64) bool { return v > min }

func TestMapWithCarriesRunTimeParameters(t *testing.T) {
	for _, f := range []int64{2, 3} {
		p := gale.NewPipeline()
		out := gale.Collect(gale.FilterWith(gale.MapWith(gale.Generate(p, 10, square), scale, f), above, 20))
		if _, err := gale.Run(context.Background(), p, gale.Workers(2)); err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i := int64(0); i < 10; i++ {
			if v := f * i * i; v > 20 {
				want = append(want, v)
			}
		}
		got := out.Values()
		if fmt.Sprint(sorted(got)) != fmt.Sprint(want) {
			t.Errorf("factor %d: got %v, want %v", f, got, want)
		}
	}
}

func sorted(xs []int64) []int64 {
	out := append([]int64(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestIterateOnASimulatedPlatformFailsBeforeAnyTask: a simulated platform
// built as docs/probe.md shows (sim.Config{Handler: mux.Handle}) cannot run
// an iterate stage's workers together, since its clock stands still while a
// task runs. The job used to wait until its context ended; it now fails at
// once, naming the stage and the backend.
func TestIterateOnASimulatedPlatformFailsBeforeAnyTask(t *testing.T) {
	_, servers, token := startDSO(t)
	mux, err := gale.NewWorkerMux()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = mux.Handle
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := gale.NewPipeline()
	gale.Iterate(gale.Generate(p, 1000, square), 4, sumRounds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	report, err := gale.Run(ctx, p, gale.WithBackend("sim:aws", b), gale.Workers(4), gale.WithDSO(servers, token))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (context: %v), want a refusal before the context ends", err, ctx.Err())
	}
	for _, want := range []string{"Iterate(gale_test.sumRounds)", "iterate_test.go:", "sim:aws", "wait for each other"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if report != nil && report.Invocations > 0 {
		t.Errorf("%d tasks were invoked", report.Invocations)
	}
}

// roundsParam configures sumRoundsWith; the driver's value must reach
// every worker, whatever a worker's own pipeline construction used.
type roundsParam struct {
	Rounds int64
	Scale  int64
	Key    string
}

// sumRoundsWith is sumRounds with its round count, scale and shared
// object names as a parameter.
func sumRoundsWith(ctx context.Context, it *gale.Iteration, prm roundsParam, part []int64) error {
	var local int64
	for _, v := range part {
		local += v
	}
	total := it.DSO.AtomicLong(prm.Key + "total")
	round := it.DSO.AtomicLong(fmt.Sprintf("%sround-%d", prm.Key, it.Worker))
	barrier := it.DSO.CyclicBarrier(prm.Key+"barrier", it.Workers)
	for {
		r, err := round.Get(ctx)
		if err != nil {
			return err
		}
		if r >= prm.Rounds {
			return nil
		}
		if _, err := total.AddAndGet(ctx, prm.Scale*local*(r+1)); err != nil {
			return err
		}
		if _, _, err := barrier.Await(ctx); err != nil {
			return err
		}
		if _, err := round.IncrementAndGet(ctx); err != nil {
			return err
		}
	}
}

func init() {
	workerPipelines["iterate.with"] = func(p *gale.Pipeline) {
		gale.IterateWith(gale.Generate(p, 1, square), 2, sumRoundsWith, roundsParam{Rounds: 1, Scale: 1})
	}
}

// TestIterateWith checks that IterateWith's parameter, computed by the
// driver, reaches the workers of the local and process backends, and that
// a parameter JSON would not carry is refused when the pipeline is built.
func TestIterateWith(t *testing.T) {
	var sum int64
	for i := range int64(300) {
		sum += square(i)
	}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		dso, servers, token := startDSO(t)
		prm := roundsParam{Rounds: 3, Scale: 2, Key: t.Name()}
		p := gale.NewPipeline()
		gale.IterateWith(gale.Generate(p, 300, square), 2, sumRoundsWith, prm)
		run(t, p, append(opts, gale.WithDSO(servers, token))...)
		got, err := dso.AtomicLong(prm.Key + "total").Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := sum * 2 * (1 + 2 + 3); got != want {
			t.Errorf("total %d, want %d (3 rounds, scale 2)", got, want)
		}
	})
	type hidden struct{ rounds int }
	p := gale.NewPipeline()
	gale.IterateWith(gale.Generate(p, 3, square), 1, func(context.Context, *gale.Iteration, hidden, []int64) error { return nil }, hidden{3})
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "unexported field rounds") {
		t.Errorf("got %v, want the parameter's unexported field refused", err)
	}
}
