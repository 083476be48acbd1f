package stages

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// URNs of the runner-side transforms the SDK's exec package understands.
const (
	urnDataSource        = "beam:runner:source:v1"
	urnDataSink          = "beam:runner:sink:v1"
	urnPrecombine        = "beam:transform:combine_per_key_precombine:v1"
	urnMergeAccumulators = "beam:transform:combine_per_key_merge_accumulators:v1"
	urnExtractOutputs    = "beam:transform:combine_per_key_extract_outputs:v1"
	urnPairRestriction   = "beam:transform:sdf_pair_with_restriction:v1"
	urnSplitAndSize      = "beam:transform:sdf_split_and_size_restrictions:v1"
	urnProcessSized      = "beam:transform:sdf_process_sized_element_and_restrictions:v1"
	urnTestStream        = "beam:transform:teststream:v1"
	urnWindowedValue     = "beam:coder:windowed_value:v1"
	urnKVCoder           = "beam:coder:kv:v1"
	urnIterableCoder     = "beam:coder:iterable:v1"
	urnDoubleCoder       = "beam:coder:double:v1"
)

// Port is the data and state API "address" stages carry: Gale workers run
// the descriptors in-process, so it only has to be non-empty.
const Port = "gale"

// EdgeKind says how an edge moves elements from its producers to its
// consumer.
type EdgeKind int

// Edge kinds.
const (
	// Group edges hash-partition KV elements by encoded key; the consumer
	// groups each partition by key and window (GroupByKey).
	Group EdgeKind = iota + 1
	// Redistribute edges spread elements round-robin over partitions
	// (Flatten, cuts before side-input consumers and splittable DoFns).
	Redistribute
	// Side edges keep every element in one partition, read whole by each
	// task of the stages that use it as a side input.
	Side
	// Keyed edges hash-partition KV elements by encoded key, like Group
	// edges; the consumer receives the elements themselves, all those of
	// one key together (the input of a stateful ParDo).
	Keyed
)

func (k EdgeKind) String() string {
	switch k {
	case Group:
		return "group"
	case Redistribute:
		return "redistribute"
	case Side:
		return "side"
	case Keyed:
		return "keyed"
	}
	return fmt.Sprintf("edge-kind(%d)", int(k))
}

// Edge carries one PCollection (or, for a Flatten, the union of several)
// between stages.
type Edge struct {
	ID   int
	Kind EdgeKind
	// Label names the edge in reports ("GroupByKey stats.Count/...").
	Label string
	// Partitions is the number of partitions: the consumer's task count,
	// or 1 for side edges.
	Partitions int
	// Producers are the stages that write the edge; Consumer reads it as
	// its main input (-1 for side edges).
	Producers []int
	Consumer  int
	// Group edges only: Merging groups each key's values by merged
	// windows (sessions): the records carry each value's window and the
	// consumer merges them; Timestamps makes the records carry each
	// value's timestamp, which OutputTime (the windowing strategy's
	// timestamp combiner) needs unless it is the end of the window.
	Merging    bool
	Timestamps bool
	OutputTime pipepb.OutputTime_Enum
	// Replay, on group edges whose windowing strategy has a trigger other
	// than the default or whose producer replays a TestStream, makes the
	// consumer fire panes as the trigger and the watermark say
	// (teststream.go); nil groups each window once, at its end.
	Replay *Replay
}

// Input is what a stage's tasks read.
type Input struct {
	// Impulse: the single empty element of a Beam Impulse.
	Impulse bool
	// TestStream is the payload (pipepb.TestStreamPayload) of the
	// TestStream the stage replays as its input (teststream.go).
	TestStream []byte
	// Edge is the edge read otherwise, one partition per task.
	Edge int
	// Transform is the DataSource transform fed with the input.
	Transform string
}

// Root reports whether the stage reads no edge: an Impulse or a
// TestStream.
func (in Input) Root() bool { return in.Impulse || in.TestStream != nil }

// Output is one DataSink of a stage and the edge it writes.
type Output struct {
	Transform string
	Edge      int
	// Coder is the windowed-value coder of the elements written, an ID in
	// the descriptor's coders.
	Coder string
}

// SideInput is one side input of a transform of the stage.
type SideInput struct {
	// Transform and Local name the ParDo and its input ("i1").
	Transform string
	Local     string
	Edge      int
	// Multimap reports the multimap access pattern (else iterable).
	Multimap bool
	// Coder is the windowed-value coder of the side PCollection, an ID in
	// the descriptor's coders.
	Coder string
}

