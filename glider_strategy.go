package gale

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// Shuffle strategies.
const (
	// DataShipping writes each map task's partitions to one object in
	// object storage; reduce tasks read their ranges back (the default).
	DataShipping = "data-shipping"
	// GliderShuffle streams lifted combines into Glider merge actions and
	// sorts into Glider sort actions, which combine or sort the data as it
	// arrives; reduce tasks read the actions' results. A sort feeding only
	// a WriteText or WriteRecords sink has its actions write the part
	// files themselves, and a FilterLines over text stored in the job's
	// Glider namespace runs in Glider filter actions next to the data.
	GliderShuffle = "glider"
	// AutoShuffle lets the planner choose per shuffle: glider for sorts
	// and for unlifted combines merge actions can fold (every byte they
	// read crosses the shuffle), data shipping for lifted combines (only
	// partial aggregates cross, too little for Glider to save) and for
	// shuffles Glider cannot take, and data shipping throughout when no
	// Glider cluster is reachable (no UseGlider, and a backend other than
	// the in-process or process one, whose workers cannot reach an
	// embedded cluster). `gale plan` and Explain give each shuffle's
	// reason; the report names each shuffle's strategy.
	AutoShuffle = "auto"
)

// ShuffleStrategy selects how data crosses shuffles: DataShipping (the
// default) or GliderShuffle. With GliderShuffle, Run starts an embedded
// Glider cluster for the job (its active servers run in this process, with
// the job's combiners and line predicates registered) and removes
// everything the job put there when it ends — unless UseGlider names a
// running cluster. Shuffles Glider cannot take (GroupByKey, unlifted
// combines, Iterate) ship data either way; the plan and the report name
// each shuffle's strategy.
func ShuffleStrategy(s string) RunOption { return func(c *runConfig) { c.shuffle = s } }

// gliderUse is a running Glider cluster given with UseGlider.
type gliderUse struct{ meta, namespace, token string }

// UseGlider makes the glider shuffle strategy use a running Glider cluster
// — its metadata server's address, a namespace and the namespace's token —
// instead of an embedded one started for the job. The job keeps its
// actions and files under /JOB-ID in that namespace and deletes them when
// it ends. It is also what lets a FilterLines over text stored in that
// namespace (glider://META-ADDR/... with the same glider.namespace store
// option) run in Glider filter actions.
//
// The active servers must have the job's functions linked into their
// binary and registered by name, as workers do: the combine functions of
// its merged combines and the line predicates of its filters. An active
// server run by this program gets them with RegisterGliderFunctions;
// `gale glider serve` knows only the built-in ones (int64 sum, min and
// max, substring, prefix, regexp).
func UseGlider(meta, namespace, token string) RunOption {
	return func(c *runConfig) { c.glider = &gliderUse{meta: meta, namespace: namespace, token: token} }
}

// linePredicates is the name registry of line predicates (FilterLines);
// it starts with Glider's built-ins.
var linePredicates = glider.DefaultRegistry()

// RegisterLinePredicate registers a line predicate for FilterLines under
// name: factory builds the predicate from FilterLines's argument. Register
// predicates at start-up (in an init function), in the program that
// builds the pipeline — its workers and its embedded Glider active servers
// then know them; an active server of another binary must register the
// same name (glider.Registry.RegisterPredicate). Registering a name twice,
// or one of the built-ins (substring, prefix, regexp), panics.
func RegisterLinePredicate(name string, factory func(arg string) (func(line []byte) bool, error)) {
	linePredicates.RegisterPredicate(name, factory)
}

// FilterLines keeps the lines for which the line predicate registered
// under predicate (RegisterLinePredicate, or a built-in: "substring",
// "prefix", "regexp") built from arg returns true. It is Filter by a
// named predicate: with the glider shuffle strategy, a FilterLines that
// directly follows a ReadText of text stored in the job's Glider namespace
// (see UseGlider) runs in Glider filter actions next to the data, so
// workers ingest only the matching lines. Elsewhere it runs in workers.
func FilterLines(c Collection[string], predicate, arg string) Collection[string] {
	if c.p == nil {
		panic("gale: FilterLines of a zero Collection")
	}
	loc := callerLoc(1)
	fn, err := linePredicates.Predicate(predicate, arg)
	if err != nil {
		c.p.fail(loc, "FilterLines: %v (register predicates with gale.RegisterLinePredicate)", err)
		fn = func([]byte) bool { return false }
	}
	k := &lineFilterKernel{predicate: predicate, arg: arg, fn: fn}
	kname := "FilterLines:" + predicate + ":" + strconv.Quote(arg)
	c.p.reg.Put(kname, k)
	return addNode[string](c.p, &node{Node: planner.Node{Kind: planner.Narrow,
		Label: fmt.Sprintf("FilterLines(%s %q)", predicate, arg), Kernel: kname, Inputs: []int{c.id}, Loc: loc}})
}

