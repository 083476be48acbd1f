package ui

import (
	"bufio"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/engine"
)

//go:embed static
var static embed.FS

// Config configures a dashboard server.
type Config struct {
	// Addr is the host:port to listen on. Default "127.0.0.1:0": a free
	// port on loopback.
	Addr string
	// AllowRemote allows an address other than loopback, where anyone who
	// can reach it sees the jobs (their plans, paths and errors); set a
	// Token then.
	AllowRemote bool
	// Token, when set, must accompany every request (?token=, or the
	// cookie the page sets from it).
	Token string
	// MaxJobs bounds the jobs kept; the oldest finished ones are dropped
	// first. Default 100.
	MaxJobs int
	// Interval is how often a page's stream sends what changed. Default
	// 250 ms.
	Interval time.Duration
	// CloseTimeout bounds how long Close waits for requests in progress.
	// Default 5 s.
	CloseTimeout time.Duration
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.MaxJobs < 0 || c.Interval < 0 || c.CloseTimeout < 0 {
		errs = append(errs, errors.New("ui: Config.MaxJobs, Interval and CloseTimeout must not be negative"))
	}
	if c.Addr != "" {
		host, _, err := net.SplitHostPort(c.Addr)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("ui: address %q: want host:port, e.g. 127.0.0.1:8080", c.Addr))
		case !c.AllowRemote && !IsLoopback(host):
			errs = append(errs, fmt.Errorf("ui: address %q is not loopback: the dashboard shows jobs' plans, paths and errors to anyone who reaches it; allow it explicitly (--ui-remote, Config.AllowRemote) and consider a token", c.Addr))
		}
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (a name or an IP address) is the
// loopback interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Server serves the dashboard of the jobs it is told about.
type Server struct {
	cfg  Config
	ln   net.Listener
	http *http.Server
	done chan struct{} // closed by Close: streams return

	mu       sync.Mutex
	ver      uint64 // bumped by every change
	jobs     map[string]*job
	seq      int
	problems []string // events that could not be read

	streams   sync.WaitGroup // stream handlers in progress
	closeOnce sync.Once
	closeErr  error
}

// NewServer validates cfg and binds the listening socket, so URL is known
// before Serve. It starts no goroutines.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxJobs == 0 {
		cfg.MaxJobs = 100
	}
	if cfg.Interval == 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ui: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln, jobs: map[string]*job{}, done: make(chan struct{})}
	s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the dashboard's address, with the token if there is one.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.Addr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost" // listening everywhere; loopback is one way in
	}
	u := "http://" + net.JoinHostPort(host, port) + "/"
	if s.cfg.Token != "" {
		u += "?token=" + url.QueryEscape(s.cfg.Token)
	}
	return u
}

// Serve answers requests until ctx is done or Close is called; then it
// closes the server and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	_ = s.Close()
	return fmt.Errorf("ui: serving on %s: %w", s.Addr(), err)
}

// Close ends every page's stream, stops the server and waits up to
// Config.CloseTimeout for requests in progress. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CloseTimeout)
		defer cancel()
		err := s.http.Shutdown(ctx)
		if err != nil {
			err = errors.Join(fmt.Errorf("ui: requests still in progress after %v", s.cfg.CloseTimeout), s.http.Close())
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		// Serve was never called: the listener is still open.
		if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
		s.streams.Wait()
		s.closeErr = err
	})
	return s.closeErr
}

var _ engine.Monitor = (*Server)(nil)

// JobEvent implements engine.Monitor: it folds one job event into the
// job's state. A line it cannot read is counted among the server's
// problems (shown on the page), never returned to the job.
func (s *Server) JobEvent(line []byte) {
	e, err := decodeEvent(line)
	if err != nil {
		s.mu.Lock()
		s.problem(fmt.Sprintf("an event could not be read: %v: %.200s", err, line))
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(e)
}

func (s *Server) apply(e *event) {
	j, ok := s.jobs[e.Job]
	if !ok {
		s.seq++
		j = newJob(e.Job, s.seq)
		s.jobs[e.Job] = j
		s.evict()
	}
	s.ver++
	j.apply(e, s.ver)
}

// problem records a problem; s.mu is held.
func (s *Server) problem(p string) {
	s.ver++
	if len(s.problems) < 100 {
		s.problems = append(s.problems, p)
	}
}

// evict drops the oldest finished jobs beyond MaxJobs; s.mu is held.
func (s *Server) evict() {
	if len(s.jobs) <= s.cfg.MaxJobs {
		return
	}
	for _, j := range s.sorted() {
		if len(s.jobs) <= s.cfg.MaxJobs {
			return
		}
		if j.status != statusRunning {
			delete(s.jobs, j.id)
		}
	}
}

// sorted returns the jobs in arrival order; s.mu is held.
func (s *Server) sorted() []*job {
	js := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		js = append(js, j)
	}
	sort.Slice(js, func(a, b int) bool { return js[a].seq < js[b].seq })
	return js
}