// Stage is a set of fused transforms run by identical tasks.
type Stage struct {
	ID   int
	Name string
	// Tasks is the number of tasks: 1 for an Impulse, else the input
	// edge's partitions.
	Tasks int
	// Deps are the stages that must finish first.
	Deps       []int
	Descriptor *fnpb.ProcessBundleDescriptor
	Input      Input
	Outputs    []Output
	Sides      []SideInput
	// Labels are the unique names of the transforms the stage fuses, in
	// order (its DataSinks left out), for reports and the dashboard.
	Labels []string
	// transforms are the stage's leaf transforms in order.
	transforms []string
	sourcePC   string
}

// Plan is a Beam pipeline compiled into stages.
type Plan struct {
	Stages []*Stage
	Edges  []*Edge
}

// Options steers Build.
type Options struct {
	// Partitions is the partition count of every group and redistribute
	// edge, so the task count of the stages that read them. Default 1.
	Partitions int
}

// ErrUnsupported is wrapped by Check's error.
var ErrUnsupported = errors.New("beam pipeline uses features Gale does not run")

// Build compiles pipeline p. It calls Check first.
func Build(p *pipepb.Pipeline, opt Options) (*Plan, error) {
	if err := Check(p); err != nil {
		return nil, err
	}
	if opt.Partitions <= 0 {
		opt.Partitions = 1
	}
	b := &builder{p: p, opt: opt, comps: proto.Clone(p.GetComponents()).(*pipepb.Components),
		stageOf: map[string]int{}, sideEdge: map[string]int{}, plan: &Plan{}}
	leaves, err := b.leaves()
	if err != nil {
		return nil, err
	}
	for _, id := range leaves {
		if err := b.add(id); err != nil {
			return nil, err
		}
	}
	for _, st := range b.plan.Stages {
		if err := b.descriptor(st); err != nil {
			return nil, err
		}
	}
	return b.plan, nil
}

type builder struct {
	p     *pipepb.Pipeline
	opt   Options
	comps *pipepb.Components
	plan  *Plan
	// stageOf maps a PCollection to the stage that produces it.
	stageOf map[string]int
	// sideEdge maps a PCollection to the side edge that materializes it.
	sideEdge map[string]int
	// cut marks transforms that start a stage of their own (the process
	// step of a splittable DoFn).
	cut   map[string]bool
	nextN int
}

func (b *builder) newID(prefix string) string {
	b.nextN++
	return fmt.Sprintf("gale%d_%s", b.nextN, prefix)
}

// leaves returns the leaf transforms to run in a topological order, with
// lifted combines and expanded splittable DoFns.
func (b *builder) leaves() ([]string, error) {
	b.cut = map[string]bool{}
	var out []string
	var walk func(id string) error
	walk = func(id string) error {
		t := b.comps.GetTransforms()[id]
		if t == nil {
			return fmt.Errorf("stages: pipeline names transform %q but does not define it", id)
		}
		switch {
		case t.GetSpec().GetUrn() == graphx.URNReshuffle:
			from, to, err := reshuffleEnds(b.comps, t)
			if err != nil {
				return err
			}
			leaf := id + "/gale_reshuffle"
			b.comps.Transforms[leaf] = &pipepb.PTransform{UniqueName: t.GetUniqueName(), Spec: &pipepb.FunctionSpec{Urn: graphx.URNReshuffle},
				Inputs: map[string]string{"i0": from}, Outputs: map[string]string{"i0": to}}
			out = append(out, leaf)
			return nil
		case t.GetSpec().GetUrn() == graphx.URNCombinePerKey && !b.unliftable(t):
			ids, err := b.liftCombine(id, t)
			if err != nil {
				return err
			}
			out = append(out, ids...)
			return nil
		case len(t.GetSubtransforms()) > 0:
			for _, s := range t.GetSubtransforms() {
				if err := walk(s); err != nil {
					return err
				}
			}
			return nil
		case t.GetSpec().GetUrn() == graphx.URNParDo:
			var pardo pipepb.ParDoPayload
			if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err != nil {
				return fmt.Errorf("stages: transform %s: bad ParDo payload: %w", t.GetUniqueName(), err)
			}
			if pardo.GetRestrictionCoderId() != "" {
				out = append(out, b.expandSDF(id, t, &pardo)...)
				return nil
			}
		}
		out = append(out, id)
		return nil
	}
	for _, id := range b.p.GetRootTransformIds() {
		if err := walk(id); err != nil {
			return nil, err
		}
	}
	return b.topo(out)
}

