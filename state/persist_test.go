package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galeproject/gale/state/internal/wal"
)

func TestPersistenceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	reg := userRegistry()
	run := func(f func(c *Client)) {
		s, err := NewServer(ServerConfig{Token: testToken, DataDir: dir, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		c := dial(t, s.Addr())
		f(c)
		_ = c.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	run(func(c *Client) {
		p := c.AtomicLong("p").Persistent()
		for i := 0; i < 10; i++ {
			if _, err := p.AddAndGet(ctx, 3); err != nil {
				t.Fatal(err)
			}
		}
		_, _, _ = c.Map("m").Persistent().Put(ctx, "k", []byte("v"))
		_, _ = c.List("l").Persistent().Append(ctx, []byte("item"))
		_ = c.AtomicByteArray("a", 4).Persistent().Set(ctx, 1, 7)
		_, _ = Call[int64](ctx, c.Object("Centroids", "km").Persistent(), "Merge", []float64{2}, []int64{1})
		_, _ = c.AtomicLong("ephemeral").AddAndGet(ctx, 5)
		if _, err := c.AtomicLong("ephemeral").Persistent().Get(ctx); !errors.Is(err, ErrMismatch) {
			t.Errorf("persistent handle on an ephemeral object: %v", err)
		}
		b := c.CyclicBarrier("b", 2)
		b.flags |= 1 // the handle offers no Persistent; force the flag
		if _, err := b.Waiting(ctx); !errors.Is(err, ErrPersist) {
			t.Errorf("persistent barrier: %v", err)
		}
	})
	check := func(c *Client) {
		if v, _ := c.AtomicLong("p").Get(ctx); v != 30 {
			t.Errorf("p = %d, want 30", v)
		}
		if v, ok, _ := c.Map("m").Get(ctx, "k"); !ok || string(v) != "v" {
			t.Errorf("m[k] = %q %v", v, ok)
		}
		if v, _ := c.List("l").Get(ctx, 0); string(v) != "item" {
			t.Errorf("l[0] = %q", v)
		}
		if v, _ := c.AtomicByteArray("a", 4).Get(ctx, 1); v != 7 {
			t.Errorf("a[1] = %d", v)
		}
		if m, _ := Call[[]float64](ctx, c.Object("Centroids", "km"), "Means"); len(m) != 1 || m[0] != 2 {
			t.Errorf("Means = %v", m)
		}
		if v, _ := c.AtomicLong("ephemeral").Get(ctx); v != 0 {
			t.Errorf("ephemeral object survived: %d", v)
		}
	}
	run(check)
	run(check) // a second restart, from the snapshot written at Close
}

// copyDir copies a data directory as a crash would leave it.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	sort.Strings(m)
	return m
}

// TestPersistenceReplaysLogAfterCrash: the server is not closed, so only
// the log holds the calls; a torn final record is dropped.
func TestPersistenceReplaysLogAfterCrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := startServer(t, ServerConfig{DataDir: dir})
	c := dial(t, s.Addr())
	for i := 0; i < 5; i++ {
		if _, err := c.Counter("n").Persistent().Increment(ctx); err != nil {
			t.Fatal(err)
		}
	}
	crash := t.TempDir()
	copyDir(t, dir, crash)
	segs := segments(t, crash)
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write([]byte{0, 0, 0, 50, 1, 2, 3, 4, 9}) // a record cut short
	_ = f.Close()
	s2 := startServer(t, ServerConfig{DataDir: crash})
	c2 := dial(t, s2.Addr())
	if v, _ := c2.Counter("n").Get(ctx); v != 5 {
		t.Fatalf("n = %d after crash recovery, want 5", v)
	}
}

// TestDataDirLock: a second server on a data directory in use is refused
// (both would otherwise run, and the last to close would overwrite the
// other's writes).
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, ServerConfig{DataDir: dir})
	_, err := NewServer(ServerConfig{Token: testToken, DataDir: dir})
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second server on %s: %v, want ErrDataDirLocked naming it", dir, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := NewServer(ServerConfig{Token: testToken, DataDir: dir})
	if err != nil {
		t.Fatalf("after the first server closed: %v", err)
	}
	_ = s2.Close()
}

