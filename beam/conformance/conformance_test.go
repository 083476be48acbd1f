package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestFastSuites runs Beam's integration primitives on Prism and on Gale's
// local and process backends and fails on any test Prism passes that Gale
// does not, unless Known gives the reason, and on a Known entry Gale now
// passes.
func TestFastSuites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Beam's integration tests (minutes)")
	}
	ss, err := SuitesNamed(Fast...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tbl, err := Run(ctx, Config{RepoRoot: "../..", Suites: ss, Runners: Runners(2), Timeout: 8 * time.Minute, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteMarkdown(&b, tbl, Known)
	t.Log("\n" + b.String())
	prismPass := 0
	for _, row := range tbl.Rows {
		if row.Results["prism"].Outcome == Pass {
			prismPass++
		}
	}
	if len(tbl.Rows) < 50 || prismPass < 40 {
		t.Fatalf("%d rows, %d passing on Prism: the harness did not run the primitives", len(tbl.Rows), prismPass)
	}
	for _, p := range Verdict(tbl, Known) {
		t.Error(p)
	}
}

// TestParse reads a test2json stream: outcomes of top-level tests only,
// reasons of skips, rejections and failures, and the tests that executed
// a pipeline.
func TestParse(t *testing.T) {
	stream := `{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"gale-conformance: executing a pipeline\n"}
{"Action":"pass","Test":"TestA"}
{"Action":"run","Test":"TestB"}
{"Action":"output","Test":"TestB","Output":"    b_test.go:12: Only Loopback mode is supported\n"}
{"Action":"skip","Test":"TestB"}
{"Action":"run","Test":"TestC"}
{"Action":"output","Test":"TestC","Output":"gale-conformance: executing a pipeline\n"}
{"Action":"output","Test":"TestC","Output":"    c_test.go:27: Failed to execute job: galerunner: beam pipeline uses features Gale does not run:\n"}
{"Action":"output","Test":"TestC","Output":"          - user state in ParDo \"x\" (state S)\n"}
{"Action":"output","Test":"TestC","Output":"        remove them or run the pipeline on another runner\n"}
{"Action":"fail","Test":"TestC"}
{"Action":"run","Test":"TestD/sub"}
{"Action":"output","Test":"TestD/sub","Output":"    d_test.go:5: actual PCollection does not match expected values\n"}
{"Action":"fail","Test":"TestD/sub"}
{"Action":"fail","Test":"TestD"}
not json
{"Action":"fail"}
`
	res, executed, finished, err := parse(strings.NewReader(stream))
	if err != nil || !finished {
		t.Fatalf("parse: finished %v, %v", finished, err)
	}
	want := map[string]Result{
		"TestA": {Outcome: Pass},
		"TestB": {Outcome: Skip, Detail: "Only Loopback mode is supported"},
		"TestC": {Outcome: Rejected, Detail: `user state in ParDo "x" (state S)`},
		"TestD": {Outcome: Fail, Detail: "actual PCollection does not match expected values"},
	}
	if len(res) != len(want) {
		t.Errorf("got %d results, want %d: %v", len(res), len(want), res)
	}
	for k, w := range want {
		if res[k] != w {
			t.Errorf("%s: got %+v, want %+v", k, res[k], w)
		}
	}
	if !slices.Equal(executed, []string{"TestA", "TestC"}) {
		t.Errorf("executed = %q, want TestA, TestC", executed)
	}
}

// TestVerdict: an unexcused Gale failure of a test Prism passes is a
// problem, an excused one is not, and an exception Gale now passes is.
func TestVerdict(t *testing.T) {
	runners := Runners(0)
	row := func(test string, outcomes ...Outcome) *Row {
		r := &Row{Suite: "s", Test: test, Results: map[string]Result{}}
		for i, o := range outcomes {
			r.Results[runners[i].Name] = Result{Outcome: o}
		}
		return r
	}
	tbl := &Table{Runners: runners, Rows: []*Row{
		row("TestOK", Pass, Pass, Pass),
		row("TestRegressed", Pass, Pass, Fail),
		row("TestExcused", Pass, Rejected, Rejected),
		row("TestProcessOnly", Pass, Pass, Skip),
		row("TestStale", Pass, Pass, Pass),
		row("TestPrismFails", Fail, Fail, Fail),
	}}
	known := map[string]Exception{
		"s.TestExcused":     {Reason: "not yet"},
		"s.TestProcessOnly": {Reason: "in-process only", Runners: []string{"gale process"}},
		"s.TestStale":       {Reason: "was broken"},
	}
	got := Verdict(tbl, known)
	if len(got) != 2 || !strings.HasPrefix(got[0], "s.TestRegressed:") || !strings.HasPrefix(got[1], "s.TestStale:") {
		t.Fatalf("Verdict = %q, want TestRegressed and TestStale", got)
	}
}
