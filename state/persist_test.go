package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
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

// TestPersistenceReplaysLogAfterCrash simulates a crash: the server is not
// closed, so only the log holds the calls; a torn final record is dropped.
func TestPersistenceReplaysLogAfterCrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := NewServer(ServerConfig{Token: testToken, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ctx) }()
	c := dial(t, s.Addr())
	for i := 0; i < 5; i++ {
		_, _ = c.Counter("n").Persistent().Increment(ctx)
	}
	// Copy the directory as a crash would leave it, plus a torn record.
	crash := t.TempDir()
	for _, name := range []string{logFile, snapshotFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == logFile {
			b = append(b, 0, 0, 0, 50, 1, 2, 3, 4, 9)
		}
		_ = os.WriteFile(filepath.Join(crash, name), b, 0o644)
	}
	_ = c.Close()
	_ = s.Close()
	s2 := startServer(t, ServerConfig{DataDir: crash})
	c2 := dial(t, s2.Addr())
	if v, _ := c2.Counter("n").Get(ctx); v != 5 {
		t.Fatalf("n = %d after crash recovery, want 5", v)
	}
}
