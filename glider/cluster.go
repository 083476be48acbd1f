package glider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ClusterConfig configures an in-process cluster: one metadata server and
// a number of storage and active servers, all on loopback. It is Gale's
// embedded default and what tests use.
type ClusterConfig struct {
	// Secret is the cluster secret; default a random one.
	Secret string
	// StorageServers is the number of DRAM storage servers; default 1.
	StorageServers int
	// ActiveServers is the number of active servers; default 1.
	ActiveServers int
	// Storage is the template of every storage server's config (Meta,
	// Secret and Addr are filled in); default DefaultStorageConfig().
	Storage StorageConfig
	// Active is the template of every active server's config (Meta,
	// Secret and Addr are filled in); default DefaultActiveConfig() with
	// Registry if set.
	Active ActiveConfig
	// Registry is the action registry of the active servers when
	// Active.Registry is nil; default DefaultRegistry().
	Registry *Registry
}

// DefaultClusterConfig returns one storage and one active server with the
// default configs.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{StorageServers: 1, ActiveServers: 1, Storage: DefaultStorageConfig(), Active: DefaultActiveConfig()}
}

// Validate reports every problem with the config at once.
func (c *ClusterConfig) Validate() error {
	var errs []error
	if c.StorageServers < 0 || c.ActiveServers < 0 {
		errs = append(errs, errors.New("glider: cluster config: server counts must not be negative"))
	}
	if c.Secret != "" && len(c.Secret) < minSecret {
		errs = append(errs, fmt.Errorf("glider: cluster config: Secret must be at least %d bytes (or empty for a random one)", minSecret))
	}
	return errors.Join(errs...)
}

// Cluster runs a metadata server and its storage and active servers in
// this process. Servers can be added and removed while it runs (to test or
// exercise join and leave). Create it with NewCluster and start it with
// Start (or Serve); stop it with Close.
type Cluster struct {
	cfg  ClusterConfig
	meta *Meta

	mu      sync.Mutex
	storage []*Storage
	active  []*Active
	ctx     context.Context // the servers' lifetime, set by Start
	cancel  context.CancelFunc
	errs    []error
	closed  bool

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewCluster validates cfg and creates the metadata server (bound, not
// serving). It starts nothing.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		cfg.Secret = hex.EncodeToString(b[:])
	}
	if cfg.StorageServers == 0 && cfg.ActiveServers == 0 {
		cfg.StorageServers, cfg.ActiveServers = 1, 1
	}
	mc := DefaultMetaConfig()
	mc.Secret = cfg.Secret
	m, err := NewMeta(mc)
	if err != nil {
		return nil, err
	}
	return &Cluster{cfg: cfg, meta: m}, nil
}

// Start serves the cluster on goroutines owned by the Cluster and returns
// once every initial server has joined. ctx bounds start-up only; stop
// the cluster with Close.
func (cl *Cluster) Start(ctx context.Context) error {
	cl.mu.Lock()
	if cl.ctx != nil || cl.closed {
		cl.mu.Unlock()
		return errors.New("glider: cluster already started or closed")
	}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	cl.wg.Go(func() { cl.record(cl.meta.Serve(cl.ctx)) })
	cl.mu.Unlock()
	for i := 0; i < cl.cfg.StorageServers; i++ {
		if _, err := cl.AddStorage(ctx); err != nil {
			return errors.Join(err, cl.Close())
		}
	}
	for i := 0; i < cl.cfg.ActiveServers; i++ {
		if _, err := cl.AddActive(ctx); err != nil {
			return errors.Join(err, cl.Close())
		}
	}
	return nil
}

// Serve starts the cluster and blocks until ctx is done, then closes it.
func (cl *Cluster) Serve(ctx context.Context) error {
	if err := cl.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return cl.Close()
}

func (cl *Cluster) record(err error) {
	if err != nil {
		cl.mu.Lock()
		cl.errs = append(cl.errs, err)
		cl.mu.Unlock()
	}
}

// MetaAddr returns the metadata server's address.
func (cl *Cluster) MetaAddr() string { return cl.meta.Addr() }

// Secret returns the cluster secret.
func (cl *Cluster) Secret() string { return cl.cfg.Secret }

