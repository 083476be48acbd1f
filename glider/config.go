package glider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"
)

// Defaults.
const (
	// DefaultBlockSize is the size of a storage block and of a stream
	// chunk: 1 MiB, as in the thesis.
	DefaultBlockSize = 1 << 20
	// DefaultMaxFrame bounds a frame: one chunk plus headers, with room.
	DefaultMaxFrame = 2 << 20
	// DefaultWindow is the number of chunk requests a stream keeps in
	// flight.
	DefaultWindow = 8
	// ClassDRAM is the default storage class of files.
	ClassDRAM = "dram"
	// ClassActive is the default storage class of actions.
	ClassActive = "active"
	// minSecret is the shortest accepted cluster secret.
	minSecret = 16
	// frameSlack is room for a frame's fields besides its bulk data.
	frameSlack = 64 << 10
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// NamespaceToken returns the token that opens namespace in a cluster whose
// servers share secret: an HMAC-SHA256 of the namespace name, hex-encoded.
// Every server can check a token without asking another, and a token for
// one namespace says nothing about another's. Whoever holds the secret
// issues tokens; give tenants tokens, never the secret.
func NamespaceToken(secret, namespace string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("glider namespace\x00"))
	m.Write([]byte(namespace))
	return hex.EncodeToString(m.Sum(nil))
}

// Common holds the settings every server role shares; it is embedded in
// MetaConfig, StorageConfig and ActiveConfig.
type Common struct {
	// Addr is the address to listen on; default "127.0.0.1:0" (a free
	// loopback port). Ignored when Listener is set.
	Addr string
	// Listener, if set, is used instead of listening on Addr; the server
	// closes it.
	Listener net.Listener
	// Secret is the cluster secret shared by all servers (at least 16
	// bytes). Namespace tokens derive from it (NamespaceToken).
	Secret string
	// MaxFrame bounds the frames the server reads, in bytes; default
	// DefaultMaxFrame. It must exceed the chunk and block sizes by 64 KiB.
	MaxFrame int
	// WriteTimeout bounds one frame write to a peer that stopped reading;
	// default 30 s. The connection breaks when it expires.
	WriteTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the server's
	// goroutines; default 5 s.
	CloseTimeout time.Duration
}

func (c *Common) validate(what string, errs []error) []error {
	if len(c.Secret) < minSecret {
		errs = append(errs, fmt.Errorf("glider: %s config: Secret must be at least %d bytes (the cluster secret every server shares)", what, minSecret))
	}
	if c.MaxFrame < 0 {
		errs = append(errs, fmt.Errorf("glider: %s config: MaxFrame %d is negative", what, c.MaxFrame))
	}
	if c.WriteTimeout < 0 || c.CloseTimeout < 0 {
		errs = append(errs, fmt.Errorf("glider: %s config: timeouts must not be negative", what))
	}
	return errs
}

func (c *Common) fill() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 5 * time.Second
	}
}

func (c *Common) listen(what string) (net.Listener, error) {
	if c.Listener != nil {
		return c.Listener, nil
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("glider: %s: listen on %s: %w", what, c.Addr, err)
	}
	return ln, nil
}

// MetaConfig configures a metadata server.
type MetaConfig struct {
	Common
	// ActionTimeout bounds an action's OnCreate and OnDelete as run on
	// behalf of a client; default 1 min.
	ActionTimeout time.Duration
}

// DefaultMetaConfig returns a metadata server config on a free loopback
// port; set Secret.
func DefaultMetaConfig() MetaConfig {
	c := MetaConfig{}
	c.fill()
	c.ActionTimeout = time.Minute
	return c
}

// Validate reports every problem with the config at once.
func (c *MetaConfig) Validate() error {
	errs := c.validate("metadata server", nil)
	if c.ActionTimeout < 0 {
		errs = append(errs, errors.New("glider: metadata server config: ActionTimeout is negative"))
	}
	return joinLine(errs)
}

// StorageConfig configures a storage server.
type StorageConfig struct {
	Common
	// Meta is the metadata server's address (required).
	Meta string
	// Advertise is the address clients use to reach this server; default
	// the listener's address.
	Advertise string
	// Class is the storage class this server serves; default ClassDRAM.
	// Every server of a class must use the same BlockSize.
	Class string
	// BlockSize is the size of a block in bytes; default DefaultBlockSize.
	BlockSize int
	// Capacity is the memory the server may hold, in bytes; default 1 GiB.
	// It is offered to the metadata server as Capacity/BlockSize blocks.
	Capacity int64
}

// DefaultStorageConfig returns a DRAM storage server config with 1 MiB
// blocks and 1 GiB of capacity; set Meta and Secret.
func DefaultStorageConfig() StorageConfig {
	c := StorageConfig{Class: ClassDRAM, BlockSize: DefaultBlockSize, Capacity: 1 << 30}
	c.fill()
	return c
}

