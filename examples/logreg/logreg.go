package logreg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
	"github.com/galeproject/gale/examples/kmeans/rounds"
	"github.com/galeproject/gale/state"
)

// Modes of Run.
const (
	ModeShared = "shared"
	ModeStages = "stages"
	ModeLocal  = "local"
)

// Name is the job's name on the shared-object servers.
const Name = "logreg"

// TypeWeights is the registered name of the Weights shared object type.
const TypeWeights = "gale.logreg.Weights"

// Config configures a run.
type Config struct {
	// Inputs are the data files, directories, globs or object-store URLs.
	// Required.
	Inputs []string
	// StoreOptions are the object-store client options.
	StoreOptions map[string]string
	// Features, if set, is the number of features every line must have
	// (after the label); otherwise the first line decides.
	Features int
	// Iterations is the number of gradient steps. Default 10.
	Iterations int
	// Step is the gradient step. Default 1.
	Step float64
	// Workers is the number of workers. Default 4.
	Workers int
	// Mode is ModeShared (default), ModeStages or ModeLocal.
	Mode string
	// RunOptions are passed to every gale.Run.
	RunOptions []gale.RunOption
	// Fault injects one worker failure (ModeShared; for tests).
	Fault rounds.Fault
}

func (c *Config) fill() {
	if c.Iterations == 0 {
		c.Iterations = 10
	}
	if c.Step == 0 {
		c.Step = 1
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Mode == "" {
		c.Mode = ModeShared
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	c.fill()
	var errs []error
	if len(c.Inputs) == 0 {
		errs = append(errs, errors.New("logreg: no input (Inputs)"))
	}
	if c.Features < 0 {
		errs = append(errs, fmt.Errorf("logreg: Features must not be negative, got %d", c.Features))
	}
	if c.Iterations < 1 {
		errs = append(errs, fmt.Errorf("logreg: Iterations must be at least 1, got %d", c.Iterations))
	}
	if !(c.Step > 0) || math.IsInf(c.Step, 0) {
		errs = append(errs, fmt.Errorf("logreg: Step must be a positive number, got %v", c.Step))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("logreg: Workers must be at least 1, got %d", c.Workers))
	}
	switch c.Mode {
	case ModeShared, ModeStages, ModeLocal:
	default:
		errs = append(errs, fmt.Errorf("logreg: unknown mode %q (known: %s, %s, %s)", c.Mode, ModeShared, ModeStages, ModeLocal))
	}
	if err := c.Fault.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Result is a run's outcome.
type Result struct {
	Mode     string
	Features int
	Points   int64
	Rounds   int
	// Weights are the final weights, the bias last.
	Weights []float64
	// Losses[r] is the mean log-loss with the weights of round r.
	Losses []float64
	// Validate, Job, RoundTimes and Timings are as in kmeans.Result.
	Validate   time.Duration
	Job        time.Duration
	RoundTimes []time.Duration
	Timings    []rounds.Timing
}

// PerRound returns the mean wall time of a round, as kmeans.Result's.
func (r Result) PerRound() time.Duration {
	if r.Rounds == 0 {
		return 0
	}
	if r.Mode == ModeShared {
		var loop time.Duration
		for _, t := range r.Timings {
			if t.Rounds > 0 {
				loop = max(loop, t.Loop*time.Duration(r.Rounds)/time.Duration(t.Rounds))
			}
		}
		return loop / time.Duration(r.Rounds)
	}
	var sum time.Duration
	for _, d := range r.RoundTimes {
		sum += d
	}
	return sum / time.Duration(len(r.RoundTimes))
}

// checkLabel rejects a label other than 0 and 1.
func checkLabel(_ int64, v []float64) error {
	if v[0] != 0 && v[0] != 1 {
		return fmt.Errorf("label %v is not 0 or 1", v[0])
	}
	return nil
}

// Run validates the input, then trains in cfg.Mode.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.fill()
	start := time.Now()
	files, err := dataset.Expand(ctx, cfg.Inputs, cfg.StoreOptions)
	if err != nil {
		return Result{}, fmt.Errorf("logreg: %w", err)
	}
	width := 0
	if cfg.Features > 0 {
		width = cfg.Features + 1
	}
	sum, err := dataset.Scan(ctx, files, cfg.StoreOptions, width, checkLabel)
	if err != nil {
		return Result{}, fmt.Errorf("logreg: %w", err)
	}
	if sum.Points == 0 {
		return Result{}, fmt.Errorf("logreg: %w: the input holds no points", dataset.ErrBadInput)
	}
	if sum.Width < 2 {
		return Result{}, fmt.Errorf("logreg: %w: lines hold a label and no features", dataset.ErrBadInput)
	}
	res := Result{Mode: cfg.Mode, Features: sum.Width - 1, Points: sum.Points, Validate: time.Since(start)}
	start = time.Now()
	names := dataset.Names(files)
	switch cfg.Mode {
	case ModeShared:
		err = runShared(ctx, cfg, names, &res)
	case ModeStages:
		err = runStages(ctx, cfg, names, &res)
	case ModeLocal:
		err = runLocal(ctx, cfg, files, &res)
	}
	res.Job = time.Since(start)
	return res, err
}

// softplus returns log(1 + e^z) without overflow.
func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// accumulate adds the log-loss gradient of the points (label then f
// features each, one after the other) at weights w (f weights then the
// bias) into grad (f+1 values) and returns their summed log-loss.
func accumulate(points, w []float64, f int, grad []float64) float64 {
	var loss float64
	for i := 0; i+f+1 <= len(points); i += f + 1 {
		y, x := points[i], points[i+1:i+1+f]
		z := dataset.Dot(w[:f], x) + w[f]
		loss += softplus(z) - y*z
		g := 1/(1+math.Exp(-z)) - y
		for j, v := range x {
			grad[j] += g * v
		}
		grad[f] += g
	}
	return loss
}

// step returns w − step·sum/n.
func step(w, sum []float64, n, step float64) []float64 {
	out := make([]float64, len(w))
	for i := range w {
		out[i] = w[i] - step*sum[i]/n
	}
	return out
}

// Weights is the shared model object. Its methods run on the DSO server.
type Weights struct {
	Features, Workers int
	Step              float64
	// Round is the number of steps taken; W the weights of round Round,
	// Previous those of the round before (see kmeans.Centroids).
	Round       int
	W, Previous []float64
	// Losses holds the mean log-loss of every completed round.
	Losses []float64
	// Pending collects the workers' gradient sums, summed losses and point
	// counts of round Round.
	Pending rounds.Contributions
}

// Init sets the object up for a job (zero weights), unless it already is.
func (w *Weights) Init(features, workers int, step float64) error {
	if w.Features != 0 {
		if w.Features != features || w.Workers != workers || w.Step != step {
			return fmt.Errorf("logreg: weights already set up for %d features, %d workers, step %v", w.Features, w.Workers, w.Step)
		}
		return nil
	}
	if features < 1 || workers < 1 || !(step > 0) {
		return fmt.Errorf("logreg: bad weights setup: %d features, %d workers, step %v", features, workers, step)
	}
	w.Features, w.Workers, w.Step = features, workers, step
	w.W = make([]float64, features+1)
	w.Pending.Reset(workers)
	return nil
}

// Get returns the weights of round round (the current one or the one
// before).
func (w *Weights) Get(round int) ([]float64, error) {
	switch {
	case w.Features == 0:
		return nil, errors.New("logreg: weights not set up (Init)")
	case round == w.Round:
		return w.W, nil
	case round == w.Round-1:
		return w.Previous, nil
	}
	return nil, fmt.Errorf("logreg: weights of round %d asked for, but the object is at round %d", round, w.Round)
}

// Partial is one worker's contribution to a round.
type Partial struct {
	Round, Worker int
	// Gradient is the sum of the log-loss gradients of the worker's points
	// (Features+1 values); Loss the sum of their log-losses; Points their
	// number.
	Gradient     []float64
	Loss, Points float64
}

// Merge adds a worker's sub-gradient to the current round, exactly once
// per worker (a duplicate or a contribution to a finished round returns
// false). With the last one, it takes the step: w ← w − Step·(Σ
// gradients)/(Σ points), the sums in worker order.
func (w *Weights) Merge(p Partial) (bool, error) {
	switch {
	case w.Features == 0:
		return false, errors.New("logreg: weights not set up (Init)")
	case p.Round < w.Round:
		return false, nil
	case p.Round > w.Round:
		return false, fmt.Errorf("logreg: worker %d merged round %d, but the object is at round %d", p.Worker, p.Round, w.Round)
	case len(p.Gradient) != w.Features+1:
		return false, fmt.Errorf("logreg: worker %d sent %d gradient values, want %d", p.Worker, len(p.Gradient), w.Features+1)
	}
	added, err := w.Pending.Add(p.Worker, append(slices.Clone(p.Gradient), p.Loss, p.Points))
	if err != nil || !added {
		return false, err
	}
	if w.Pending.Complete() {
		s := w.Pending.Sum()
		f := w.Features
		n := s[f+2]
		w.Previous = w.W
		w.W = step(w.W, s[:f+1], n, w.Step)
		w.Losses = append(w.Losses, s[f+1]/n)
		w.Round++
		w.Pending.Reset(w.Workers)
	}
	return true, nil
}

// History returns the mean log-loss of every completed round.
func (w *Weights) History() []float64 { return w.Losses }

// Clone copies w.
func (w *Weights) Clone() *Weights {
	out := *w
	out.W, out.Previous, out.Losses = slices.Clone(w.W), slices.Clone(w.Previous), slices.Clone(w.Losses)
	out.Pending = w.Pending.Clone()
	return &out
}

// RegisterTypes registers the shared object types of ModeShared (and
// package rounds') in reg.
func RegisterTypes(reg *state.Registry) {
	state.RegisterType[Weights](reg, TypeWeights)
	rounds.Register(reg)
}

type jobConfig struct {
	Features, Iterations int
	Fault                rounds.Fault
}

// worker is the body of a ModeShared worker.
func worker(ctx context.Context, it *gale.Iteration, lines []string) (err error) {
	loop := rounds.NewLoop(it, Name)
	defer func() {
		if ferr := loop.Finish(context.WithoutCancel(ctx)); err == nil {
			err = ferr
		}
	}()
	var cfg jobConfig
	if err := loop.DSOCall(func() error { return rounds.ReadConfig(ctx, it.DSO, Name, &cfg) }); err != nil {
		return err
	}
	f := cfg.Features
	points := make([]float64, 0, len(lines)*(f+1))
	for i, line := range lines {
		n := len(points)
		var perr error
		if points, perr = dataset.ParseLine(points, line); perr != nil || (len(points)-n != f+1 && len(points) != n) {
			return fmt.Errorf("logreg: worker %d: element %d of its partition (%.40q) no longer parses as a label and %d features (%v); did the input change after validation?",
				it.Worker, i, line, f, perr)
		}
	}
	weights := it.DSO.Object(TypeWeights, Name+"/weights")
	round, err := loop.Resume(ctx)
	if err != nil {
		return err
	}
	grad := make([]float64, f+1)
	for ; round < cfg.Iterations; round++ {
		var w []float64
		if err := loop.DSOCall(func() (err error) {
			w, err = state.Call[[]float64](ctx, weights, "Get", round)
			return err
		}); err != nil {
			return err
		}
		var loss float64
		loop.Compute(func() {
			clear(grad)
			loss = accumulate(points, w, f, grad)
		})
		if err := cfg.Fault.Check(it, round, rounds.BeforeMerge); err != nil {
			return err
		}
		if err := loop.DSOCall(func() error {
			_, err := state.Call[bool](ctx, weights, "Merge", Partial{Round: round, Worker: it.Worker, Gradient: grad,
				Loss: loss, Points: float64(len(points) / (f + 1))})
			return err
		}); err != nil {
			return err
		}
		if err := cfg.Fault.Check(it, round, rounds.AfterMerge); err != nil {
			return err
		}
		if err := loop.Sync(ctx, round, func() error { return cfg.Fault.Check(it, round, rounds.AfterBarrier) }); err != nil {
			return err
		}
	}
	return nil
}

// BuildShared adds ModeShared's job to p.
func BuildShared(p *gale.Pipeline, inputs []string, workers int) {
	gale.Iterate(gale.ReadText(p, inputs...), workers, worker)
}

func runShared(ctx context.Context, cfg Config, names []string, res *Result) error {
	reg := state.NewRegistry()
	RegisterTypes(reg)
	emb, err := rounds.StartEmbedded(ctx, reg)
	if err != nil {
		return err
	}
	defer emb.Close()
	if err := rounds.PublishConfig(ctx, emb.DSO, Name, jobConfig{Features: res.Features, Iterations: cfg.Iterations, Fault: cfg.Fault}); err != nil {
		return err
	}
	weights := emb.DSO.Object(TypeWeights, Name+"/weights")
	if err := weights.Invoke(ctx, "Init", res.Features, cfg.Workers, cfg.Step); err != nil {
		return err
	}
	p := gale.NewPipeline()
	BuildShared(p, names, cfg.Workers)
	opts := append(slices.Clone(cfg.RunOptions), gale.Workers(cfg.Workers), gale.WithDSO(emb.Servers, emb.Token),
		gale.StoreOptions(cfg.StoreOptions))
	if _, err := gale.Run(ctx, p, opts...); err != nil {
		return fmt.Errorf("logreg: %w", err)
	}
	n, err := emb.DSO.AtomicLong(Name + "/iteration").Get(ctx)
	if err != nil {
		return err
	}
	res.Rounds = int(n)
	if res.Weights, err = state.Call[[]float64](ctx, weights, "Get", res.Rounds); err != nil {
		return err
	}
	if res.Losses, err = state.Call[[]float64](ctx, weights, "History"); err != nil {
		return err
	}
	res.Timings, err = rounds.ReadStats(ctx, emb.DSO, Name)
	return err
}

// Model is a ModeStages round's parameter: the weights, shipped to the
// map tasks in the task descriptor.
type Model struct {
	Features int
	W        []float64
}

// gradLine emits, under key 0, a point's log-loss gradient followed by
// its log-loss and 1 (under key −1 if the line no longer parses).
func gradLine(m Model, line string, emit func(gale.KV[int32, []float64])) {
	x, err := dataset.ParseLine(make([]float64, 0, m.Features+1), line)
	switch {
	case err != nil || (len(x) != m.Features+1 && len(x) != 0):
		emit(gale.KV[int32, []float64]{Key: -1, Value: []float64{1}})
		return
	case len(x) == 0:
		return
	}
	out := make([]float64, m.Features+3)
	out[m.Features+1] = accumulate(x, m.W, m.Features, out)
	out[m.Features+2] = 1
	emit(gale.KV[int32, []float64]{Key: 0, Value: out})
}

// BuildStages adds one ModeStages round to p.
func BuildStages(p *gale.Pipeline, inputs []string, m Model) *gale.Collected[gale.KV[int32, []float64]] {
	g := gale.FlatMapWith(gale.ReadText(p, inputs...), gradLine, m)
	return gale.Collect(gale.CombinePerKey(g, dataset.VecSum{}))
}

func runStages(ctx context.Context, cfg Config, names []string, res *Result) error {
	f := res.Features
	w := make([]float64, f+1)
	opts := append(slices.Clone(cfg.RunOptions), gale.Workers(cfg.Workers), gale.StoreOptions(cfg.StoreOptions))
	for round := range cfg.Iterations {
		start := time.Now()
		p := gale.NewPipeline()
		out := BuildStages(p, names, Model{Features: f, W: w})
		if _, err := gale.Run(ctx, p, opts...); err != nil {
			return fmt.Errorf("logreg: round %d: %w", round, err)
		}
		var sum []float64
		for _, kv := range out.Values() {
			if kv.Key != 0 || len(kv.Value) != f+3 {
				return fmt.Errorf("logreg: round %d: lines no longer parse as a label and %d features; did the input change after validation?", round, f)
			}
			sum = kv.Value
		}
		if sum == nil {
			return fmt.Errorf("logreg: round %d: no gradient came back", round)
		}
		w = step(w, sum[:f+1], sum[f+2], cfg.Step)
		res.Losses = append(res.Losses, sum[f+1]/sum[f+2])
		res.RoundTimes = append(res.RoundTimes, time.Since(start))
		res.Rounds++
	}
	res.Weights = w
	return nil
}

func runLocal(ctx context.Context, cfg Config, files []dataset.File, res *Result) error {
	f := res.Features
	points, _, err := dataset.Load(ctx, files, cfg.StoreOptions, f+1)
	if err != nil {
		return fmt.Errorf("logreg: %w", err)
	}
	n := len(points) / (f + 1)
	workers := min(cfg.Workers, n)
	grads := make([][]float64, workers)
	losses := make([]float64, workers)
	w := make([]float64, f+1)
	for round := 0; round < cfg.Iterations; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				grads[i] = make([]float64, f+1)
				lo, hi := n*i/workers, n*(i+1)/workers
				losses[i] = accumulate(points[lo*(f+1):hi*(f+1)], w, f, grads[i])
			}()
		}
		wg.Wait()
		sum := make([]float64, f+1)
		var loss float64
		for i := range workers {
			for j, v := range grads[i] {
				sum[j] += v
			}
			loss += losses[i]
		}
		w = step(w, sum, float64(n), cfg.Step)
		res.Losses = append(res.Losses, loss/float64(n))
		res.RoundTimes = append(res.RoundTimes, time.Since(start))
		res.Rounds++
	}
	res.Weights = w
	return nil
}

// Register builds every pipeline of this package on p with placeholder
// inputs, registering their kernels (for worker binaries).
func Register(p *gale.Pipeline) {
	BuildShared(p, []string{"input"}, 1)
	BuildStages(p, []string{"input"}, Model{Features: 1, W: []float64{0, 0}})
}
