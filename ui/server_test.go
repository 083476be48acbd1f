package ui_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/ui"
)

func TestConfigRefusesRemoteAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:8080", ":0"} {
		if _, err := ui.NewServer(ui.Config{Addr: addr}); err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Errorf("address %q: err %v, want a refusal naming loopback", addr, err)
		}
	}
	if _, err := ui.NewServer(ui.Config{Addr: "localhost"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("an address without a port: err %v", err)
	}
	srv, err := ui.NewServer(ui.Config{Addr: "0.0.0.0:0", AllowRemote: true, Token: "t0k"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if u := srv.URL(); !strings.HasPrefix(u, "http://localhost:") || !strings.HasSuffix(u, "/?token=t0k") {
		t.Errorf("URL %s", u)
	}
}

// TestWithUIRefusesRemoteAddresses checks that Run refuses a dashboard
// beyond loopback before the job runs.
func TestWithUIRefusesRemoteAddresses(t *testing.T) {
	p := gale.NewPipeline()
	buildPoisoned(p) // it would fail if it ran
	_, err := gale.Run(context.Background(), p, gale.WithUI("0.0.0.0:0"))
	if err == nil || !strings.Contains(err.Error(), "WithUI") || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("err %v, want WithUI's refusal", err)
	}
}

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestGuard checks the token and, on loopback, the Host header (a page of
// another site whose name resolves to 127.0.0.1 must not read the jobs).
func TestGuard(t *testing.T) {
	srv := serve(t, ui.Config{Token: "s3cret"})
	base := "http://" + srv.Addr()
	if r := get(t, base+"/api/jobs", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s", r.Status)
	}
	if r := get(t, base+"/api/jobs?token=wrong", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %s", r.Status)
	}
	r := get(t, srv.URL(), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("the printed URL: %s", r.Status)
	}
	var cookie string
	for _, c := range r.Cookies() {
		if c.HttpOnly && c.SameSite == http.SameSiteStrictMode {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("the page set no strict, HTTP-only cookie")
	}
	if r := get(t, base+"/api/jobs", map[string]string{"Cookie": cookie}); r.StatusCode != http.StatusOK {
		t.Errorf("with the cookie: %s", r.Status)
	}
	if r := get(t, srv.URL(), map[string]string{"Host": "attacker.example:80"}); r.StatusCode != http.StatusForbidden {
		t.Errorf("Host attacker.example: %s", r.Status)
	}
	for _, h := range []string{"localhost", "[::1]:1234", "127.0.0.1"} {
		if r := get(t, srv.URL(), map[string]string{"Host": h}); r.StatusCode != http.StatusOK {
			t.Errorf("Host %s: %s", h, r.Status)
		}
	}
	if r := get(t, base+"/static/app.js?token=s3cret", nil); r.StatusCode != http.StatusOK ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("app.js: %s, CSP %q", r.Status, r.Header.Get("Content-Security-Policy"))
	}
}

// TestStateMatchesTheReport runs a job onto a dashboard and checks the
// state the page reads against the job's report.
func TestStateMatchesTheReport(t *testing.T) {
	srv := serve(t, ui.Config{})
	dir := t.TempDir()
	inputs, _ := gatedInputs(t, dir, 5)
	p := gale.NewPipeline()
	buildGated(p, inputs, filepath.Join(dir, "out"))
	rep, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WithMonitor(srv))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Status string
		Stages []struct {
			Done, Running, Failed, Pending int
			Metrics                        engine.Metrics
		}
		Stored    map[string]int64
		Attempts  [][10]int64
		Instances []string
		Totals    struct {
			Invocations   int64
			BilledSeconds float64 `json:"billed_seconds"`
		}
	}
	getJSON(t, srv, "/api/jobs/"+rep.JobID, &v)
	if v.Status != "succeeded" || len(v.Stages) != len(rep.Stages) {
		t.Fatalf("state %+v", v)
	}
	attempts := 0
	for i, s := range rep.Stages {
		got := v.Stages[i]
		if got.Done != s.Done || got.Running != 0 || got.Pending != 0 || got.Metrics != s.Metrics {
			t.Errorf("stage %d: %+v, report %+v", i, got, s)
		}
		for _, r := range s.TaskRows {
			attempts += r.Attempts
			found := false
			for _, a := range v.Attempts {
				if int(a[1]) == i && int(a[2]) == r.Task && a[6] == 1 {
					found = v.Instances[a[7]] == r.Instance && (a[8] == 1) == r.Cold
				}
			}
			if !found {
				t.Errorf("stage %d task %d: no done attempt on instance %s (cold %v)", i, r.Task, r.Instance, r.Cold)
			}
		}
	}
	if len(v.Attempts) != attempts || v.Stored["0"] != rep.Shuffles[0].BytesStored ||
		v.Totals.Invocations != rep.Invocations || v.Totals.BilledSeconds != rep.BilledSeconds {
		t.Errorf("%d attempts, stored %v, totals %+v; report: %d attempts, %+v", len(v.Attempts), v.Stored, v.Totals, attempts, rep)
	}
}

