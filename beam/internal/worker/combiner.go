package worker

import (
	"context"
	"fmt"
	"maps"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// A lifted combine's precombine (the SDK's LiftedCombine) keeps at most a
// few thousand keys in memory and emits a partial accumulator for every
// key it evicts, so a task over many distinct keys writes several partial
// accumulators per key: 2.8 million for 87 thousand words in 64 MiB of
// text. A DataSink whose elements come from a precombine therefore merges
// them before they leave the task, the way a MapReduce combiner does: its
// records are grouped by encoded key and window in memory and run through
// a second, tiny plan of the SDK's own merge_accumulators transform (the
// pipeline's CombineFn, so any combine is merged by its own code), whose
// output is what gets partitioned and written. Merging early is what the
// reduce side does anyway: MergeAccumulators is associative and
// commutative by Beam's contract, so the results are unchanged.

const (
	urnPrecombine        = "beam:transform:combine_per_key_precombine:v1"
	urnMergeAccumulators = "beam:transform:combine_per_key_merge_accumulators:v1"
	urnDataSource        = "beam:runner:source:v1"
	urnDataSink          = "beam:runner:sink:v1"
	urnKVCoder           = "beam:coder:kv:v1"
	urnIterableCoder     = "beam:coder:iterable:v1"
	urnWindowedValue     = "beam:coder:windowed_value:v1"
)

// combineFlushBytes bounds the partial accumulators a sink holds before
// it merges them, so a task's memory stays bounded whatever its input.
const combineFlushBytes = 32 << 20

// IDs inside a combiner's descriptor.
const (
	combSource = "gale_premerge_source"
	combMerge  = "gale_premerge"
	combSink   = "gale_premerge_sink"
	combIn     = "gale_premerge_in"
	combOut    = "gale_premerge_out"
)

// combiner merges a DataSink's partial accumulators with the pipeline's
// CombineFn. It is used by one sink's decoder goroutine only.
type combiner struct {
	plan    *exec.Plan
	inCoder *coder.Coder // windowed KV<K, Iterable<Acc>>
	runs    int
}

// newCombiner returns a combiner for the DataSink sink of desc when the
// sink writes a precombine's output, and nil otherwise.
func newCombiner(desc *fnpb.ProcessBundleDescriptor, sink string) (*combiner, error) {
	cdesc, ok, err := combinerDescriptor(desc, sink)
	if err != nil || !ok {
		return nil, err
	}
	coders := graphx.NewCoderUnmarshaller(cdesc.GetCoders())
	in, err := sourceCoder(cdesc, coders, combSource)
	if err != nil {
		return nil, err
	}
	plan, err := exec.UnmarshalPlan(cdesc, nil)
	if err != nil {
		return nil, fmt.Errorf("worker: building the merge plan for %s: %w", sink, err)
	}
	return &combiner{plan: plan, inCoder: in}, nil
}

// combinerDescriptor builds DataSource -> merge_accumulators -> DataSink
// for the precombine that feeds sink, reporting false if none does.
func combinerDescriptor(desc *fnpb.ProcessBundleDescriptor, sink string) (*fnpb.ProcessBundleDescriptor, bool, error) {
	st := desc.GetTransforms()[sink]
	if st.GetSpec().GetUrn() != urnDataSink {
		return nil, false, nil
	}
	var accPC string
	for _, pc := range st.GetInputs() {
		accPC = pc
	}
	var pre *pipepb.PTransform
	for _, t := range desc.GetTransforms() {
		if t.GetSpec().GetUrn() != urnPrecombine {
			continue
		}
		for _, pc := range t.GetOutputs() {
			if pc == accPC {
				pre = t
			}
		}
	}
	if pre == nil {
		return nil, false, nil
	}
	pc := desc.GetPcollections()[accPC]
	coders := maps.Clone(desc.GetCoders())
	accKV := coders[pc.GetCoderId()]
	if accKV.GetSpec().GetUrn() != urnKVCoder || len(accKV.GetComponentCoderIds()) != 2 {
		return nil, false, fmt.Errorf("worker: precombine %s writes %s, whose coder is not a KV coder", pre.GetUniqueName(), accPC)
	}
	ws := desc.GetWindowingStrategies()[pc.GetWindowingStrategyId()]
	add := func(id, urn string, components ...string) string {
		coders[id] = &pipepb.Coder{Spec: &pipepb.FunctionSpec{Urn: urn}, ComponentCoderIds: components}
		return id
	}
	iter := add("gale_premerge_iter", urnIterableCoder, accKV.GetComponentCoderIds()[1])
	grouped := add("gale_premerge_grouped", urnKVCoder, accKV.GetComponentCoderIds()[0], iter)
	groupedW := add("gale_premerge_grouped_w", urnWindowedValue, grouped, ws.GetWindowCoderId())
	outW := add("gale_premerge_out_w", urnWindowedValue, pc.GetCoderId(), ws.GetWindowCoderId())
	port := func(c string) ([]byte, error) {
		return proto.Marshal(&fnpb.RemoteGrpcPort{ApiServiceDescriptor: &pipepb.ApiServiceDescriptor{Url: "gale"}, CoderId: c})
	}
	srcPort, err := port(groupedW)
	if err != nil {
		return nil, false, err
	}
	sinkPort, err := port(outW)
	if err != nil {
		return nil, false, err
	}
	pcOf := func(c string) *pipepb.PCollection {
		return &pipepb.PCollection{UniqueName: c, CoderId: c, IsBounded: pc.GetIsBounded(), WindowingStrategyId: pc.GetWindowingStrategyId()}
	}
	in, out := pcOf(grouped), pcOf(pc.GetCoderId())
	in.UniqueName, out.UniqueName = combIn, combOut
	d := &fnpb.ProcessBundleDescriptor{
		Id: desc.GetId() + "-premerge",
		Transforms: map[string]*pipepb.PTransform{
			combSource: {UniqueName: combSource, Spec: &pipepb.FunctionSpec{Urn: urnDataSource, Payload: srcPort},
				Outputs: map[string]string{"o": combIn}},
			combMerge: {UniqueName: pre.GetUniqueName() + "/PreMerge",
				Spec:   &pipepb.FunctionSpec{Urn: urnMergeAccumulators, Payload: pre.GetSpec().GetPayload()},
				Inputs: map[string]string{"i0": combIn}, Outputs: map[string]string{"i0": combOut}, EnvironmentId: pre.GetEnvironmentId()},
			combSink: {UniqueName: combSink, Spec: &pipepb.FunctionSpec{Urn: urnDataSink, Payload: sinkPort},
				Inputs: map[string]string{"i0": combOut}},
		},
		Pcollections:              map[string]*pipepb.PCollection{combIn: in, combOut: out},
		WindowingStrategies:       desc.GetWindowingStrategies(),
		Coders:                    coders,
		Environments:              desc.GetEnvironments(),
		StateApiServiceDescriptor: desc.GetStateApiServiceDescriptor(),
	}
	return d, true, nil
}

// merge runs the merge plan over the groups of partial accumulators in g
// and writes the merged accumulators to out, a sink without a combiner,
// which it closes.
func (c *combiner) merge(ctx context.Context, g *grouper, out *sinkWriter) error {
	c.runs++
	dm := &dataManager{source: combSource, sinks: map[string]*sinkWriter{combSink: out}}
	dm.feed = func(ctx context.Context, ch chan<- exec.Elements) error {
		return feedGroups(ctx, g, c.inCoder, &chunker{ch: ch, transform: combSource})
	}
	err := c.plan.Execute(ctx, fmt.Sprintf("premerge-%d", c.runs), exec.DataContext{Data: dm, State: &stateReader{}})
	if ferr := dm.wait(); ferr != nil && err == nil {
		err = ferr
	}
	if cerr := out.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		out.abort()
		return fmt.Errorf("worker: merging partial accumulators: %w", err)
	}
	return nil
}

// down tears the merge plan down.
func (c *combiner) down(ctx context.Context) error { return c.plan.Down(ctx) }
