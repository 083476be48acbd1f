package stages

import (
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// Reshuffle. The Go SDK marshals beam.Reshuffle as a composite
// (beam:transform:reshuffle:v1) whose leaves are its fallback for runners
// without a native reshuffle: a ParDo that wraps each element with a
// random key, a GroupByKey in the global window under an Always trigger,
// and a ParDo that unwraps the elements with their windows and
// timestamps. Gale runs the composite natively instead, as one
// Redistribute edge from its input to its output, so the fallback's
// internal windowing strategy (the trigger) never applies and is not
// checked.

// reshuffleEnds returns the input and output PCollections of a Reshuffle
// composite: its own when it declares them, else the input of its
// wrapping ParDo and the output of its unwrapping one.
func reshuffleEnds(c *pipepb.Components, t *pipepb.PTransform) (in, out string, err error) {
	if len(t.GetInputs()) == 1 && len(t.GetOutputs()) == 1 {
		return onlyValue(t.GetInputs()), onlyValue(t.GetOutputs()), nil
	}
	for _, id := range t.GetSubtransforms() {
		st := c.GetTransforms()[id]
		if st.GetSpec().GetUrn() != graphx.URNParDo {
			continue
		}
		var pardo pipepb.ParDoPayload
		if err := proto.Unmarshal(st.GetSpec().GetPayload(), &pardo); err != nil {
			return "", "", fmt.Errorf("stages: Reshuffle %q: bad ParDo payload in %s: %w", t.GetUniqueName(), id, err)
		}
		switch pardo.GetDoFn().GetUrn() {
		case graphx.URNReshuffleInput:
			in = onlyValue(st.GetInputs())
		case graphx.URNReshuffleOutput:
			out = onlyValue(st.GetOutputs())
		}
	}
	if in == "" || out == "" {
		return "", "", fmt.Errorf("stages: Reshuffle %q: cannot find its input and output among its transforms %v", t.GetUniqueName(), t.GetSubtransforms())
	}
	return in, out, nil
}

// reshuffleInternals returns the transforms inside the Reshuffle
// composites of p, which Gale does not run, and the PCollections they
// produce but the composites' outputs, whose windowing Gale does not
// apply.
func reshuffleInternals(c *pipepb.Components) (transforms, pcollections map[string]bool) {
	transforms, internal := map[string]bool{}, map[string]bool{}
	for _, t := range c.GetTransforms() {
		if t.GetSpec().GetUrn() != graphx.URNReshuffle || len(t.GetSubtransforms()) == 0 {
			continue
		}
		_, out, err := reshuffleEnds(c, t)
		if err != nil {
			continue // Build reports it
		}
		for _, id := range t.GetSubtransforms() {
			transforms[id] = true
			for _, pc := range c.GetTransforms()[id].GetOutputs() {
				if pc != out {
					internal[pc] = true
				}
			}
		}
	}
	return transforms, internal
}