// Token returns the token of namespace ns.
func (cl *Cluster) Token(ns string) string { return NamespaceToken(cl.cfg.Secret, ns) }

// Dial returns a client of namespace ns.
func (cl *Cluster) Dial(ctx context.Context, ns string) (*Client, error) {
	return Dial(ctx, ClientConfig{Meta: cl.MetaAddr(), Namespace: ns, Token: cl.Token(ns)})
}

// AddStorage starts one more storage server and waits until it joined.
func (cl *Cluster) AddStorage(ctx context.Context) (*Storage, error) {
	sc := cl.cfg.Storage
	if sc.BlockSize == 0 && sc.Class == "" && sc.Capacity == 0 {
		sc = DefaultStorageConfig()
	}
	sc.Meta, sc.Secret, sc.Addr, sc.Listener = cl.MetaAddr(), cl.cfg.Secret, "127.0.0.1:0", nil
	s, err := NewStorage(sc)
	if err != nil {
		return nil, err
	}
	if err := cl.serve(ctx, s.Serve, s.Close, s.Ready()); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	cl.storage = append(cl.storage, s)
	cl.mu.Unlock()
	return s, nil
}

// AddActive starts one more active server and waits until it joined.
func (cl *Cluster) AddActive(ctx context.Context) (*Active, error) {
	ac := cl.cfg.Active
	if ac.Slots == 0 && ac.Class == "" && ac.Registry == nil {
		ac = DefaultActiveConfig()
	}
	if ac.Registry == nil {
		ac.Registry = cl.cfg.Registry
	}
	ac.Meta, ac.Secret, ac.Addr, ac.Listener = cl.MetaAddr(), cl.cfg.Secret, "127.0.0.1:0", nil
	a, err := NewActive(ac)
	if err != nil {
		return nil, err
	}
	if err := cl.serve(ctx, a.Serve, a.Close, a.Ready()); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	cl.active = append(cl.active, a)
	cl.mu.Unlock()
	return a, nil
}

func (cl *Cluster) serve(ctx context.Context, serve func(context.Context) error, closeFn func() error, ready <-chan struct{}) error {
	cl.mu.Lock()
	if cl.ctx == nil || cl.closed {
		cl.mu.Unlock()
		_ = closeFn()
		return errors.New("glider: cluster not running")
	}
	sctx := cl.ctx
	exited := make(chan error, 1)
	cl.wg.Go(func() {
		err := serve(sctx)
		exited <- err
		cl.record(err)
	})
	cl.mu.Unlock()
	select {
	case <-ready:
		return nil
	case err := <-exited:
		if err == nil {
			err = errors.New("glider: server stopped before joining")
		}
		return err
	case <-ctx.Done():
		_ = closeFn()
		return ctx.Err()
	}
}

// Storage returns the storage servers started so far (including closed
// ones).
func (cl *Cluster) Storage() []*Storage {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]*Storage(nil), cl.storage...)
}

// Active returns the active servers started so far (including closed
// ones).
func (cl *Cluster) Active() []*Active {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]*Active(nil), cl.active...)
}

// Close stops every server and waits for them. It is idempotent and
// returns the servers' errors.
func (cl *Cluster) Close() error {
	cl.closeOnce.Do(func() {
		cl.mu.Lock()
		cl.closed = true
		ss, as := cl.storage, cl.active
		cancel := cl.cancel
		cl.mu.Unlock()
		var errs []error
		for _, a := range as {
			errs = append(errs, a.Close())
		}
		for _, s := range ss {
			errs = append(errs, s.Close())
		}
		errs = append(errs, cl.meta.Close())
		if cancel != nil {
			cancel()
		}
		errs = append(errs, waitGroup(&cl.wg, 10*time.Second, "cluster"))
		cl.mu.Lock()
		for _, e := range cl.errs {
			// A server that lost the metadata server during shutdown is
			// not a failure of the cluster.
			if !errors.Is(e, ErrServerGone) {
				errs = append(errs, e)
			}
		}
		cl.mu.Unlock()
		cl.closeErr = errors.Join(errs...)
	})
	return cl.closeErr
}
