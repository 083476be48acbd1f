package state

import (
	"context"
	"testing"
)

const testToken = "test-token"

// startServer runs a server on loopback until the test ends.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, addrs ...string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), ClientConfig{Servers: addrs, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
