package threads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/state"
)

// LocalConfig configures an all-in-process setup: an embedded DSO server on
// loopback, the local backend running reg's functions, and an executor.
type LocalConfig struct {
	// Registry holds the thread functions. Required.
	Registry *Registry
	// Types holds the user-defined object types the embedded server hosts.
	Types *state.Registry
	// Concurrency is the local backend's number of slots; threads that
	// block on each other (barriers) need one slot each. Default 64.
	Concurrency int
	// Retry is the executor's retry policy.
	Retry RetryPolicy
	// Backend, if set, runs the threads instead of an in-process local
	// backend — worker processes, say, whose binary serves Kind with this
	// Registry's functions. The caller keeps ownership of it.
	Backend backends.Backend
}

// Local is an embedded DSO server, a local backend and an executor wired
// together: the default for running a Gale program on one machine.
type Local struct {
	// Executor starts threads on the local backend.
	Executor *Executor
	// DSO is a client to the embedded server, for the driver's own calls.
	DSO *state.Client
	// Servers and Token reach the embedded server.
	Servers []string
	Token   string

	srv     *state.Server
	backend *local.Backend
	worker  *Worker
	serving sync.WaitGroup
	serr    error
	once    sync.Once
}

// StartLocal starts the embedded server (its Serve goroutine is owned by
// the returned Local) and connects everything. Close stops it all.
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.Registry == nil {
		return nil, errors.New("threads: LocalConfig.Registry is required")
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 64
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("threads: generating a DSO token: %w", err)
	}
	l := &Local{Token: hex.EncodeToString(tok[:])}
	srv, err := state.NewServer(state.ServerConfig{Token: l.Token, Registry: cfg.Types})
	if err != nil {
		return nil, err
	}
	l.srv = srv
	l.Servers = []string{srv.Addr()}
	l.serving.Add(1)
	go func() {
		defer l.serving.Done()
		l.serr = srv.Serve(context.WithoutCancel(ctx))
	}()
	backend := cfg.Backend
	if backend == nil {
		l.worker = NewWorker(cfg.Registry)
		if l.backend, err = local.New(local.Config{Handler: l.worker.Handle, Concurrency: cfg.Concurrency}); err != nil {
			_ = l.Close()
			return nil, err
		}
		backend = l.backend
	}
	if l.Executor, err = NewExecutor(Config{Backend: backend, DSO: &DSO{Servers: l.Servers, Token: l.Token}, Retry: cfg.Retry}); err != nil {
		_ = l.Close()
		return nil, err
	}
	if l.DSO, err = state.Dial(ctx, state.ClientConfig{Servers: l.Servers, Token: l.Token}); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// Close stops the executor, the backend, the workers' clients and the
// server, and waits for them. It is idempotent.
func (l *Local) Close() error {
	var errs []error
	l.once.Do(func() {
		if l.Executor != nil {
			errs = append(errs, l.Executor.Close())
		}
		if l.backend != nil {
			errs = append(errs, l.backend.Close())
		}
		if l.worker != nil {
			errs = append(errs, l.worker.Close())
		}
		if l.DSO != nil {
			errs = append(errs, l.DSO.Close())
		}
		errs = append(errs, l.srv.Close())
		l.serving.Wait()
		errs = append(errs, l.serr)
	})
	return errors.Join(errs...)
}
