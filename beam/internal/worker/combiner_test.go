package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/beam/internal/stages"
	"github.com/galeproject/gale/shuffle"
	"github.com/galeproject/gale/shuffle/objects"
	"google.golang.org/protobuf/proto"
)

// countPipeline is beam.Create of keys*repeat words, each key repeat
// times in a random order, counted with stats.Count (a lifted combine).
func countPipeline(t *testing.T, keys, repeat int) *pipepb.Pipeline {
	t.Helper()
	var words []string
	for r := 0; r < repeat; r++ {
		for k := 0; k < keys; k++ {
			words = append(words, fmt.Sprintf("w%05d", k))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	p, s := beam.NewPipelineWithRoot()
	stats.Count(s, beam.CreateList(s, words))
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	env, err := graphx.CreateEnvironment(context.Background(), "beam:env:default:v1", func(context.Context) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := graphx.Marshal(edges, &graphx.Options{Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	return pipe
}

// runCountMapStage runs the first stage of countPipeline (Create, pair
// with one, precombine) as one task and returns, per partition, the
// decoded (key, partial count) records of its group output, and the
// task's result.
func runCountMapStage(t *testing.T, keys, repeat, flushBytes int) ([]map[string][]int64, *Result) {
	t.Helper()
	ctx := context.Background()
	plan, err := stages.Build(countPipeline(t, keys, repeat), stages.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	st := plan.Stages[0]
	if !st.Input.Impulse || len(st.Outputs) != 1 || plan.Edges[st.Outputs[0].Edge].Kind != stages.Group {
		t.Fatalf("stage 0 is %q with input %+v and outputs %+v; want the impulse stage writing one group edge", st.Name, st.Input, st.Outputs)
	}
	desc, err := proto.Marshal(st.Descriptor)
	if err != nil {
		t.Fatal(err)
	}
	o := st.Outputs[0]
	temp := t.TempDir()
	w, err := New(Config{OpenStore: func(_ context.Context, url string, _ map[string]string) (objstore.Store, error) {
		return objstore.NewFS(url)
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.flushBytes = flushBytes
	res, err := w.Run(ctx, &Task{Kind: Kind, Version: Version, Job: "test", Descriptor: desc,
		Input:   Input{Transform: st.Input.Transform, Impulse: true},
		Outputs: []Output{{Transform: o.Transform, Edge: o.Edge, Kind: EdgeGroup, Partitions: 2, Coder: o.Coder}},
		Temp:    temp})
	if err != nil {
		t.Fatal(err)
	}
	c, err := graphx.NewCoderUnmarshaller(st.Descriptor.GetCoders()).Coder(o.Coder)
	if err != nil {
		t.Fatal(err)
	}
	elem := coder.SkipW(c)
	keyDec, accDec := exec.MakeElementDecoder(elem.Components[0]), exec.MakeElementDecoder(elem.Components[1])
	store, err := objstore.NewFS(temp)
	if err != nil {
		t.Fatal(err)
	}
	out := res.Outputs[0]
	// The object has the engine's shuffle layout: its footer describes
	// the partitions the result reports.
	ranges, err := objects.Ranges(ctx, store, out.Key)
	if err != nil {
		t.Fatalf("the Beam worker's shuffle object: %v", err)
	}
	if !slices.Equal(ranges, out.Parts) {
		t.Fatalf("footer ranges %+v, result's %+v", ranges, out.Parts)
	}
	parts := make([]map[string][]int64, len(out.Parts))
	for i, r := range out.Parts {
		parts[i] = map[string][]int64{}
		if r.Len == 0 {
			continue
		}
		rc, err := store.Get(ctx, out.Key, r.Off, r.Len)
		if err != nil {
			t.Fatal(err)
		}
		seg, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for len(seg) > 0 {
			var key, win, acc []byte
			if key, seg, err = shuffle.ReadField(seg); err == nil {
				if win, seg, err = shuffle.ReadField(seg); err == nil {
					acc, seg, err = shuffle.ReadField(seg)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = win
			k, err := keyDec.Decode(bytes.NewReader(key))
			if err != nil {
				t.Fatal(err)
			}
			a, err := accDec.Decode(bytes.NewReader(acc))
			if err != nil {
				t.Fatal(err)
			}
			if p := shuffle.HashPartition(key, len(out.Parts)); p != i {
				t.Fatalf("key %q in partition %d, the shuffle's hash partitioner says %d", key, i, p)
			}
			word := k.Elm.(string)
			parts[i][word] = append(parts[i][word], reflect.ValueOf(a.Elm).Int())
		}
	}
	return parts, res
}

// checkCounts checks that every key's partial counts add up to repeat,
// that each key lives in one partition, and returns the record count.
func checkCounts(t *testing.T, parts []map[string][]int64, keys, repeat int) int {
	t.Helper()
	records, seen := 0, map[string]int{}
	for i, p := range parts {
		for word, accs := range p {
			if j, ok := seen[word]; ok {
				t.Fatalf("key %q is in partitions %d and %d", word, j, i)
			}
			seen[word] = i
			var sum int64
			for _, a := range accs {
				sum += a
			}
			if sum != int64(repeat) {
				t.Fatalf("key %q: partial counts %v add up to %d, want %d", word, accs, sum, repeat)
			}
			records += len(accs)
		}
	}
	if len(seen) != keys {
		t.Fatalf("%d keys in the output, want %d", len(seen), keys)
	}
	return records
}

// TestPrecombineOutputIsMerged runs a map stage whose precombine (the
// SDK's LiftedCombine, which holds 2,000 keys) sees 5,000 keys, so it
// emits several partial counts for most keys: the sink must merge them
// into exactly one record per key, with the right counts.
func TestPrecombineOutputIsMerged(t *testing.T) {
	const keys, repeat = 5000, 4
	parts, res := runCountMapStage(t, keys, repeat, combineFlushBytes)
	if n := checkCounts(t, parts, keys, repeat); n != keys {
		t.Fatalf("%d records written, want one per key (%d)", n, keys)
	}
	if res.Metrics.RecordsOut != keys {
		t.Fatalf("RecordsOut = %d, want %d", res.Metrics.RecordsOut, keys)
	}
}

// TestPrecombineMergesInBoundedBatches makes the sink merge every few
// KiB: keys merged in different batches stay separate records, and the
// counts still add up.
func TestPrecombineMergesInBoundedBatches(t *testing.T) {
	const keys, repeat = 5000, 4
	parts, res := runCountMapStage(t, keys, repeat, 4<<10)
	n := checkCounts(t, parts, keys, repeat)
	if n <= keys || n >= keys*repeat {
		t.Fatalf("%d records written; want more than one per key (%d, several merge batches) and fewer than the inputs (%d)", n, keys, keys*repeat)
	}
	if res.Metrics.RecordsOut != int64(n) {
		t.Fatalf("RecordsOut = %d, want %d", res.Metrics.RecordsOut, n)
	}
}
