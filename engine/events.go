package engine

import (
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/planner"
)

// Monitor watches a job live: it receives every job event as one JSON
// object (the line Config.Events would get, without its newline), in the
// order the driver emits them. JobEvent is called from the driver loop and
// must return quickly; it may keep line, which the driver does not reuse.
// A dashboard (package ui) is one.
type Monitor interface {
	JobEvent(line []byte)
}

// PlanInfo describes a physical plan's shape for job events (the "plan"
// field of job_start) and the tools that draw it: its stages, what each
// fuses, and the shuffles between them.
type PlanInfo struct {
	Stages   []StageInfo   `json:"stages"`
	Shuffles []ShuffleInfo `json:"shuffles,omitempty"`
}

// StageInfo describes one stage of a plan.
type StageInfo struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Tasks is the number of tasks.
	Tasks int `json:"tasks"`
	// Role is "compute", or "sampling" for the pass that samples a sort's
	// keys.
	Role string `json:"role"`
	// Input names what the tasks read: a source's label, or a shuffle's.
	Input string `json:"input"`
	// Shuffle is the shuffle the stage reads, or -1 for a source.
	Shuffle int `json:"shuffle"`
	// Ops lists the fused operations in the order the stage applies them.
	Ops []OpInfo `json:"ops"`
	// Deps are the stages that must finish first.
	Deps []int `json:"deps,omitempty"`
}

// OpInfo is one fused operation of a stage.
type OpInfo struct {
	// Label is the transform's label, e.g. "FlatMap(main.words)".
	Label string `json:"label"`
	// Kind is "narrow", "flatten", "shuffle-write", "sink" or "sample".
	Kind string `json:"kind"`
	// Shuffle is the shuffle a shuffle-write feeds, else -1.
	Shuffle int `json:"shuffle"`
}

// ShuffleInfo describes one shuffle edge of a plan.
type ShuffleInfo struct {
	ID    int    `json:"id"`
	Label string `json:"label"`
	// Strategy is "data-shipping" or "glider".
	Strategy   string `json:"strategy"`
	Partitions int    `json:"partitions"`
	// Combined reports partial aggregates (a lifted combiner); Sort a
	// range-partitioned sort whose Samplers are the sampling stages.
	Combined  bool  `json:"combined,omitempty"`
	Sort      bool  `json:"sort,omitempty"`
	Samplers  []int `json:"samplers,omitempty"`
	Producers []int `json:"producers"`
	Consumer  int   `json:"consumer"`
}

var opKinds = map[planner.OpKind]string{planner.OpNarrow: "narrow", planner.OpFlatten: "flatten",
	planner.OpShuffleWrite: "shuffle-write", planner.OpSink: "sink", planner.OpSample: "sample"}

// DescribePlan returns the shape of p.
func DescribePlan(p *planner.Plan) PlanInfo {
	info := PlanInfo{Stages: make([]StageInfo, 0, len(p.Stages))}
	for _, st := range p.Stages {
		si := StageInfo{ID: st.ID, Name: stageLabel(p, st), Tasks: st.Tasks, Role: "compute", Shuffle: -1,
			Input: p.Logical.Nodes[st.Source].Label, Deps: append([]int(nil), st.Deps...), Ops: []OpInfo{}}
		if st.Role == planner.Sampling {
			si.Role = "sampling"
		}
		if st.Input == planner.FromShuffle {
			si.Shuffle = st.Shuffle
		}
		if st.GliderFilter {
			si.Ops = append(si.Ops, OpInfo{Label: p.Logical.Nodes[st.FilterNode].Label + " (in Glider)", Kind: "narrow", Shuffle: -1})
		}
		// Depth first from the roots: the order in which an element meets
		// the operations.
		var walk func(i int)
		walk = func(i int) {
			op := st.Ops[i]
			oi := OpInfo{Label: p.Logical.Nodes[op.Node].Label, Kind: opKinds[op.Kind], Shuffle: -1}
			if op.Kind == planner.OpShuffleWrite || op.Kind == planner.OpSample {
				oi.Shuffle = op.Shuffle
			}
			si.Ops = append(si.Ops, oi)
			for _, c := range op.Children {
				walk(c)
			}
		}
		for _, r := range st.Roots {
			walk(r)
		}
		info.Stages = append(info.Stages, si)
	}
	for _, sh := range p.Shuffles {
		info.Shuffles = append(info.Shuffles, ShuffleInfo{ID: sh.ID, Label: p.Logical.Nodes[sh.Node].Label,
			Strategy: sh.Strategy(), Partitions: sh.Partitions, Combined: sh.Combined, Sort: sh.Range,
			Samplers: append([]int(nil), sh.Samplers...), Producers: append([]int(nil), sh.Producers...), Consumer: sh.Consumer})
	}
	return info
}

// throttleWatch turns a Throttler's running count into "throttled" events:
// the driver checks it as each attempt returns, and an event reports how
// many throttled answers the backend retried since the previous one.
type throttleWatch struct {
	th         backends.Throttler
	base, seen int64
}

func newThrottleWatch(b backends.Backend) *throttleWatch {
	th, ok := b.(backends.Throttler)
	if !ok {
		return nil
	}
	return &throttleWatch{th: th, base: th.ThrottledRetries()}
}

// check returns the throttled answers since the last check and since the
// job started. Only the driver loop calls it.
func (w *throttleWatch) check() (delta, total int64) {
	if w == nil {
		return 0, 0
	}
	total = w.th.ThrottledRetries() - w.base
	delta, w.seen = total-w.seen, total
	return delta, total
}

// total returns the throttled answers since the job started.
func (w *throttleWatch) total() int64 {
	if w == nil {
		return 0
	}
	return w.th.ThrottledRetries() - w.base
}

// jobEndFields are job_end's totals: the report's figures, so that a job's
// events alone describe it.
func (r *Report) jobEndFields(fields map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fields["invocations"] = r.Invocations
	fields["billed_seconds"] = r.BilledSeconds
	fields["cost_usd"] = r.Cost
	fields["simulated_seconds"] = r.SimulatedSeconds
	fields["throttled"] = r.Throttled
	fields["shuffles"] = append([]ShuffleReport(nil), r.Shuffles...)
	if len(r.Outputs) > 0 {
		fields["outputs"] = append([]string(nil), r.Outputs...)
	}
	if len(r.Warnings) > 0 {
		fields["warnings"] = append([]string(nil), r.Warnings...)
	}
}