// topo orders leaves so every transform follows the producers of its
// inputs, keeping the pipeline's order where it already does.
func (b *builder) topo(ids []string) ([]string, error) {
	producer := map[string]string{}
	for _, id := range ids {
		for _, pc := range b.comps.Transforms[id].GetOutputs() {
			producer[pc] = id
		}
	}
	done := map[string]bool{}
	var out []string
	for len(out) < len(ids) {
		progress := false
		for _, id := range ids {
			if done[id] {
				continue
			}
			ready := true
			for _, pc := range b.comps.Transforms[id].GetInputs() {
				if p, ok := producer[pc]; ok && !done[p] {
					ready = false
					break
				}
			}
			if ready {
				done[id] = true
				out = append(out, id)
				progress = true
			}
		}
		if !progress {
			return nil, errors.New("stages: the pipeline's transforms form a cycle")
		}
	}
	return out, nil
}

// addCoder adds a coder and returns its ID.
func (b *builder) addCoder(urn string, components ...string) string {
	id := b.newID("coder")
	b.comps.Coders[id] = &pipepb.Coder{Spec: &pipepb.FunctionSpec{Urn: urn}, ComponentCoderIds: components}
	return id
}

// addPC adds a PCollection like model with another coder.
func (b *builder) addPC(model *pipepb.PCollection, coderID string) string {
	id := b.newID("pc")
	b.comps.Pcollections[id] = &pipepb.PCollection{UniqueName: id, CoderId: coderID,
		IsBounded: model.GetIsBounded(), WindowingStrategyId: model.GetWindowingStrategyId()}
	return id
}

func onlyValue(m map[string]string) string {
	for _, v := range m {
		return v
	}
	return ""
}

// liftCombine replaces a CombinePerKey composite by precombine, group,
// merge and extract: the combiner runs before the shuffle on each task's
// elements and after it on the partial accumulators.
func (b *builder) liftCombine(id string, t *pipepb.PTransform) ([]string, error) {
	var cmb pipepb.CombinePayload
	if err := proto.Unmarshal(t.GetSpec().GetPayload(), &cmb); err != nil {
		return nil, fmt.Errorf("stages: transform %s: bad Combine payload: %w", t.GetUniqueName(), err)
	}
	inPC := onlyValue(t.GetInputs())
	outPC := onlyValue(t.GetOutputs())
	in := b.comps.Pcollections[inPC]
	kv := b.comps.Coders[in.GetCoderId()]
	if kv.GetSpec().GetUrn() != urnKVCoder || len(kv.GetComponentCoderIds()) != 2 {
		return nil, fmt.Errorf("stages: transform %s combines a PCollection whose coder is not a KV coder", t.GetUniqueName())
	}
	keyC := kv.GetComponentCoderIds()[0]
	accKV := b.addCoder(urnKVCoder, keyC, cmb.GetAccumulatorCoderId())
	accIter := b.addCoder(urnIterableCoder, cmb.GetAccumulatorCoderId())
	groupedKV := b.addCoder(urnKVCoder, keyC, accIter)
	pre := b.addPC(in, accKV)
	grouped := b.addPC(in, groupedKV)
	merged := b.addPC(in, accKV)
	spec := func(urn string) *pipepb.FunctionSpec {
		return &pipepb.FunctionSpec{Urn: urn, Payload: t.GetSpec().GetPayload()}
	}
	name := t.GetUniqueName()
	ids := []string{id + "/gale_precombine", id + "/gale_group", id + "/gale_merge", id + "/gale_extract"}
	b.comps.Transforms[ids[0]] = &pipepb.PTransform{UniqueName: name + "/Precombine", Spec: spec(urnPrecombine),
		Inputs: map[string]string{"i0": inPC}, Outputs: map[string]string{"i0": pre}, EnvironmentId: t.GetEnvironmentId()}
	b.comps.Transforms[ids[1]] = &pipepb.PTransform{UniqueName: name + "/Group", Spec: &pipepb.FunctionSpec{Urn: graphx.URNGBK},
		Inputs: map[string]string{"i0": pre}, Outputs: map[string]string{"i0": grouped}}
	b.comps.Transforms[ids[2]] = &pipepb.PTransform{UniqueName: name + "/Merge", Spec: spec(urnMergeAccumulators),
		Inputs: map[string]string{"i0": grouped}, Outputs: map[string]string{"i0": merged}, EnvironmentId: t.GetEnvironmentId()}
	b.comps.Transforms[ids[3]] = &pipepb.PTransform{UniqueName: name + "/Extract", Spec: spec(urnExtractOutputs),
		Inputs: map[string]string{"i0": merged}, Outputs: map[string]string{"i0": outPC}, EnvironmentId: t.GetEnvironmentId()}
	return ids, nil
}

