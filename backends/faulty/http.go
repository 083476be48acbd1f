package faulty

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// StoreFault is what happens to one request to an object store.
type StoreFault int

// The storage faults; see HTTPConfig.
const (
	// StoreNone passes the request to the server unchanged.
	StoreNone StoreFault = iota
	// StoreSlowDown answers 503 SlowDown without passing the request on,
	// as S3 does when a prefix gets more requests than it takes.
	StoreSlowDown
	// StoreError answers 500 InternalError without passing the request on.
	StoreError
	// StoreErrorAfter passes the request on, discards the server's answer
	// and answers 500 InternalError: a write may have happened, and the
	// client cannot tell.
	StoreErrorAfter
	// StoreCut passes the request on and sends the server's answer with
	// the whole body's length but only half of the body, then closes the
	// connection (a connection reset mid-transfer).
	StoreCut
	// StoreSlow holds the request for a random time up to
	// HTTPConfig.MaxDelay before passing it on.
	StoreSlow
)

func (f StoreFault) String() string {
	switch f {
	case StoreNone:
		return "none"
	case StoreSlowDown:
		return "slowdown"
	case StoreError:
		return "error"
	case StoreErrorAfter:
		return "error-after"
	case StoreCut:
		return "cut"
	case StoreSlow:
		return "slow"
	}
	return fmt.Sprintf("store-fault(%d)", int(f))
}

// HTTPConfig says which faults an HTTPHandler injects into the requests
// to the S3-compatible server it fronts.
type HTTPConfig struct {
	// Seed seeds the random decisions.
	Seed uint64
	// SlowDownRate, ErrorRate, ErrorAfterRate, CutRate and SlowRate are
	// the probabilities, each in [0, 1] and together at most 1, that a
	// request gets that fault (StoreSlowDown, ...); the rest pass
	// unchanged. Ignored when Rule is set.
	SlowDownRate, ErrorRate, ErrorAfterRate, CutRate, SlowRate float64
	// MaxDelay bounds a StoreSlow request's hold, drawn uniformly in
	// (0, MaxDelay]. Default 50 ms.
	MaxDelay time.Duration
	// Rule, when set, chooses every request's fault instead of the rates.
	// n counts the requests with the same method, path and query so far,
	// this one included. It is called under the handler's lock.
	Rule func(r *http.Request, n int) StoreFault
}

// Validate reports every problem with c.
func (c HTTPConfig) Validate() error {
	var errs []error
	sum := 0.0
	for _, r := range []struct {
		name string
		v    float64
	}{{"SlowDownRate", c.SlowDownRate}, {"ErrorRate", c.ErrorRate}, {"ErrorAfterRate", c.ErrorAfterRate},
		{"CutRate", c.CutRate}, {"SlowRate", c.SlowRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("faulty: HTTPConfig.%s is %v; must be in [0, 1]", r.name, r.v))
			continue
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		errs = append(errs, fmt.Errorf("faulty: the storage fault rates add up to %v; must be at most 1", sum))
	}
	if c.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("faulty: HTTPConfig.MaxDelay is %v; must not be negative", c.MaxDelay))
	}
	return errors.Join(errs...)
}

// StoreStats counts what an HTTPHandler injected.
type StoreStats struct {
	Requests                                            int64
	Passed, SlowDowns, Errors, ErrorsAfter, Cut, Slowed int64
}

// HTTPHandler is an http.Handler that fronts an S3-compatible server's
// handler and injects the failures object stores produce, with S3's own
// error answers, so that the real store clients (their retries, their
// checks of truncated bodies) meet them on the wire. Decisions are a pure
// function of the seed, the request's method, path and query, and how
// many such requests came before, so they do not depend on the order in
// which concurrent requests arrive.
//
// It starts no goroutines; it is safe for concurrent use.
type HTTPHandler struct {
	inner http.Handler
	cfg   HTTPConfig

	mu    sync.Mutex
	seen  map[string]int
	stats StoreStats
}

// NewHTTP returns a handler injecting faults in front of inner. It panics
// on an invalid configuration (test code).
func NewHTTP(inner http.Handler, cfg HTTPConfig) *HTTPHandler {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 50 * time.Millisecond
	}
	return &HTTPHandler{inner: inner, cfg: cfg, seen: map[string]int{}}
}

// Stats returns the counts so far.
func (h *HTTPHandler) Stats() StoreStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

func (h *HTTPHandler) decide(r *http.Request) (StoreFault, time.Duration) {
	key := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + " " + r.Header.Get("Range")
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[key]++
	n := h.seen[key]
	hs := fnv.New64a()
	_, _ = hs.Write([]byte(key))
	rng := rand.New(rand.NewPCG(h.cfg.Seed, hs.Sum64()^uint64(n)*0x9e3779b97f4a7c15))
	f := StoreNone
	if h.cfg.Rule != nil {
		f = h.cfg.Rule(r, n)
	} else {
		u := rng.Float64()
		for _, c := range []struct {
			f    StoreFault
			rate float64
		}{{StoreSlowDown, h.cfg.SlowDownRate}, {StoreError, h.cfg.ErrorRate}, {StoreErrorAfter, h.cfg.ErrorAfterRate},
			{StoreCut, h.cfg.CutRate}, {StoreSlow, h.cfg.SlowRate}} {
			if u < c.rate {
				f = c.f
				break
			}
			u -= c.rate
		}
	}
	h.stats.Requests++
	switch f {
	case StoreSlowDown:
		h.stats.SlowDowns++
	case StoreError:
		h.stats.Errors++
	case StoreErrorAfter:
		h.stats.ErrorsAfter++
	case StoreCut:
		h.stats.Cut++
	case StoreSlow:
		h.stats.Slowed++
	default:
		f = StoreNone
		h.stats.Passed++
	}
	return f, time.Duration(rng.Int64N(int64(h.cfg.MaxDelay))) + 1
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, delay := h.decide(r)
	if f == StoreSlowDown || f == StoreError {
		// Take the request's body first, as a server does before it
		// answers, so the client reads the answer instead of failing to
		// write the body.
		_, _ = io.Copy(io.Discard, r.Body)
	}
	switch f {
	case StoreSlowDown:
		s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case StoreError:
		s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case StoreSlow:
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	case StoreErrorAfter:
		h.inner.ServeHTTP(httptest.NewRecorder(), r)
		s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case StoreCut:
		rec := httptest.NewRecorder()
		h.inner.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		hj, ok := w.(http.Hijacker)
		if r.Method == http.MethodHead || len(body) < 2 || !ok {
			copyResponse(w, rec)
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		res := rec.Result()
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		res.Body = http.NoBody
		res.Close = true
		// Write the status line and headers announcing the whole body,
		// then half of it, and drop the connection.
		var head bytes.Buffer
		fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\n", res.StatusCode, http.StatusText(res.StatusCode))
		_ = res.Header.Write(&head)
		head.WriteString("\r\n")
		head.Write(body[:len(body)/2])
		_, _ = buf.Write(head.Bytes())
		_ = buf.Flush()
		return
	}
	h.inner.ServeHTTP(w, r)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// s3Error answers as S3 does: an XML error document with the code.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>gale-faulty</RequestId></Error>`,
		code, msg, r.URL.Path)
}
