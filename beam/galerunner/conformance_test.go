package galerunner_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/galeproject/gale/beam/examples/wordcount"
	"github.com/galeproject/gale/beam/galerunner"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init() // in a Gale worker process, serves tasks and exits
	os.Exit(m.Run())
}

// runGale runs the pipeline build makes on Gale with cfg.
func runGale(t *testing.T, build func(s beam.Scope), cfg galerunner.Config) *galerunner.Result {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	build(s)
	pp, err := galerunner.Marshal(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var rep strings.Builder
	cfg.Report = &rep
	res, err := galerunner.Run(context.Background(), pp, cfg)
	t.Log(rep.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runPrism runs the pipeline build makes on Beam's Prism runner.
func runPrism(t *testing.T, build func(s beam.Scope)) beam.PipelineResult {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	build(s)
	res, err := prism.Execute(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sortedLines returns the lines of a file, sorted.
func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// writeCorpus writes a small text of the given number of lines with
// repeated words, empty lines and an apostrophe word.
func writeCorpus(t *testing.T, dir string, lines int) string {
	t.Helper()
	var b strings.Builder
	words := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog's", "King", "Lear", "a", "an"}
	for i := range lines {
		for j := range 1 + i%9 {
			b.WriteString(words[(i*7+j*3+i/13)%len(words)])
			b.WriteByte(' ')
		}
		if i%17 == 0 {
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	path := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWordCountMatchesPrism(t *testing.T) {
	dir := t.TempDir()
	in := writeCorpus(t, dir, 3000)
	galeOut, prismOut := filepath.Join(dir, "gale.txt"), filepath.Join(dir, "prism.txt")
	p, sc := beam.NewPipelineWithRoot()
	wordcount.Build(sc, in, galeOut)
	pp, err := galerunner.Marshal(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var rep strings.Builder
	res, err := galerunner.Run(context.Background(), pp, galerunner.Config{Workers: 2, Partitions: 3, Report: &rep})
	if err != nil {
		t.Fatal(err)
	}
	prismRes := runPrism(t, func(s beam.Scope) { wordcount.Build(s, in, prismOut) })
	got, want := sortedLines(t, galeOut), sortedLines(t, prismOut)
	if !slices.Equal(got, want) {
		t.Fatalf("gale output differs from prism: %d vs %d lines\ngale: %.20q\nprism: %.20q", len(got), len(want), got, want)
	}
	// The metrics agree with Prism's, and the job report shows them.
	counters := func(r beam.PipelineResult) map[string]int64 {
		m := map[string]int64{}
		for _, c := range r.Metrics().AllMetrics().Counters() {
			m[c.Key.Namespace+"."+c.Key.Name] += c.Result()
		}
		return m
	}
	gc, pc := counters(res), counters(prismRes)
	if len(gc) == 0 || !maps.Equal(gc, pc) {
		t.Errorf("counters: gale %v, prism %v", gc, pc)
	}
	for name, v := range gc {
		line := fmt.Sprintf("counter %s (CountWords/wordcount.ExtractFn): %d", name, v)
		if !strings.Contains(rep.String(), line) {
			t.Errorf("the job report lacks %q:\n%s", line, rep.String())
		}
	}
	pd := prismRes.Metrics().AllMetrics().Distributions()
	if len(pd) != 1 {
		t.Fatalf("prism reports %d distributions, want 1", len(pd))
	}
	v := pd[0].Result()
	line := fmt.Sprintf("distribution extract.lineLenDistro (CountWords/wordcount.ExtractFn): count %d, sum %d, min %d, max %d", v.Count, v.Sum, v.Min, v.Max)
	if !strings.Contains(rep.String(), line) {
		t.Errorf("the job report lacks prism's %q:\n%s", line, rep.String())
	}
	t.Logf("%d lines agree; stages: %q", len(got), res.Stages)
}