// TestStreamCoalescesForSlowClients checks that a browser that does not
// read its stream costs the job nothing: events keep being taken while
// the stream is stuck, and the browser then gets the latest state in a
// few messages, not one per event.
func TestStreamCoalescesForSlowClients(t *testing.T) {
	srv := serve(t, ui.Config{Interval: 10 * time.Millisecond})
	events, attempts := bigJobEvents(4000, 50, 200)
	lines := bytes.Split(bytes.TrimSpace(events), []byte("\n"))
	// A client that connects and then reads nothing for a while.
	resp, err := http.Get("http://" + srv.Addr() + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// And one that follows closely, encoding messages while events
	// change the state (the race detector checks they share nothing).
	follower := make(chan int)
	go func() {
		msgs := streamMessages(t, srv, "", 3*time.Second)
		follower <- len(msgs)
	}()
	start := time.Now()
	for i, l := range lines {
		srv.JobEvent(l)
		if i%100 == 0 {
			srv.JobEvent([]byte(fmt.Sprintf(`{"event":"shuffle_stored","job":"job-big","shuffle":%d,"bytes":%d}`, i%3, i)))
		}
	}
	t.Logf("%d events taken in %v while a client was not reading", len(lines), time.Since(start))
	// Now read: messages until one shows the finished job.
	br := bufio.NewReader(resp.Body)
	messages := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d messages: %v", messages, err)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		messages++
		var m struct {
			Job *struct {
				Status   string
				Attempts [][10]int64
			}
		}
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatal(err)
		}
		if m.Job != nil && m.Job.Status == "succeeded" {
			break
		}
	}
	if n := <-follower; n == 0 {
		t.Error("the following client got no message")
	}
	// At most one message per interval, whatever the number of events.
	if limit := int(time.Since(start)/(10*time.Millisecond)) + 3; messages > limit || messages > len(lines)/20 {
		t.Errorf("the stream sent %d messages for %d events (%d attempts) in %v: it should coalesce", messages, len(lines),
			attempts, time.Since(start))
	}
}

func TestLoadEventsErrors(t *testing.T) {
	srv := serve(t, ui.Config{})
	bad := `{"event":"job_start","job":"j1","time":"2026-01-01T00:00:00Z","stages":1}` + "\n" + `{"event":` + "\n"
	if err := srv.LoadEvents(strings.NewReader(bad), "ev.jsonl"); err == nil || !strings.Contains(err.Error(), "ev.jsonl:2:") {
		t.Errorf("a broken line: %v, want the file and line", err)
	}
	if err := srv.LoadEvents(strings.NewReader(`{"a":1}`+"\n"), "other.json"); err == nil || !strings.Contains(err.Error(), "not a Gale job event") {
		t.Errorf("not events: %v", err)
	}
	if err := srv.LoadEvents(strings.NewReader(""), "empty.jsonl"); err == nil || !strings.Contains(err.Error(), "no job events") {
		t.Errorf("empty: %v", err)
	}
	cut := `{"event":"job_start","job":"j2","time":"2026-01-01T00:00:00Z","stages":1}` + "\n" +
		`{"event":"task_start","job":"j2","time":"2026-01-01T00:00:01Z","stage":0,"task":0,"attempt":1}` + "\n"
	if err := srv.LoadEvents(strings.NewReader(cut), "cut.jsonl"); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddReport(&engine.Report{JobID: "j9"}); err == nil || !strings.Contains(err.Error(), "j2") {
		t.Errorf("a report of another job: %v", err)
	}
	var jobs []struct{ ID, Status string }
	getJSON(t, srv, "/api/jobs", &jobs)
	if len(jobs) != 1 || jobs[0].ID != "j2" || jobs[0].Status != "unfinished" {
		t.Errorf("jobs %+v, want j2 unfinished", jobs)
	}
}

