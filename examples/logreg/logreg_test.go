package logreg_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
	"github.com/galeproject/gale/examples/logreg"
)

func TestMain(m *testing.M) {
	logreg.Register(gale.NewPipeline())
	gale.ServeWorkerIfRequested()
	os.Exit(m.Run())
}

func genLabeled(t *testing.T, cfg dataset.LabeledConfig) string {
	t.Helper()
	dir := t.TempDir()
	st, err := gale.OpenStore(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.WriteLabeled(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// descend is an independent sequential gradient descent on the files,
// with the log-loss written the textbook way.
func descend(t *testing.T, dir string, iters int, stepSize float64) (w, losses []float64) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	var ys []float64
	var xs [][]float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var row []float64
			for _, s := range strings.Split(line, ",") {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatal(err)
				}
				row = append(row, v)
			}
			ys = append(ys, row[0])
			xs = append(xs, append(row[1:], 1)) // the bias's constant feature
		}
	}
	w = make([]float64, len(xs[0]))
	for range iters {
		g := make([]float64, len(w))
		var loss float64
		for i, x := range xs {
			var z float64
			for j := range x {
				z += w[j] * x[j]
			}
			p := 1 / (1 + math.Exp(-z))
			loss += -ys[i]*math.Log(p) - (1-ys[i])*math.Log(1-p)
			for j := range x {
				g[j] += (p - ys[i]) * x[j]
			}
		}
		losses = append(losses, loss/float64(len(xs)))
		for j := range w {
			w[j] -= stepSize * g[j] / float64(len(xs))
		}
	}
	return w, losses
}

// tolerance: modes add the same terms in different orders.
const tolerance = 1e-9

func checkSame(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tolerance*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.17g, want %.17g (tolerance %g)", what, i, got[i], want[i], tolerance)
		}
	}
}

func TestModesAgreeAndTheLossDecreases(t *testing.T) {
	dir := genLabeled(t, dataset.LabeledConfig{Count: 2000, Features: 10, Parts: 3, Seed: 5})
	const iters, stepSize = 8, 0.5
	wantW, wantL := descend(t, dir, iters, stepSize)
	for _, mode := range []string{logreg.ModeLocal, logreg.ModeShared, logreg.ModeStages} {
		t.Run(mode, func(t *testing.T) {
			res, err := logreg.Run(context.Background(), logreg.Config{Inputs: []string{dir}, Iterations: iters, Step: stepSize,
				Workers: 3, Mode: mode, RunOptions: []gale.RunOption{gale.ChunkSize(16 << 10)}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rounds != iters || res.Features != 10 || res.Points != 2000 {
				t.Fatalf("rounds %d, features %d, points %d", res.Rounds, res.Features, res.Points)
			}
			checkSame(t, "weights", res.Weights, wantW)
			checkSame(t, "losses", res.Losses, wantL)
			for i := 1; i < len(res.Losses); i++ {
				if !(res.Losses[i] < res.Losses[i-1]) {
					t.Errorf("loss did not decrease at round %d: %v", i, res.Losses)
				}
			}
		})
	}
}

// The data's features are N(0, 1), so the second-moment matrix's largest
// eigenvalue is about 1 (plus sampling noise) and any step up to about 4
// decreases the loss; a step of 1.5 keeps a margin. A step far too large
// makes it oscillate, which the test shows is a real property of the step.
func TestTheLossDecreasesMonotonicallyForASmallStepOnly(t *testing.T) {
	dir := genLabeled(t, dataset.LabeledConfig{Count: 3000, Features: 20, Parts: 2, Seed: 9, Sharpness: 8})
	run := func(step float64) []float64 {
		res, err := logreg.Run(context.Background(), logreg.Config{Inputs: []string{dir}, Iterations: 25, Step: step, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		return res.Losses
	}
	small := run(1.5)
	for i := 1; i < len(small); i++ {
		if !(small[i] < small[i-1]) {
			t.Fatalf("step 1.5: loss rose at round %d: %v", i, small)
		}
	}
	if small[len(small)-1] > 0.8*math.Ln2 {
		t.Errorf("step 1.5: loss %v after 25 rounds, want well below log 2", small[len(small)-1])
	}
	big := run(200)
	rose := false
	for i := 1; i < len(big); i++ {
		rose = rose || big[i] > big[i-1]
	}
	if !rose {
		t.Errorf("step 200: the loss never rose (%v); the monotonicity test would not catch a bad step", big)
	}
}

func TestAWorkerRestartedMidRunGivesTheSameAnswer(t *testing.T) {
	dir := genLabeled(t, dataset.LabeledConfig{Count: 1500, Features: 6, Parts: 2})
	base := logreg.Config{Inputs: []string{dir}, Iterations: 6, Workers: 3, Step: 0.5}
	want, err := logreg.Run(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{rounds.BeforeMerge, rounds.AfterMerge, rounds.AfterBarrier} {
		t.Run(at, func(t *testing.T) {
			cfg := base
			cfg.Fault = rounds.Fault{Worker: 2, Round: 3, At: at}
			got, err := logreg.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want.Weights {
				if got.Weights[i] != want.Weights[i] {
					t.Fatalf("weights[%d] = %.17g after a restart, want %.17g", i, got.Weights[i], want.Weights[i])
				}
			}
			restarts := 0
			for _, tm := range got.Timings {
				if tm.Worker == 2 && tm.Attempt == 2 {
					restarts++
				}
			}
			if restarts != 1 {
				t.Fatalf("worker 2 restarted %d times: %+v", restarts, got.Timings)
			}
		})
	}
}

func TestBadLabelsAndFeaturesAreNamedByFileAndLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		body, want string
		features   int
	}{
		{"1,0.5,2\n0,1,1\n2,3,4\n", "bad.csv:3: label 2 is not 0 or 1", 0},
		{"1,0.5,2\n0,1,Inf\n", `bad.csv:2: value 3 "Inf" is not a finite number`, 0},
		{"1,0.5,2\n0,1\n", "bad.csv:2: 2 values, but", 0},
		{"1,0.5,2\n", "bad.csv:1: 3 values, but the job's configuration has 4", 3},
	}
	for _, c := range cases {
		p := write("bad.csv", c.body)
		_, err := logreg.Run(context.Background(), logreg.Config{Inputs: []string{p}, Features: c.features, Iterations: 2})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, dataset.ErrBadInput) {
			t.Errorf("%q: got %v, want an error containing %q", c.body, err, c.want)
		}
	}
}