// lineFilterKernel is FilterLines's narrow kernel; the planner may lower
// it onto Glider filter actions by its predicate's name.
type lineFilterKernel struct {
	predicate, arg string
	fn             func([]byte) bool
}

func (k *lineFilterKernel) Build(next any) (any, error) {
	emit, ok := next.(func(string))
	if !ok {
		return nil, fmt.Errorf("gale: FilterLines output feeds %T", next)
	}
	fn := k.fn
	return func(s string) {
		// The predicate reads the line's bytes in place.
		if fn(unsafe.Slice(unsafe.StringData(s), len(s))) {
			emit(s)
		}
	}, nil
}

// RegisterGliderFunctions registers in reg, for an active server run by
// this program (glider.ActiveConfig.Registry), the functions the
// pipeline's Glider actions name: the combine function of each merged
// combine (by its kernel name) and every line predicate. Names already in
// reg are skipped, so one registry can serve several pipelines.
func RegisterGliderFunctions(p *Pipeline, reg *glider.Registry) error {
	for _, n := range p.nodes {
		if n.Kind != planner.Combine || reg.HasCombiner(n.Kernel) || gliderCombineName(p, n.Kernel) != n.Kernel {
			continue
		}
		m, err := kernel.Lookup[kernel.Merger](p.reg, n.Kernel)
		if err != nil {
			continue // not mergeable: such a combine never reaches Glider
		}
		reg.RegisterCombiner(n.Kernel, m.MergeEncoded)
	}
	for name, f := range linePredicates.Predicates() {
		if !reg.HasPredicate(name) {
			reg.RegisterPredicate(name, f)
		}
	}
	return nil
}

// gliderNative is implemented by combine kernels whose encoded
// accumulators a built-in Glider combiner folds natively: int64 counts and
// sums (zig-zag varints, Gale's int64 encoding) are glider.CombineInt64Sum,
// which merge actions fold without decoding and re-encoding every value —
// and which every active server knows, `gale glider serve` included.
type gliderNative interface {
	gliderCombiner() string
}

func (countKernel[T]) gliderCombiner() string { return glider.CombineInt64Sum }

func (k *combineKernel[K, V, A, O]) gliderCombiner() string {
	var acc A
	switch any(acc).(type) {
	case int64, int:
	default:
		return ""
	}
	idc, ok := any(k.c).(interface{ combinerID() (string, error) })
	if !ok {
		return ""
	}
	// Gale's own count and sum combiners: their accumulators are the
	// int64 (or int) count or sum itself.
	switch id, _ := idc.combinerID(); {
	case strings.HasPrefix(id, "count:"), strings.HasPrefix(id, "sum:"):
		return glider.CombineInt64Sum
	}
	return ""
}

// gliderValuesFold reports whether the kernel's values are accumulators
// too (sums), so merge actions can fold values streamed unlifted.
func (k *combineKernel[K, V, A, O]) gliderValuesFold() bool {
	idc, ok := any(k.c).(interface{ combinerID() (string, error) })
	if !ok || k.gliderCombiner() == "" {
		return false
	}
	id, _ := idc.combinerID()
	return strings.HasPrefix(id, "sum:")
}

// gliderCombineName is the name of the combine function merge actions use
// for a combine kernel: a built-in one where it folds the same encoding,
// else the kernel's own name (registered by startGlider or
// RegisterGliderFunctions).
func gliderCombineName(p *Pipeline, kname string) string {
	if k, err := kernel.Lookup[gliderNative](p.reg, kname); err == nil {
		if n := k.gliderCombiner(); n != "" {
			return n
		}
	}
	return kname
}

// gliderSinker is implemented by sort kernels whose sorted values, each
// followed by a terminator, can be a sink's part file.
type gliderSinker interface {
	gliderSinkTerminator(format string) (string, bool)
}

