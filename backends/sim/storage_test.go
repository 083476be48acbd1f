package sim

import (
	"testing"
	"time"
)

// TestStorageServe checks the I/O phase the store model charges: a lone
// task's requests take their latencies and bytes their bandwidth time
// with nothing throttled; tasks that together ask a prefix for more than
// its rate are stretched to the rate, and the requests that waited count
// as throttled.
func TestStorageServe(t *testing.T) {
	s := S3()
	st := &store{s: s}
	d := ioDemand{ObjectGets: 1, ShufflePuts: 1, ShuffleGets: 10, BytesRead: 50 << 20}
	got := st.serve(0, d)
	want := 11*s.GetLatency + s.PutLatency + time.Second
	if got != want || st.throttled != 0 {
		t.Fatalf("lone task: %s with %d throttled, want %s and none", got, st.throttled, want)
	}
	// 1000 reduce tasks start together, each reading 1000 segments: a
	// million GETs against one prefix's 5,500 per second take about 182
	// s, not each task's 23.1 s of latencies.
	st = &store{s: s}
	var last time.Duration
	for range 1000 {
		last = max(last, st.serve(0, ioDemand{ShuffleGets: 1000}))
	}
	if lo, hi := 181*time.Second, 183*time.Second; last < lo || last > hi {
		t.Errorf("1000 x 1000 GETs took %s, want about 1e6/5500 s", last)
	}
	if st.throttled < 500_000 || st.throttled > 1_000_000 {
		t.Errorf("%d of 1,000,000 GETs throttled, want most (the prefix serves 127,000 in a task's 23.1 s)", st.throttled)
	}
	if st.gets != 1_000_000 || st.puts != 0 {
		t.Errorf("%d GETs, %d PUTs served", st.gets, st.puts)
	}
	if c, want := st.cost(), 0.4; c < want*0.999 || c > want*1.001 {
		t.Errorf("a million GETs cost $%f, want $%f", c, want)
	}
	// Spreading the keys over 10 prefixes gives ten times the rate.
	s.Prefixes = 10
	st = &store{s: s}
	last = 0
	for range 1000 {
		last = max(last, st.serve(0, ioDemand{ShuffleGets: 1000}))
	}
	if want := 1000 * s.GetLatency; last != want || st.throttled != 0 {
		t.Errorf("over 10 prefixes 1000 x 1000 GETs took %s with %d throttled, want each task's %s of latencies and none (55,000 per second suffice)",
			last, st.throttled, want)
	}
}

func TestParseIODemand(t *testing.T) {
	out := []byte(`{"version":3,"metrics":{"object_bytes_read":10,"shuffle_bytes_read":5,"shuffle_bytes_written":7,"object_gets":2,"shuffle_puts":1,"shuffle_gets":4}}`)
	d := parseIODemand(out)
	if want := (ioDemand{ObjectGets: 2, ShuffleGets: 4, ShufflePuts: 1, BytesRead: 15, BytesWrite: 7}); d != want {
		t.Errorf("%+v, want %+v", d, want)
	}
	if d := parseIODemand([]byte(`not json`)); d.requests() != 0 {
		t.Errorf("a result that is not JSON demands %+v", d)
	}
}