// LoadEvents reads a job events file (JSON lines, as gale run --events
// writes) into the server. name labels errors, which give the line. Jobs
// whose events end before their job_end are marked unfinished.
func (s *Server) LoadEvents(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var evs []*event
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		e, err := decodeEvent(line)
		if err != nil {
			return fmt.Errorf("ui: %s:%d: %w", name, n, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ui: reading %s: %w", name, err)
	}
	if len(evs) == 0 {
		return fmt.Errorf("ui: %s holds no job events", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range evs {
		s.apply(e)
		seen[e.Job] = true
	}
	for id := range seen {
		if j := s.jobs[id]; j != nil && j.status == statusRunning {
			j.status = statusUnfinished
			j.problems = append(j.problems, fmt.Sprintf("%s ends before this job's job_end event: the driver stopped without finishing it (killed, or its events file was cut short)", name))
		}
	}
	return nil
}

// AddReport adds a job's report (gale run --report-json) to the job of
// the same ID, whose events must have been loaded: the report's totals
// complete events that lack them.
func (s *Server) AddReport(r *engine.Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[r.JobID]
	if !ok {
		ids := make([]string, 0, len(s.jobs))
		for _, j := range s.sorted() {
			ids = append(ids, j.id)
		}
		return fmt.Errorf("ui: the report is of job %s, but the events are of %s; pass the events and the report of the same run",
			r.JobID, strings.Join(ids, ", "))
	}
	s.ver++
	j.addReport(r, s.ver)
	return nil
}

// handler routes the dashboard's requests.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.HandleFunc("GET /api/jobs", s.serveJobs)
	mux.HandleFunc("GET /api/jobs/{id}", s.serveJob)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	return s.guard(mux)
}

const tokenCookie = "gale_ui_token"

// guard refuses requests from elsewhere: on loopback, any whose Host is
// not a loopback name (a page of another site that resolved its own name
// to 127.0.0.1); with a token, any without it.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.AllowRemote {
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			if !IsLoopback(host) {
				http.Error(w, "ui: this dashboard answers only to loopback host names", http.StatusForbidden)
				return
			}
		}
		if s.cfg.Token != "" {
			got := r.URL.Query().Get("token")
			if got == "" {
				if c, err := r.Cookie(tokenCookie); err == nil {
					got = c.Value
				}
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
				http.Error(w, "ui: a valid token is required (open the URL gale printed, with its ?token=)", http.StatusUnauthorized)
				return
			}
			if r.URL.Query().Get("token") != "" {
				http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.cfg.Token, Path: "/", HttpOnly: true,
					SameSite: http.SameSiteStrictMode})
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) summaries() []jobSummary {
	js := s.sorted()
	out := make([]jobSummary, 0, len(js))
	for _, j := range js {
		out = append(out, j.summary())
	}
	return out
}

func (s *Server) serveJobs(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := s.summaries()
	s.mu.Unlock()
	writeJSON(w, out)
}

func (s *Server) serveJob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j, ok := s.jobs[r.PathValue("id")]
	var v *jobView
	if ok {
		v = j.view(0, time.Now())
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "ui: no such job", http.StatusNotFound)
		return
	}
	writeJSON(w, v)
}

// message is what the stream sends: the job list, and the state of the
// job the page shows (changed since the page's version).
type message struct {
	Ver      uint64       `json:"ver"`
	Jobs     []jobSummary `json:"jobs"`
	Job      *jobView     `json:"job"`
	Problems []string     `json:"problems,omitempty"`
}

// serveStream sends server-sent events: a message whenever something
// changed, at most every Config.Interval, coalescing whatever changed in
// between. ?job= picks the job; without it the stream follows the newest
// job. Each message's id is JOB:VERSION, so a browser that reconnects
// (EventSource does by itself) gets only what changed since.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	s.streams.Add(1)
	defer s.streams.Done()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	pinned := r.URL.Query().Get("job")
	sentJob, since := "", uint64(0)
	if id, v, ok := strings.Cut(r.Header.Get("Last-Event-ID"), ":"); ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			sentJob, since = id, n
		}
	}
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	lastWrite := time.Time{}
	first := true
	for {
		s.mu.Lock()
		if since > s.ver {
			// The id is of another server's versions (one that ran on
			// this address before): start afresh.
			sentJob, since = "", 0
		}
		var msg *message
		if s.ver > since || first {
			first = false
			msg = &message{Ver: s.ver, Jobs: s.summaries(), Problems: slices.Clone(s.problems)}
			id := pinned
			if id == "" {
				if js := s.sorted(); len(js) > 0 {
					id = js[len(js)-1].id
				}
			}
			if j, ok := s.jobs[id]; ok {
				from := since
				if id != sentJob {
					from = 0
				}
				msg.Job = j.view(from, time.Now())
				sentJob = id
			}
			since = s.ver
		}
		s.mu.Unlock()
		if msg != nil || time.Since(lastWrite) > 15*time.Second {
			// A browser that cannot take a message in this long is
			// dropped; it reconnects and gets what changed meanwhile.
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			var err error
			if msg != nil {
				var b []byte
				b, err = json.Marshal(msg)
				if err == nil {
					_, err = fmt.Fprintf(w, "id: %s:%d\ndata: %s\n\n", sentJob, msg.Ver, b)
				}
			} else {
				_, err = io.WriteString(w, ": keep-alive\n\n")
			}
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				return
			}
			lastWrite = time.Now()
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}