// Validate reports every problem with the config at once.
func (c *StorageConfig) Validate() error {
	errs := c.validate("storage server", nil)
	if c.Meta == "" {
		errs = append(errs, errors.New("glider: storage server config: Meta (the metadata server's address) is required"))
	}
	if c.Class != "" && !nameRE.MatchString(c.Class) {
		errs = append(errs, fmt.Errorf("glider: storage server config: Class %q must match %s", c.Class, nameRE))
	}
	if c.BlockSize < 0 || c.Capacity < 0 {
		errs = append(errs, errors.New("glider: storage server config: BlockSize and Capacity must not be negative"))
	}
	bs, mf := c.BlockSize, c.MaxFrame
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if mf == 0 {
		mf = DefaultMaxFrame
	}
	if bs+frameSlack > mf {
		errs = append(errs, fmt.Errorf("glider: storage server config: BlockSize %d needs MaxFrame of at least %d (got %d)", bs, bs+frameSlack, mf))
	}
	return joinLine(errs)
}

func (c *StorageConfig) fillStorage() {
	c.fill()
	if c.Class == "" {
		c.Class = ClassDRAM
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Capacity == 0 {
		c.Capacity = 1 << 30
	}
}

// ActiveConfig configures an active server.
type ActiveConfig struct {
	Common
	// Meta is the metadata server's address (required).
	Meta string
	// Advertise is the address clients use to reach this server; default
	// the listener's address.
	Advertise string
	// Class is the storage class of the actions this server hosts;
	// default ClassActive.
	Class string
	// Slots is the number of actions the server hosts at once; default 64.
	Slots int
	// Registry holds the action types this server can instantiate;
	// default DefaultRegistry() (the built-in actions).
	Registry *Registry
	// ChunkSize is the size of the chunks an action's output is cut into
	// for readers; default DefaultBlockSize.
	ChunkSize int
	// Window is the number of chunks a stream buffers per direction;
	// default DefaultWindow. Clients keep at most that many in flight.
	Window int
}

// DefaultActiveConfig returns an active server config with 64 slots and
// the built-in actions; set Meta and Secret.
func DefaultActiveConfig() ActiveConfig {
	c := ActiveConfig{Class: ClassActive, Slots: 64, ChunkSize: DefaultBlockSize, Window: DefaultWindow}
	c.fill()
	return c
}

// Validate reports every problem with the config at once.
func (c *ActiveConfig) Validate() error {
	errs := c.validate("active server", nil)
	if c.Meta == "" {
		errs = append(errs, errors.New("glider: active server config: Meta (the metadata server's address) is required"))
	}
	if c.Class != "" && !nameRE.MatchString(c.Class) {
		errs = append(errs, fmt.Errorf("glider: active server config: Class %q must match %s", c.Class, nameRE))
	}
	if c.Slots < 0 || c.ChunkSize < 0 || c.Window < 0 {
		errs = append(errs, errors.New("glider: active server config: Slots, ChunkSize and Window must not be negative"))
	}
	cs, mf := c.ChunkSize, c.MaxFrame
	if cs == 0 {
		cs = DefaultBlockSize
	}
	if mf == 0 {
		mf = DefaultMaxFrame
	}
	if cs+frameSlack > mf {
		errs = append(errs, fmt.Errorf("glider: active server config: ChunkSize %d needs MaxFrame of at least %d (got %d)", cs, cs+frameSlack, mf))
	}
	return joinLine(errs)
}

func (c *ActiveConfig) fillActive() {
	c.fill()
	if c.Class == "" {
		c.Class = ClassActive
	}
	if c.Slots == 0 {
		c.Slots = 64
	}
	if c.Registry == nil {
		c.Registry = DefaultRegistry()
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultBlockSize
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
}

// ClientConfig configures a client of one namespace.
type ClientConfig struct {
	// Meta is the metadata server's address (required).
	Meta string
	// Namespace is the tenant's namespace (required; letters, digits, '.',
	// '_', '-').
	Namespace string
	// Token opens the namespace (NamespaceToken of the cluster secret).
	Token string
	// ChunkSize is the largest chunk a stream sends or asks for in one
	// request; default DefaultBlockSize (file chunks never exceed the
	// block size).
	ChunkSize int
	// Window is the number of chunk requests a stream keeps in flight;
	// default DefaultWindow.
	Window int
	// MaxFrame bounds the frames the client reads; default
	// DefaultMaxFrame.
	MaxFrame int
	// WriteTimeout bounds one frame write; default 30 s.
	WriteTimeout time.Duration
}

// Validate reports every problem with the config at once.
func (c *ClientConfig) Validate() error {
	var errs []error
	if c.Meta == "" {
		errs = append(errs, errors.New("glider: client config: Meta (the metadata server's address) is required"))
	}
	if !nameRE.MatchString(c.Namespace) {
		errs = append(errs, fmt.Errorf("glider: client config: Namespace %q must match %s", c.Namespace, nameRE))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("glider: client config: Token is required (glider.NamespaceToken(secret, namespace))"))
	}
	if c.ChunkSize < 0 || c.Window < 0 || c.MaxFrame < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("glider: client config: ChunkSize, Window, MaxFrame and WriteTimeout must not be negative"))
	}
	cs, mf := c.ChunkSize, c.MaxFrame
	if cs == 0 {
		cs = DefaultBlockSize
	}
	if mf == 0 {
		mf = DefaultMaxFrame
	}
	if cs+frameSlack > mf {
		errs = append(errs, fmt.Errorf("glider: client config: ChunkSize %d needs MaxFrame of at least %d (got %d)", cs, cs+frameSlack, mf))
	}
	return joinLine(errs)
}

func (c *ClientConfig) fill() {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultBlockSize
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
}
