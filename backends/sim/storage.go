package sim

import (
	"encoding/json"
	"errors"
	"math"
	"time"
)

// Storage models the object store a platform's functions read their
// inputs from and write shuffles and outputs to. A job task's storage
// requests and bytes (its result's metrics, see ioDemand) become an I/O
// phase after its CPU demand: every request pays its latency one after
// the other (Gale's workers issue them in sequence), its bytes take their
// time at the function's bandwidth, and requests beyond their prefix's
// rate wait (store.serve), as a client retrying the store's throttling
// error (S3's 503 SlowDown) with backoff would.
// docs/probe.md lists the source of every figure.
type Storage struct {
	// Name says what the figures are of, e.g. "S3 Standard".
	Name string
	// GetLatency and PutLatency are the time of one small request from a
	// function.
	GetLatency, PutLatency time.Duration
	// BandwidthBytesPerSecond is one function's transfer rate once a
	// request has started.
	BandwidthBytesPerSecond float64
	// GetsPerSecond and PutsPerSecond are the rates one key prefix
	// sustains; Prefixes is how many prefixes each tier's keys spread
	// over (Gale keeps each shuffle under one prefix: 1).
	GetsPerSecond, PutsPerSecond float64
	Prefixes                     int
	// PricePerGet and PricePerPut are the list prices of one request in
	// US dollars.
	PricePerGet, PricePerPut float64
}

// Modelled reports whether s models a store (a zero Storage does not:
// tasks' storage requests then cost no simulated time).
func (s Storage) Modelled() bool { return s.Name != "" }

// Validate reports every problem with s.
func (s Storage) Validate() error {
	if !s.Modelled() {
		return nil
	}
	var errs []error
	if s.GetLatency < 0 || s.PutLatency < 0 || s.BandwidthBytesPerSecond <= 0 || s.GetsPerSecond <= 0 || s.PutsPerSecond <= 0 {
		errs = append(errs, errors.New("sim: Storage needs non-negative latencies and positive bandwidth and request rates"))
	}
	if s.Prefixes < 0 || s.PricePerGet < 0 || s.PricePerPut < 0 {
		errs = append(errs, errors.New("sim: Storage.Prefixes and prices must not be negative"))
	}
	return errors.Join(errs...)
}

// S3 returns the model of Amazon S3 Standard as Lambda functions see it.
func S3() Storage {
	return Storage{
		Name: "S3 Standard",
		// Thesis Table 4.2: sequential 1 KiB operations from a function.
		GetLatency: 23100 * time.Microsecond, PutLatency: 34900 * time.Microsecond,
		// Assumed: a single stream from one function; published
		// measurements of Lambda reading S3 lie between about 50 and
		// 100 MB/s per function.
		BandwidthBytesPerSecond: 50 << 20,
		// S3's documented per-prefix request rates.
		GetsPerSecond: 5500, PutsPerSecond: 3500, Prefixes: 1,
		// S3 Standard, us-east-1 list prices: $0.0004 per 1,000 GET,
		// $0.005 per 1,000 PUT, COPY, POST or LIST.
		PricePerGet: 0.0004 / 1000, PricePerPut: 0.005 / 1000,
	}
}

// ioDemand is what a finished task asked of storage, read from its result
// (the engine's TaskResult metrics; the field names are that wire format's).
type ioDemand struct {
	ObjectGets  int64 `json:"object_gets"`
	ObjectPuts  int64 `json:"object_puts"`
	ShuffleGets int64 `json:"shuffle_gets"`
	ShufflePuts int64 `json:"shuffle_puts"`
	BytesRead   int64 // object and shuffle bytes read
	BytesWrite  int64 // object and shuffle bytes written
}

// parseIODemand reads a task result's storage metrics; a result without
// them (a probe answer, another handler's) demands nothing.
func parseIODemand(out []byte) ioDemand {
	var r struct {
		Metrics struct {
			ioDemand
			ObjectBytesRead     int64 `json:"object_bytes_read"`
			ObjectBytesWritten  int64 `json:"object_bytes_written"`
			ShuffleBytesRead    int64 `json:"shuffle_bytes_read"`
			ShuffleBytesWritten int64 `json:"shuffle_bytes_written"`
		} `json:"metrics"`
	}
	if json.Unmarshal(out, &r) != nil {
		return ioDemand{}
	}
	d := r.Metrics.ioDemand
	d.BytesRead = r.Metrics.ObjectBytesRead + r.Metrics.ShuffleBytesRead
	d.BytesWrite = r.Metrics.ObjectBytesWritten + r.Metrics.ShuffleBytesWritten
	return d
}

func (d ioDemand) requests() int64 {
	return d.ObjectGets + d.ObjectPuts + d.ShuffleGets + d.ShufflePuts
}

// store is the model's state of a Storage: the I/O phases running
// against each rate-limited class of requests.
type store struct {
	s Storage
	// active holds, per class (object GET, object PUT, shuffle GET,
	// shuffle PUT), the I/O phases using it: when each ends and the
	// request rate it asks for.
	active [4][]demand
	// Totals across the run.
	gets, puts, throttled int64
}

type demand struct {
	end  time.Duration
	rate float64 // requests per second
}

// serve runs a task's storage requests from now and returns how long its
// I/O phase takes. Alone, the phase takes its nominal time: every
// request's latency in sequence plus its bytes at the function's
// bandwidth, so it asks each class for n/nominal requests per second.
// When the phases using a class together ask for more than the class's
// rate (per prefix, times the prefixes), the new phase gets the share of
// the rate its demand makes among them and is stretched to match; the
// requests beyond its share count as throttled (a client retrying S3's
// 503 SlowDown with backoff waits as long). Phases already running keep
// their pace (the model is first come, first served).
func (st *store) serve(now time.Duration, d ioDemand) time.Duration {
	s := st.s
	nominal := time.Duration(d.ObjectGets+d.ShuffleGets)*s.GetLatency + time.Duration(d.ObjectPuts+d.ShufflePuts)*s.PutLatency +
		time.Duration(float64(d.BytesRead+d.BytesWrite)/s.BandwidthBytesPerSecond*float64(time.Second))
	nominal = max(nominal, time.Millisecond)
	dur := nominal
	prefixes := float64(max(s.Prefixes, 1))
	counts := []int64{d.ObjectGets, d.ObjectPuts, d.ShuffleGets, d.ShufflePuts}
	rates := make([]float64, 4)
	for i, n := range counts {
		if n == 0 {
			continue
		}
		capacity := s.GetsPerSecond * prefixes
		if i%2 == 1 {
			capacity = s.PutsPerSecond * prefixes
		}
		// Phases that have ended no longer load the class.
		act := st.active[i][:0]
		var load float64
		for _, a := range st.active[i] {
			if a.end > now {
				act = append(act, a)
				load += a.rate
			}
		}
		st.active[i] = act
		r := float64(n) / nominal.Seconds()
		rates[i] = r
		if total := load + r; total > capacity {
			dur = max(dur, time.Duration(float64(nominal)*total/capacity))
			st.throttled += int64(math.Ceil(float64(n) * (1 - capacity/total)))
		}
	}
	for i, n := range counts {
		if n > 0 {
			st.active[i] = append(st.active[i], demand{end: now + dur, rate: rates[i]})
		}
	}
	st.gets += d.ObjectGets + d.ShuffleGets
	st.puts += d.ObjectPuts + d.ShufflePuts
	return dur
}

// cost is the list price of the requests served so far.
func (st *store) cost() float64 {
	return float64(st.gets)*st.s.PricePerGet + float64(st.puts)*st.s.PricePerPut
}