// TestDamagedLogRefusesStart flips a byte in a record in the middle of the
// log: start-up fails naming the offset and the repair command (instead of
// dropping that record and every later one and then emptying the log), and
// RepairDataDir keeps every record before it.
func TestDamagedLogRefusesStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := NewServer(ServerConfig{Token: testToken, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ctx) }()
	c := dial(t, s.Addr())
	l := c.List("l").Persistent()
	for i := 0; i < 10; i++ {
		if _, err := l.Append(ctx, []byte(fmt.Sprintf("item-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Keep the log as it is before Close checkpoints it.
	crash := t.TempDir()
	copyDir(t, dir, crash)
	_ = c.Close()
	_ = s.Close()
	segs := segments(t, crash)
	b, _ := os.ReadFile(segs[len(segs)-1])
	// Records are appended in order; item-6 sits in the 8th record (after
	// the creation record and six appends).
	i := strings.Index(string(b), "item-6")
	b[i] ^= 0x20
	_ = os.WriteFile(segs[len(segs)-1], b, 0o644)
	_, err = NewServer(ServerConfig{Token: testToken, DataDir: crash})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "gale dso repair --data-dir "+crash) ||
		!strings.Contains(err.Error(), "at byte ") {
		t.Fatalf("start on a damaged log: %v", err)
	}
	rep, err := RepairDataDir(crash)
	if err != nil || rep.Kept != 7 || len(rep.SetAside) != 1 || rep.Damaged == "" {
		t.Fatalf("RepairDataDir = %+v, %v", rep, err)
	}
	s2 := startServer(t, ServerConfig{DataDir: crash})
	c2 := dial(t, s2.Addr())
	items, err := c2.List("l").Range(ctx, 0, 100)
	if err != nil || len(items) != 6 || string(items[5]) != "item-5" {
		t.Fatalf("after repair: %q, %v", items, err)
	}
}

var errCrash = errors.New("injected crash")

// loadResult is what a load generator saw: every write it was told
// succeeded (acked), and every write whose outcome it does not know.
type loadResult struct {
	acked, unknown map[string]bool
	incAcked       int64
	incUnknown     int64
}

// runLoad appends unique items to a persistent List and increments a
// persistent Counter from several goroutines until stop is closed or a
// call fails (the server "crashed").
func runLoad(c *Client, prefix string, workers int, stop <-chan struct{}) loadResult {
	ctx := context.Background()
	res := loadResult{acked: map[string]bool{}, unknown: map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				item := fmt.Sprintf("%s/%d/%d", prefix, w, i)
				_, err := c.List("items").Persistent().Append(ctx, []byte(item))
				mu.Lock()
				if err == nil {
					res.acked[item] = true
				} else {
					res.unknown[item] = true
				}
				mu.Unlock()
				if err != nil {
					return
				}
				_, err = c.Counter("n").Persistent().Increment(ctx)
				mu.Lock()
				if err == nil {
					res.incAcked++
				} else {
					res.incUnknown++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return res
}

// checkExactlyOnce checks the persistent objects against everything the
// load generators were told: each acknowledged item exactly once, an item
// whose outcome was unknown at most once, nothing else; the counter
// between the acknowledged increments and those plus the unknown ones.
func checkExactlyOnce(t *testing.T, c *Client, acked, unknown map[string]bool, incAcked, incUnknown int64) {
	t.Helper()
	ctx := context.Background()
	items, err := c.List("items").Persistent().Range(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, it := range items {
		seen[string(it)]++
	}
	for it, n := range seen {
		if n > 1 {
			t.Fatalf("item %s is present %d times (a log record applied twice)", it, n)
		}
		if !acked[it] && !unknown[it] {
			t.Fatalf("item %s was never written", it)
		}
	}
	for it := range acked {
		if seen[it] != 1 {
			t.Fatalf("acknowledged item %s is missing (%d of %d acknowledged items present)", it, countIn(seen, acked), len(acked))
		}
	}
	n, err := c.Counter("n").Persistent().Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < incAcked || n > incAcked+incUnknown {
		t.Fatalf("counter = %d, want between %d acknowledged increments and %d", n, incAcked, incAcked+incUnknown)
	}
}

func countIn(seen map[string]int, set map[string]bool) int {
	n := 0
	for k := range set {
		if seen[k] > 0 {
			n++
		}
	}
	return n
}

// TestPersistenceCrashAtEveryStep stops the server's log at every step of
// an append, a log rotation and a snapshot installation (the first, second
// and fifth time each is reached) while clients write, with checkpoints
// every few KiB, then restarts the server on the directory as it was left:
// every acknowledged write is present exactly once. Before the write-ahead
// log numbered its records, a crash after installing a snapshot and before
// emptying the log replayed the log onto a snapshot that already held it.
func TestPersistenceCrashAtEveryStep(t *testing.T) {
	for _, p := range wal.Points {
		for _, nth := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("%s#%d", p, nth), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				var mu sync.Mutex
				hits, crashed := 0, false
				hook := func(at wal.Point) error {
					mu.Lock()
					defer mu.Unlock()
					if at == p {
						hits++
						if hits == nth {
							crashed = true
							return errCrash
						}
					}
					return nil
				}
				cfg := ServerConfig{Token: testToken, DataDir: dir, CheckpointBytes: 2 << 10, walHook: hook}
				s, err := NewServer(cfg)
				if err != nil {
					// The start-up checkpoint crashed; start again.
					if !errors.Is(err, errCrash) {
						t.Fatal(err)
					}
					cfg.walHook = nil
					if s, err = NewServer(cfg); err != nil {
						t.Fatal(err)
					}
				}
				go func() { _ = s.Serve(context.Background()) }()
				c := dial(t, s.Addr())
				stop := make(chan struct{})
				time.AfterFunc(1500*time.Millisecond, func() { close(stop) })
				res := runLoad(c, "a", 4, stop)
				_ = c.Close()
				_ = s.Close() // checkpoints unless the log is broken
				mu.Lock()
				if !crashed {
					t.Fatalf("step %s was not reached %d times (%d)", p, nth, hits)
				}
				mu.Unlock()
				s2 := startServer(t, ServerConfig{DataDir: dir})
				c2 := dial(t, s2.Addr())
				checkExactlyOnce(t, c2, res.acked, res.unknown, res.incAcked, res.incUnknown)
			})
		}
	}
}

// The helper process of TestPersistenceSIGKILL: a DSO server on a data
// directory, printing its address.
func init() {
	dir := os.Getenv("GALE_STATE_TEST_SERVER_DIR")
	if dir == "" {
		return
	}
	s, err := NewServer(ServerConfig{Token: testToken, DataDir: dir, CheckpointBytes: 8 << 10})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("addr:", s.Addr())
	_ = s.Serve(context.Background())
	os.Exit(0)
}

func startServerProcess(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GALE_STATE_TEST_SERVER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr: ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("server process: %q, %v", line, err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "addr: "))
}

// TestPersistenceSIGKILL kills a server process with SIGKILL under write
// load, six times, with checkpoints every 8 KiB of log so that kills land
// in rotations too; after each restart every acknowledged write is present
// exactly once.
func TestPersistenceSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	all := loadResult{acked: map[string]bool{}, unknown: map[string]bool{}}
	for round := 0; round < 6; round++ {
		cmd, addr := startServerProcess(t, dir)
		c := dial(t, addr)
		if round > 0 {
			checkExactlyOnce(t, c, all.acked, all.unknown, all.incAcked, all.incUnknown)
		}
		stop := make(chan struct{})
		killAfter := time.Duration(100+rng.IntN(400)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		res := runLoad(c, fmt.Sprintf("r%d", round), 8, stop)
		close(stop)
		timer.Stop()
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		_ = c.Close()
		for k := range res.acked {
			all.acked[k] = true
		}
		for k := range res.unknown {
			all.unknown[k] = true
		}
		all.incAcked += res.incAcked
		all.incUnknown += res.incUnknown
		t.Logf("round %d: killed after %v, %d writes acknowledged", round, killAfter, len(res.acked))
	}
	cmd, addr := startServerProcess(t, dir)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c := dial(t, addr)
	checkExactlyOnce(t, c, all.acked, all.unknown, all.incAcked, all.incUnknown)
	if len(all.acked) < 100 {
		t.Errorf("only %d writes acknowledged in all; the test did not load the server", len(all.acked))
	}
}