// expandSDF replaces a splittable ParDo by its pair, split-and-size and
// process steps; the process step starts a stage of its own so the split
// restrictions spread over tasks.
func (b *builder) expandSDF(id string, t *pipepb.PTransform, pardo *pipepb.ParDoPayload) []string {
	var mainLocal string
	for local := range t.GetInputs() {
		if _, side := pardo.GetSideInputs()[local]; !side {
			mainLocal = local
		}
	}
	inPC := t.GetInputs()[mainLocal]
	in := b.comps.Pcollections[inPC]
	pairC := b.addCoder(urnKVCoder, in.GetCoderId(), pardo.GetRestrictionCoderId())
	doubleC := b.addCoder(urnDoubleCoder)
	sizedC := b.addCoder(urnKVCoder, pairC, doubleC)
	paired := b.addPC(in, pairC)
	sized := b.addPC(in, sizedC)
	spec := func(urn string) *pipepb.FunctionSpec {
		return &pipepb.FunctionSpec{Urn: urn, Payload: t.GetSpec().GetPayload()}
	}
	name := t.GetUniqueName()
	ids := []string{id + "/gale_pair", id + "/gale_split", id + "/gale_process"}
	b.comps.Transforms[ids[0]] = &pipepb.PTransform{UniqueName: name + "/PairWithRestriction", Spec: spec(urnPairRestriction),
		Inputs: map[string]string{"i0": inPC}, Outputs: map[string]string{"i0": paired}, EnvironmentId: t.GetEnvironmentId()}
	b.comps.Transforms[ids[1]] = &pipepb.PTransform{UniqueName: name + "/SplitAndSize", Spec: spec(urnSplitAndSize),
		Inputs: map[string]string{"i0": paired}, Outputs: map[string]string{"i0": sized}, EnvironmentId: t.GetEnvironmentId()}
	inputs := map[string]string{}
	for local, pc := range t.GetInputs() {
		inputs[local] = pc
	}
	inputs[mainLocal] = sized
	b.comps.Transforms[ids[2]] = &pipepb.PTransform{UniqueName: name + "/Process", Spec: spec(urnProcessSized),
		Inputs: inputs, Outputs: t.GetOutputs(), EnvironmentId: t.GetEnvironmentId()}
	b.cut[ids[2]] = true
	return ids
}

// wvCoder returns the ID of the windowed-value coder of a PCollection.
func (b *builder) wvCoder(pcID string) string {
	pc := b.comps.Pcollections[pcID]
	ws := b.comps.WindowingStrategies[pc.GetWindowingStrategyId()]
	key := "gale_wv_" + pc.GetCoderId() + "_" + ws.GetWindowCoderId()
	if _, ok := b.comps.Coders[key]; !ok {
		b.comps.Coders[key] = &pipepb.Coder{Spec: &pipepb.FunctionSpec{Urn: urnWindowedValue},
			ComponentCoderIds: []string{pc.GetCoderId(), ws.GetWindowCoderId()}}
	}
	return key
}

func (b *builder) newStage(name string, in Input, sourcePC string, deps []int) *Stage {
	st := &Stage{ID: len(b.plan.Stages), Name: name, Input: in, sourcePC: sourcePC, Deps: dedup(deps), Tasks: 1}
	st.Input.Transform = fmt.Sprintf("gale_source_s%d", st.ID)
	if !in.Root() {
		e := b.plan.Edges[in.Edge]
		e.Consumer = st.ID
		st.Tasks = e.Partitions
	}
	b.plan.Stages = append(b.plan.Stages, st)
	b.stageOf[sourcePC] = st.ID
	return st
}

