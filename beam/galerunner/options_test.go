package galerunner_test

import (
	"context"
	"flag"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/beam/galerunner"
)

// testOption is a flag of the program that its DoFns read as a pipeline
// option.
var _ = flag.String("gale_test_option", "", "a pipeline option the tests' DoFns read")

func init() {
	register.Function2x0(emitTestOption)
}

func emitTestOption(_ []byte, emit func(string)) {
	emit("gale_test_option=" + beam.PipelineOptions.Get("gale_test_option"))
}

// optionsPipeline emits the option as a DoFn sees it and checks it with
// passert, which fails the job on another value.
func optionsPipeline(want string) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	got := beam.ParDo(s, emitTestOption, beam.Impulse(s))
	passert.Equals(s, got, "gale_test_option="+want)
	return p
}

// setFlag sets a flag for the rest of the test.
func setFlag(t *testing.T, name, value string) {
	t.Helper()
	old := flag.Lookup(name).Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set(name, old) })
}

// TestPipelineOptionsReachDoFns: the program's flags are its pipeline
// options, loaded at submission (beam.Run with the gale runner) and set
// on every worker, in this process and in worker processes; Run takes
// them from Config.PipelineOptions.
func TestPipelineOptionsReachDoFns(t *testing.T) {
	setFlag(t, "gale_test_option", "from-the-flag")
	setFlag(t, "gale_report", "false")
	t.Run("local", func(t *testing.T) {
		if _, err := beam.Run(context.Background(), galerunner.Name, optionsPipeline("from-the-flag")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("process", func(t *testing.T) {
		setFlag(t, "gale_backend", "process")
		setFlag(t, "gale_workers", "2")
		if _, err := beam.Run(context.Background(), galerunner.Name, optionsPipeline("from-the-flag")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Config", func(t *testing.T) {
		pc := process.DefaultConfig()
		pc.Concurrency = 2
		pc.Output = testWriter{t}
		b, err := process.New(pc)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pp, err := galerunner.Marshal(context.Background(), optionsPipeline("from-the-config"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = galerunner.Run(context.Background(), pp, galerunner.Config{Backend: b, BackendName: "process", Workers: 2,
			PipelineOptions: map[string]string{"gale_test_option": "from-the-config"}})
		if err != nil {
			t.Fatal(err)
		}
	})
}
