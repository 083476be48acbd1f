package faulty_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/galeproject/gale/backends/faulty"
)

// objects is a tiny key-value HTTP server: PUT stores the body, GET
// returns it.
type objects struct {
	puts atomic.Int64
	data atomic.Value // string
}

func (o *objects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		o.data.Store(string(b))
		o.puts.Add(1)
	case http.MethodGet:
		s, _ := o.data.Load().(string)
		io.WriteString(w, s)
	}
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func alwaysStore(f faulty.StoreFault) func(*http.Request, int) faulty.StoreFault {
	return func(*http.Request, int) faulty.StoreFault { return f }
}

func do(t *testing.T, method, url, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestHTTPSlowDownAnswersLikeS3WithoutPassingOn(t *testing.T) {
	inner := &objects{}
	h := faulty.NewHTTP(inner, faulty.HTTPConfig{Rule: alwaysStore(faulty.StoreSlowDown)})
	srv := serve(t, h)
	res, body, err := do(t, http.MethodPut, srv.URL+"/bucket/key", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>SlowDown</Code>") {
		t.Errorf("answer %d %q; want 503 with code SlowDown", res.StatusCode, body)
	}
	if inner.puts.Load() != 0 {
		t.Error("a request answered SlowDown reached the server")
	}
	if s := h.Stats(); s.SlowDowns != 1 || s.Requests != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestHTTPErrorAfterPassesOnAndFails(t *testing.T) {
	inner := &objects{}
	srv := serve(t, faulty.NewHTTP(inner, faulty.HTTPConfig{Rule: alwaysStore(faulty.StoreErrorAfter)}))
	res, body, err := do(t, http.MethodPut, srv.URL+"/bucket/key", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "InternalError") {
		t.Errorf("answer %d %q; want 500 InternalError", res.StatusCode, body)
	}
	if inner.puts.Load() != 1 {
		t.Error("the request did not reach the server before the error")
	}
}

func TestHTTPCutTruncatesTheBody(t *testing.T) {
	inner := &objects{}
	inner.data.Store(strings.Repeat("x", 10000))
	srv := serve(t, faulty.NewHTTP(inner, faulty.HTTPConfig{Rule: alwaysStore(faulty.StoreCut)}))
	res, body, err := do(t, http.MethodGet, srv.URL+"/bucket/key", "")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a cut body: %v (got %d bytes); want io.ErrUnexpectedEOF", err, len(body))
	}
	if res.ContentLength != 10000 {
		t.Errorf("Content-Length %d, want the whole body's 10000", res.ContentLength)
	}
}

func TestHTTPDecisionsAreReproducibleAndFollowRates(t *testing.T) {
	run := func(seed uint64) string {
		h := faulty.NewHTTP(&objects{}, faulty.HTTPConfig{Seed: seed, SlowDownRate: 0.2, ErrorRate: 0.2})
		srv := httptest.NewServer(h)
		defer srv.Close()
		var b strings.Builder
		for i := range 200 {
			res, _, err := do(t, http.MethodGet, fmt.Sprintf("%s/b/k%d", srv.URL, i%50), "")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(&b, res.StatusCode/100)
		}
		s := h.Stats()
		if s.SlowDowns < 15 || s.Errors < 15 || s.Passed < 80 {
			t.Errorf("seed %d: %+v; want about 40 of each fault in 200", seed, s)
		}
		return b.String()
	}
	if a, b := run(1), run(1); a != b {
		t.Errorf("seed 1 twice gave other faults:\n%s\n%s", a, b)
	}
	if a, b := run(1), run(2); a == b {
		t.Error("seeds 1 and 2 gave the same faults")
	}
}
