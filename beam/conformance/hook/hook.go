// Package hook is what the conformance harness (package conformance)
// links into each of Beam's test binaries, through a one-line test file
// it adds with `go test -overlay`: it registers Gale's runner (--runner=
// gale, through package galerunner) and PrismRunner, Beam's Prism under a
// name of its own.
//
// Beam's integration tests skip tests per runner name
// (test/integration/integration.go: TestPanes and the trigger tests,
// among others, are filtered for "prism" because its portable job server
// is run without TestStream support elsewhere); under PrismRunner no
// filter applies, so the harness sees what Prism itself does with every
// test. PrismRunner also prints Marker on standard error (standard output
// would change what Beam's examples print) before it runs a pipeline,
// which tells the harness which tests execute pipelines.
//
// It imports the Beam SDK's Prism runner and Gale's Beam runner.
package hook

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	_ "github.com/galeproject/gale/beam/galerunner" // --runner=gale
)

// PrismRunner is the name Prism runs under in the harness.
const PrismRunner = "gale-conformance-prism"

// Marker is the line PrismRunner prints before each pipeline it runs.
const Marker = "gale-conformance: executing a pipeline"

func init() {
	beam.RegisterRunner(PrismRunner, func(ctx context.Context, p *beam.Pipeline) (beam.PipelineResult, error) {
		fmt.Fprintln(os.Stderr, Marker)
		return prism.Execute(ctx, p)
	})
}