// streamMessages connects to the stream with the given Last-Event-ID
// ("" for none) and returns the messages it sends within d.
func streamMessages(t *testing.T, srv *ui.Server, lastID string, d time.Duration) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+srv.Addr()+"/api/stream", nil)
	if err != nil {
		t.Error(err)
		return nil
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	var msgs []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Error(err)
				return msgs
			}
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// TestStreamResumes checks what a stream sends first: everything to a new
// page, what changed since to a page that reconnects, everything again to
// a page whose id is of another server; and that an idle stream sends
// nothing more.
func TestStreamResumes(t *testing.T) {
	srv := serve(t, ui.Config{Interval: 10 * time.Millisecond})
	if msgs := streamMessages(t, srv, "", 300*time.Millisecond); len(msgs) != 1 || msgs[0]["job"] != nil {
		t.Errorf("an idle server sent %d messages (%v), want 1 with no job", len(msgs), msgs)
	}
	events, _ := bigJobEvents(20, 2, 4)
	lines := bytes.Split(bytes.TrimSpace(events), []byte("\n"))
	for _, l := range lines[:10] {
		srv.JobEvent(l)
	}
	first := streamMessages(t, srv, "", 200*time.Millisecond)
	if len(first) != 1 || first[0]["job"].(map[string]any)["full"] != true {
		t.Fatalf("a new page got %v, want one full message", first)
	}
	ver := first[0]["ver"].(float64)
	for _, l := range lines[10:] {
		srv.JobEvent(l)
	}
	again := streamMessages(t, srv, fmt.Sprintf("job-big:%d", int(ver)), 200*time.Millisecond)
	if len(again) != 1 {
		t.Fatalf("a reconnecting page got %d messages", len(again))
	}
	job := again[0]["job"].(map[string]any)
	if job["full"] != false || len(job["attempts"].([]any)) == 0 || job["status"] != "succeeded" {
		t.Errorf("a reconnecting page got %v, want what changed since version %v", job, ver)
	}
	for _, a := range job["attempts"].([]any) {
		if idx := a.([]any)[0].(float64); idx < 4 && a.([]any)[6].(float64) == 0 {
			t.Errorf("attempt %v is sent as running again", a)
		}
	}
	stranger := streamMessages(t, srv, "job-big:999999", 200*time.Millisecond)
	if len(stranger) != 1 || stranger[0]["job"].(map[string]any)["full"] != true {
		t.Errorf("a page of another server got %v, want one full message", stranger)
	}
}

// TestSimulatedTotals runs a job on a simulated platform and checks the
// totals the page reads: the simulated makespan, billed time and cost.
func TestSimulatedTotals(t *testing.T) {
	cfg, err := sim.DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg.Handler = w.Handle
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := serve(t, ui.Config{})
	p := gale.NewPipeline()
	gale.Collect(gale.Map(gale.FromSlice(p, []string{"a", "b", "c", "d", "e", "f"}), failOnPoison))
	rep, err := gale.Run(context.Background(), p, gale.WithBackend("sim:aws", b), gale.Workers(3), gale.WithMonitor(srv))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Backend string
		Totals  struct {
			SimulatedSeconds float64 `json:"simulated_seconds"`
			BilledSeconds    float64 `json:"billed_seconds"`
			CostUSD          float64 `json:"cost_usd"`
		}
	}
	getJSON(t, srv, "/api/jobs/"+rep.JobID, &v)
	if v.Backend != "sim:aws" || v.Totals.SimulatedSeconds != rep.SimulatedSeconds || rep.SimulatedSeconds <= 0 ||
		v.Totals.BilledSeconds != rep.BilledSeconds || v.Totals.CostUSD != rep.Cost || rep.Cost <= 0 {
		t.Errorf("totals %+v on %s; report: simulated %v s, billed %v s, $%v", v.Totals, v.Backend, rep.SimulatedSeconds,
			rep.BilledSeconds, rep.Cost)
	}
}
