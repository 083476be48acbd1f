package state

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/galeproject/gale/state/internal/wal"
)

// ServerConfig configures a DSO server.
type ServerConfig struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0" (a free
	// loopback port; read it back with Server.Addr).
	Addr string
	// Listener, if set, is used instead of listening on Addr. The server
	// takes ownership and closes it.
	Listener net.Listener
	// Token is the shared secret every client must present. Required.
	Token string
	// MaxFrameBytes is the largest frame accepted from an authenticated
	// client. Default 64 MiB.
	MaxFrameBytes int
	// MaxInflightPerConn bounds the calls one connection may have running
	// at once (parked blocking calls do not count). Default 4096.
	MaxInflightPerConn int
	// HandshakeTimeout bounds how long an unauthenticated connection may
	// take to present its token. Default 5 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds Close: connections are closed at once, then Close
	// waits this long for goroutines to finish. Default 5 s.
	CloseTimeout time.Duration
	// Registry holds the user-defined object types this server can host.
	// Optional.
	Registry *Registry
	// DataDir, if set, is where persistent objects are stored (snapshot +
	// append-only log). Without it, creating a persistent object fails.
	DataDir string
	// SyncWrites makes every log append fsync before the call returns
	// (survives machine crashes, not only server restarts). Default false.
	SyncWrites bool
	// CheckpointBytes is the log size past which the server writes a
	// snapshot and starts a new log, while serving. Default 64 MiB; -1
	// checkpoints only at start-up and Close.
	CheckpointBytes int64
	// Logf, if set, receives messages about work the server does on its
	// own (a torn log record dropped at start-up, a failed background
	// checkpoint). Optional.
	Logf func(format string, args ...any)

	// Cluster, if set, makes the server a member of a replicated cluster:
	// persistent objects are then replicated, and DataDir holds the
	// member's replication log instead of an object log.
	Cluster *ClusterConfig

	// walHook stops the log at a step (tests only; see wal.Options.Hook).
	walHook func(wal.Point) error
}

// DefaultServerConfig returns a configuration with every default filled in;
// Token must still be set.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Addr:               "127.0.0.1:0",
		MaxFrameBytes:      64 << 20,
		MaxInflightPerConn: 4096,
		HandshakeTimeout:   5 * time.Second,
		CloseTimeout:       5 * time.Second,
		CheckpointBytes:    64 << 20,
	}
}

func (c *ServerConfig) fill() {
	d := DefaultServerConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxInflightPerConn == 0 {
		c.MaxInflightPerConn = d.MaxInflightPerConn
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = d.CloseTimeout
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = d.CheckpointBytes
	}
}

// Validate reports every problem with c. Zero values mean defaults.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.Token == "" {
		errs = append(errs, errors.New("state: ServerConfig.Token is required (clients authenticate with it)"))
	}
	if c.MaxFrameBytes < 0 || (c.MaxFrameBytes > 0 && c.MaxFrameBytes < 1024) {
		errs = append(errs, fmt.Errorf("state: ServerConfig.MaxFrameBytes must be 0 (default) or >= 1024, got %d", c.MaxFrameBytes))
	}
	if c.MaxInflightPerConn < 0 {
		errs = append(errs, fmt.Errorf("state: ServerConfig.MaxInflightPerConn must be >= 0, got %d", c.MaxInflightPerConn))
	}
	if c.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("state: ServerConfig.HandshakeTimeout must be >= 0, got %v", c.HandshakeTimeout))
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, fmt.Errorf("state: ServerConfig.CloseTimeout must be >= 0, got %v", c.CloseTimeout))
	}
	if c.Cluster != nil {
		errs = append(errs, c.Cluster.validate()...)
	}
	if c.CheckpointBytes < -1 {
		errs = append(errs, fmt.Errorf("state: ServerConfig.CheckpointBytes must be -1 (never while serving), 0 (default) or positive, got %d", c.CheckpointBytes))
	}
	return errors.Join(errs...)
}

// ClientConfig configures a DSO client.
type ClientConfig struct {
	// Servers lists every DSO server's address. Objects are placed on them
	// by consistent hashing, so every client and server must use the same
	// list. Required.
	Servers []string
	// Token is the servers' shared secret. Required.
	Token string
	// VirtualNodes per server on the hash ring. Default ring.DefaultVirtualNodes.
	VirtualNodes int
	// MaxFrameBytes is the largest frame sent or accepted; calls whose
	// request exceeds it fail without being sent. Default 64 MiB; keep it
	// equal to the servers'.
	MaxFrameBytes int
	// DialTimeout bounds connecting and authenticating to one server.
	// Default 5 s.
	DialTimeout time.Duration
	// CancelTimeout bounds how long a call on a coordination object whose
	// context ended waits for the server's verdict (withdrawn, or completed
	// first). A server that does not answer in time has the connection
	// closed, which withdraws the call; the caller then gets ErrConnLost.
	// Default 5 s.
	CancelTimeout time.Duration
	// FailoverTimeout bounds how long a call on a replicated object is
	// retried while its replicas elect a leader or move after a crash.
	// Default 15 s.
	FailoverTimeout time.Duration
}

func (c *ClientConfig) fill() {
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 64 << 20
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.CancelTimeout == 0 {
		c.CancelTimeout = 5 * time.Second
	}
	if c.FailoverTimeout == 0 {
		c.FailoverTimeout = 15 * time.Second
	}
}

// Validate reports every problem with c. Zero values mean defaults.
func (c ClientConfig) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("state: ClientConfig.Servers is empty: list the DSO servers' addresses"))
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		if s == "" {
			errs = append(errs, errors.New("state: ClientConfig.Servers has an empty address"))
		} else if seen[s] {
			errs = append(errs, fmt.Errorf("state: ClientConfig.Servers lists %q twice", s))
		}
		seen[s] = true
	}
	if c.Token == "" {
		errs = append(errs, errors.New("state: ClientConfig.Token is required"))
	}
	if c.VirtualNodes < 0 {
		errs = append(errs, fmt.Errorf("state: ClientConfig.VirtualNodes must be >= 0, got %d", c.VirtualNodes))
	}
	if c.MaxFrameBytes < 0 || (c.MaxFrameBytes > 0 && c.MaxFrameBytes < 1024) {
		errs = append(errs, fmt.Errorf("state: ClientConfig.MaxFrameBytes must be 0 (default) or >= 1024, got %d", c.MaxFrameBytes))
	}
	if c.DialTimeout < 0 || c.CancelTimeout < 0 {
		errs = append(errs, errors.New("state: ClientConfig timeouts must be >= 0"))
	}
	return errors.Join(errs...)
}