// gliderPlanOptions fills the planner's Glider options of a job run with
// the glider strategy: the sorts whose actions can write their sink's
// part files, and the FilterLines over text in the job's Glider namespace
// (UseGlider) to lower onto filter actions.
func gliderPlanOptions(ctx context.Context, p *Pipeline, cfg runConfig, job *engine.Job, o *planner.Options) {
	consumers := map[int][]int{}
	for _, n := range p.nodes {
		for _, in := range n.Inputs {
			consumers[in] = append(consumers[in], n.ID)
		}
	}
	o.GliderSortSinks = map[int]bool{}
	o.GliderValueKeys = map[int]int{}
	o.GliderUnlifted = map[int]bool{}
	for _, n := range p.nodes {
		if n.Kind == planner.Combine {
			if k, err := kernel.Lookup[interface{ gliderValuesFold() bool }](p.reg, n.Kernel); err == nil && k.gliderValuesFold() {
				o.GliderUnlifted[n.ID] = true
			}
		}
		if n.Kind != planner.Sort {
			continue
		}
		if k, err := kernel.Lookup[interface{ gliderValueKey() (int, bool) }](p.reg, n.Kernel); err == nil {
			if prefix, ok := k.gliderValueKey(); ok {
				o.GliderValueKeys[n.ID] = prefix
			}
		}
		if len(consumers[n.ID]) != 1 {
			continue
		}
		sink, ok := job.Sinks[consumers[n.ID][0]]
		if !ok {
			continue
		}
		if k, err := kernel.Lookup[gliderSinker](p.reg, n.Kernel); err == nil {
			if _, ok := k.gliderSinkTerminator(sink.Format); ok {
				o.GliderSortSinks[n.ID] = true
			}
		}
	}
	if cfg.glider == nil {
		return
	}
	job.Glider = &engine.GliderConfig{Meta: cfg.glider.meta, Namespace: cfg.glider.namespace, Token: cfg.glider.token,
		Combiners: map[string]string{}}
	o.GliderFilters = map[int]bool{}
	job.GliderFilters = map[int]engine.GliderFilter{}
	for _, n := range p.nodes {
		if n.Kind != planner.Narrow || len(n.Inputs) != 1 {
			continue
		}
		lf, err := kernel.Lookup[*lineFilterKernel](p.reg, n.Kernel)
		if err != nil {
			continue
		}
		src := p.nodes[n.Inputs[0]]
		if src.text == nil || src.text.recordSize != 0 || src.text.named || src.text.fileKernel != "" || !inGlider(ctx, cfg, job.Inputs[src.ID]) {
			continue
		}
		o.GliderFilters[n.ID] = true
		job.GliderFilters[n.ID] = engine.GliderFilter{Predicate: lf.predicate, Arg: lf.arg}
	}
}

// inGlider reports whether every input is a file of the UseGlider
// cluster's namespace.
func inGlider(ctx context.Context, cfg runConfig, ins []engine.InputSpec) bool {
	if len(ins) == 0 {
		return false
	}
	for _, in := range ins {
		if in.Kind != engine.InputText {
			return false
		}
		st, err := OpenStore(ctx, in.URL, cfg.storeOptions)
		if err != nil {
			return false
		}
		gl, ok := st.(interface {
			Location() (meta, namespace, root string)
		})
		if !ok {
			return false
		}
		meta, ns, _ := gl.Location()
		if meta != cfg.glider.meta || ns != cfg.glider.namespace {
			return false
		}
	}
	return true
}

// startGlider readies the Glider cluster of a job whose plan has glider
// shuffles: a running one given with UseGlider (the combine functions are
// then the active servers' business), or an embedded cluster started for
// the job, with a combine function for each merge action and the line
// predicates registered.
func startGlider(ctx context.Context, p *Pipeline, cfg runConfig, job *engine.Job) (stop func() error, err error) {
	combiners := map[string]string{}
	for _, sh := range job.Plan.Shuffles {
		if sh.Glider && !sh.Range {
			combiners[sh.Kernel] = gliderCombineName(p, sh.Kernel)
		}
	}
	if cfg.glider != nil {
		job.Glider = &engine.GliderConfig{Meta: cfg.glider.meta, Namespace: cfg.glider.namespace, Token: cfg.glider.token,
			Combiners: combiners}
		return func() error { return nil }, nil
	}
	reg := glider.DefaultRegistry()
	for name, fn := range combiners {
		if fn != name {
			continue // a built-in combiner
		}
		m, err := kernel.Lookup[kernel.Merger](p.reg, name)
		if err != nil {
			for _, sh := range job.Plan.Shuffles {
				if sh.Kernel == name {
					return nil, fmt.Errorf("gale: %s cannot merge in Glider: %w", job.Plan.Logical.Nodes[sh.Node].Label, err)
				}
			}
			return nil, err
		}
		reg.RegisterCombiner(name, m.MergeEncoded)
	}
	for name, f := range linePredicates.Predicates() {
		if !reg.HasPredicate(name) {
			reg.RegisterPredicate(name, f)
		}
	}
	cl, err := glider.NewCluster(glider.ClusterConfig{Registry: reg})
	if err != nil {
		return nil, err
	}
	if err := cl.Start(ctx); err != nil {
		return nil, fmt.Errorf("gale: starting the embedded Glider cluster: %w", err)
	}
	ns := "gale-" + job.ID
	job.Glider = &engine.GliderConfig{Meta: cl.MetaAddr(), Namespace: ns, Token: cl.Token(ns), Combiners: combiners}
	return cl.Close, nil
}

// gliderReachable reports whether the job's workers can reach a Glider
// cluster — one given with UseGlider, or an embedded one started in this
// process, which workers in this process or its child processes reach on
// loopback — and if not, why (for AutoShuffle's reasons).
func gliderReachable(cfg runConfig) (bool, string) {
	if cfg.glider != nil || cfg.backend == nil || cfg.backendName == "local" || cfg.backendName == "process" {
		return true, ""
	}
	return false, fmt.Sprintf("no Glider cluster given (UseGlider) and the %s backend's workers cannot reach one embedded in this process", cfg.backendName)
}
