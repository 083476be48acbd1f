package glider

import (
	"context"
	"errors"
	"fmt"
)

// Server roles, as named on the command line (gale glider serve --role).
const (
	RoleMeta    = "meta"
	RoleStorage = "storage"
	RoleActive  = "active"
)

// RoleConfig is the flat configuration of one server of any role, as a
// command line fills it. Zero fields take the role's defaults.
type RoleConfig struct {
	// Role is RoleMeta, RoleStorage or RoleActive.
	Role string
	// Addr is the address to listen on (default 127.0.0.1:0).
	Addr string
	// Advertise is the address clients use to reach a storage or active
	// server, when it differs from Addr (e.g. Addr 0.0.0.0:7100).
	Advertise string
	// Meta is the metadata server's address (storage and active roles).
	Meta string
	// Secret is the cluster secret (at least 16 bytes).
	Secret string
	// Class is the storage class served.
	Class string
	// BlockSize and Capacity (bytes) configure a storage server.
	BlockSize int
	Capacity  int64
	// Slots configures an active server.
	Slots int
	// Registry holds an active server's action types; default
	// DefaultRegistry().
	Registry *Registry
	// Started, if set, is called with the listening address once the
	// server is bound (and, for storage and active servers, before it
	// joins).
	Started func(addr string)
}

// ServeRole runs one server of the configured role until ctx is done; it
// is what `gale glider serve --role meta|storage|active` calls.
func ServeRole(ctx context.Context, c RoleConfig) error {
	started := func(addr string) {
		if c.Started != nil {
			c.Started(addr)
		}
	}
	switch c.Role {
	case RoleMeta:
		mc := DefaultMetaConfig()
		mc.Addr, mc.Secret = or(c.Addr, mc.Addr), c.Secret
		m, err := NewMeta(mc)
		if err != nil {
			return err
		}
		started(m.Addr())
		return errors.Join(m.Serve(ctx), m.Close())
	case RoleStorage:
		sc := DefaultStorageConfig()
		sc.Addr, sc.Advertise, sc.Meta, sc.Secret = or(c.Addr, sc.Addr), c.Advertise, c.Meta, c.Secret
		sc.Class = or(c.Class, sc.Class)
		if c.BlockSize != 0 {
			sc.BlockSize = c.BlockSize
			if sc.BlockSize+frameSlack > sc.MaxFrame {
				sc.MaxFrame = sc.BlockSize + frameSlack
			}
		}
		if c.Capacity != 0 {
			sc.Capacity = c.Capacity
		}
		s, err := NewStorage(sc)
		if err != nil {
			return err
		}
		started(s.Addr())
		return errors.Join(s.Serve(ctx), s.Close())
	case RoleActive:
		ac := DefaultActiveConfig()
		ac.Addr, ac.Advertise, ac.Meta, ac.Secret = or(c.Addr, ac.Addr), c.Advertise, c.Meta, c.Secret
		ac.Class = or(c.Class, ac.Class)
		if c.Slots != 0 {
			ac.Slots = c.Slots
		}
		ac.Registry = c.Registry
		a, err := NewActive(ac)
		if err != nil {
			return err
		}
		started(a.Addr())
		return errors.Join(a.Serve(ctx), a.Close())
	}
	return fmt.Errorf("glider: unknown role %q (want %s, %s or %s)", c.Role, RoleMeta, RoleStorage, RoleActive)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
