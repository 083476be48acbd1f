package galerunner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/galeproject/gale/beam/examples/wordcount"
	"github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

func init() { register.Function1x1(failOnPoison) }

func failOnPoison(s string) string {
	if s == "poison" {
		panic("poisoned element")
	}
	return s
}

// jobState is the part of the dashboard's job view the tests check.
type jobState struct {
	Status string
	Plan   engine.PlanInfo
	Stages []struct {
		Done, Running, Pending int
		Metrics                engine.Metrics
	}
	Attempts [][10]int64
	Totals   struct{ Invocations int64 }
	Error    string
	Failed   *[3]int
}

func dashboard(t *testing.T) *ui.Server {
	t.Helper()
	srv, err := ui.NewServer(ui.Config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(context.Background())
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return srv
}

func jobView(t *testing.T, srv *ui.Server, id string) jobState {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + "/api/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET job %s: %s", id, resp.Status)
	}
	var v jobState
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDashboardMatchesTheReport runs Beam's word count with a dashboard
// and an event file, as --gale_ui and --gale_events do, and checks that
// the live view and the view of the file both show the job the report
// describes: its stages with their fused transforms, the GroupByKey as a
// shuffle between them, every task done with the report's counts.
func TestDashboardMatchesTheReport(t *testing.T) {
	dir := t.TempDir()
	in := writeCorpus(t, dir, 2000)
	live := dashboard(t)
	var events bytes.Buffer
	res := runGale(t, func(s beam.Scope) { wordcount.Build(s, in, filepath.Join(dir, "out.txt")) },
		galerunner.Config{Workers: 2, Partitions: 3, JobID: "beam-ui", Monitor: live, Events: &events})
	offline := dashboard(t)
	if err := offline.LoadEvents(bytes.NewReader(events.Bytes()), "events.jsonl"); err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	for name, srv := range map[string]*ui.Server{"live": live, "from the event file": offline} {
		v := jobView(t, srv, "beam-ui")
		if v.Status != "succeeded" || len(v.Stages) != len(rep.Stages) || len(v.Plan.Stages) != len(rep.Stages) {
			t.Fatalf("%s: status %s, %d stages (plan %d); the report has %d", name, v.Status, len(v.Stages), len(v.Plan.Stages), len(rep.Stages))
		}
		attempts := 0
		for i, s := range rep.Stages {
			got := v.Stages[i]
			if got.Done != s.Done || got.Done != s.Tasks || got.Running != 0 || got.Pending != 0 || got.Metrics != s.Metrics {
				t.Errorf("%s: stage %d shows %+v; the report: %d of %d done, %+v", name, i, got, s.Done, s.Tasks, s.Metrics)
			}
			if v.Plan.Stages[i].Name != res.Stages[i] || v.Plan.Stages[i].Tasks != s.Tasks || len(v.Plan.Stages[i].Ops) == 0 {
				t.Errorf("%s: plan stage %d is %+v; the job's stage is %q with %d tasks", name, i, v.Plan.Stages[i], res.Stages[i], s.Tasks)
			}
			attempts += s.Tasks + s.Retries
		}
		if len(v.Attempts) != attempts || v.Totals.Invocations != rep.Invocations {
			t.Errorf("%s: %d attempts, %d invocations; the report: %d attempts, %d invocations", name, len(v.Attempts), v.Totals.Invocations, attempts, rep.Invocations)
		}
		group := false
		for _, sh := range v.Plan.Shuffles {
			if strings.HasPrefix(sh.Label, "group") && sh.Partitions == 3 && sh.Consumer > 0 && len(sh.Producers) > 0 {
				group = true
			}
		}
		if !group {
			t.Errorf("%s: no GroupByKey shuffle of 3 partitions in the plan: %+v", name, v.Plan.Shuffles)
		}
	}
}

// TestDashboardShowsTheFailure checks that a Beam job whose DoFn fails
// every attempt shows as failed, with its error and the failing attempt.
func TestDashboardShowsTheFailure(t *testing.T) {
	srv := dashboard(t)
	p, s := beam.NewPipelineWithRoot()
	xs := []string{"a", "b", "poison", "c"}
	beam.ParDo(s, failOnPoison, beam.CreateList(s, xs))
	pp, err := galerunner.Marshal(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = galerunner.Run(context.Background(), pp, galerunner.Config{Workers: 2, MaxAttempts: 2, JobID: "beam-fail", Monitor: srv})
	if err == nil {
		t.Fatal("the poisoned job succeeded")
	}
	v := jobView(t, srv, "beam-fail")
	if v.Status != "failed" || !strings.Contains(v.Error, "poisoned element") || v.Failed == nil || v.Failed[2] != 2 {
		t.Fatalf("status %s, error %q, failed attempt %v; want failed, the DoFn's panic, attempt 2", v.Status, v.Error, v.Failed)
	}
}