func (b *builder) newEdge(kind EdgeKind, label string) *Edge {
	e := &Edge{ID: len(b.plan.Edges), Kind: kind, Label: label, Partitions: b.opt.Partitions, Consumer: -1}
	if kind == Side {
		e.Partitions = 1
	}
	b.plan.Edges = append(b.plan.Edges, e)
	return e
}

// materialize makes the stage that produces pc write it into edge e.
func (b *builder) materialize(pc string, e *Edge) {
	st := b.plan.Stages[b.stageOf[pc]]
	sink := fmt.Sprintf("gale_sink_s%d_e%d_%s", st.ID, e.ID, pc)
	st.Outputs = append(st.Outputs, Output{Transform: sink, Edge: e.ID, Coder: b.wvCoder(pc)})
	b.comps.Transforms[sink] = &pipepb.PTransform{UniqueName: sink, Spec: &pipepb.FunctionSpec{Urn: urnDataSink},
		Inputs: map[string]string{"i0": pc}}
	e.Producers = dedup(append(e.Producers, st.ID))
}

func dedup(xs []int) []int {
	sort.Ints(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// isStateful reports whether t is a ParDo with user state or timers,
// whose input must be partitioned by key.
func isStateful(t *pipepb.PTransform) bool {
	if t.GetSpec().GetUrn() != graphx.URNParDo {
		return false
	}
	var pardo pipepb.ParDoPayload
	if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err != nil {
		return false
	}
	return len(pardo.GetStateSpecs()) > 0 || len(pardo.GetTimerFamilySpecs()) > 0
}

// sideInputs returns the local IDs of a ParDo's side inputs and their
// access patterns (true for multimap).
func sideInputs(t *pipepb.PTransform) map[string]bool {
	switch t.GetSpec().GetUrn() {
	case graphx.URNParDo, urnProcessSized:
	default:
		return nil
	}
	var pardo pipepb.ParDoPayload
	if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err != nil {
		return nil
	}
	out := map[string]bool{}
	for local, si := range pardo.GetSideInputs() {
		out[local] = si.GetAccessPattern().GetUrn() == graphx.URNMultimapSideInput
	}
	return out
}

func (b *builder) add(id string) error {
	t := b.comps.Transforms[id]
	name := t.GetUniqueName()
	switch t.GetSpec().GetUrn() {
	case graphx.URNImpulse:
		b.newStage(name, Input{Impulse: true}, onlyValue(t.GetOutputs()), nil)
		return nil
	case urnTestStream:
		b.newStage(name, Input{TestStream: t.GetSpec().GetPayload()}, onlyValue(t.GetOutputs()), nil)
		return nil
	case graphx.URNGBK:
		e := b.newEdge(Group, "GroupByKey "+name)
		in := onlyValue(t.GetInputs())
		ws := b.comps.GetWindowingStrategies()[b.comps.GetPcollections()[in].GetWindowingStrategyId()]
		e.Merging = ws.GetMergeStatus() == pipepb.MergeStatus_NEEDS_MERGE
		e.OutputTime = ws.GetOutputTime()
		e.Timestamps = e.OutputTime == pipepb.OutputTime_EARLIEST_IN_PANE || e.OutputTime == pipepb.OutputTime_LATEST_IN_PANE
		b.materialize(in, e)
		if err := b.replay(e, in, ws); err != nil {
			return err
		}
		b.newStage(name, Input{Edge: e.ID}, onlyValue(t.GetOutputs()), e.Producers)
		return nil
	case graphx.URNReshuffle:
		e := b.newEdge(Redistribute, "Reshuffle "+name)
		b.materialize(onlyValue(t.GetInputs()), e)
		b.newStage(name, Input{Edge: e.ID}, onlyValue(t.GetOutputs()), e.Producers)
		return nil
	case graphx.URNFlatten:
		e := b.newEdge(Redistribute, "Flatten "+name)
		for _, pc := range sortedValues(t.GetInputs()) {
			b.materialize(pc, e)
		}
		b.newStage(name, Input{Edge: e.ID}, onlyValue(t.GetOutputs()), e.Producers)
		return nil
	}
	sides := sideInputs(t)
	var main string
	for _, local := range sortedKeys(t.GetInputs()) {
		if _, side := sides[local]; !side {
			main = t.GetInputs()[local]
			break
		}
	}
	if main == "" {
		return fmt.Errorf("stages: transform %s has no main input", name)
	}
	var st *Stage
	stateful := isStateful(t)
	if len(sides) > 0 || b.cut[id] || stateful {
		e := b.newEdge(Redistribute, "Redistribute before "+name)
		if stateful {
			e.Kind, e.Label = Keyed, "Keyed shuffle before "+name
		}
		b.materialize(main, e)
		deps := append([]int(nil), e.Producers...)
		for local := range sides {
			pc := t.GetInputs()[local]
			se, ok := b.sideEdge[pc]
			if !ok {
				edge := b.newEdge(Side, "Side input "+b.comps.Pcollections[pc].GetUniqueName())
				b.materialize(pc, edge)
				se = edge.ID
				b.sideEdge[pc] = se
			}
			deps = append(deps, b.plan.Edges[se].Producers...)
		}
		st = b.newStage(name, Input{Edge: e.ID}, main, deps)
		for _, local := range sortedKeys(sides) {
			pc := t.GetInputs()[local]
			st.Sides = append(st.Sides, SideInput{Transform: id, Local: local, Edge: b.sideEdge[pc],
				Multimap: sides[local], Coder: b.wvCoder(pc)})
		}
	} else {
		si, ok := b.stageOf[main]
		if !ok {
			return fmt.Errorf("stages: transform %s reads %s, which no earlier transform produces", name, main)
		}
		st = b.plan.Stages[si]
	}
	st.transforms = append(st.transforms, id)
	for _, pc := range t.GetOutputs() {
		b.stageOf[pc] = st.ID
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// descriptor builds a stage's ProcessBundleDescriptor.
func (b *builder) descriptor(st *Stage) error {
	d := &fnpb.ProcessBundleDescriptor{
		Id:                        fmt.Sprintf("stage-%d", st.ID),
		Transforms:                map[string]*pipepb.PTransform{},
		Pcollections:              map[string]*pipepb.PCollection{},
		WindowingStrategies:       b.comps.GetWindowingStrategies(),
		Coders:                    b.comps.GetCoders(),
		Environments:              b.comps.GetEnvironments(),
		StateApiServiceDescriptor: &pipepb.ApiServiceDescriptor{Url: Port},
		TimerApiServiceDescriptor: &pipepb.ApiServiceDescriptor{Url: Port},
	}
	port, err := proto.Marshal(&fnpb.RemoteGrpcPort{ApiServiceDescriptor: &pipepb.ApiServiceDescriptor{Url: Port},
		CoderId: b.wvCoder(st.sourcePC)})
	if err != nil {
		return err
	}
	d.Transforms[st.Input.Transform] = &pipepb.PTransform{UniqueName: st.Input.Transform,
		Spec: &pipepb.FunctionSpec{Urn: urnDataSource, Payload: port}, Outputs: map[string]string{"o": st.sourcePC}}
	ids := append([]string(nil), st.transforms...)
	for _, o := range st.Outputs {
		ids = append(ids, o.Transform)
		port, err := proto.Marshal(&fnpb.RemoteGrpcPort{ApiServiceDescriptor: &pipepb.ApiServiceDescriptor{Url: Port}, CoderId: o.Coder})
		if err != nil {
			return err
		}
		b.comps.Transforms[o.Transform].Spec.Payload = port
	}
	var names []string
	for _, id := range ids {
		t := b.comps.Transforms[id]
		d.Transforms[id] = t
		for _, pc := range t.GetInputs() {
			d.Pcollections[pc] = b.comps.Pcollections[pc]
		}
		for _, pc := range t.GetOutputs() {
			d.Pcollections[pc] = b.comps.Pcollections[pc]
		}
		if !strings.HasPrefix(id, "gale_sink") {
			names = append(names, t.GetUniqueName())
		}
	}
	d.Pcollections[st.sourcePC] = b.comps.Pcollections[st.sourcePC]
	st.Descriptor = d
	st.Labels = names
	if len(names) > 0 {
		st.Name = shorten(names)
	}
	return nil
}

// shorten names a stage by its first and last transforms.
func shorten(names []string) string {
	if len(names) <= 2 {
		return strings.Join(names, " -> ")
	}
	return fmt.Sprintf("%s -> ... (%d) -> %s", names[0], len(names)-2, names[len(names)-1])
}
