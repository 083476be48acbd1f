//go:build !unix

package process

import (
	"context"
	"errors"
	"syscall"

	"github.com/galeproject/gale/backends"
)

// ServeInherited is not available on this system: the process backend
// passes its pipes as inherited file descriptors, which needs Unix.
func ServeInherited(ctx context.Context, h backends.Handler) error {
	return errors.New("process: worker processes need a Unix system")
}

func sysProcAttr() *syscall.SysProcAttr { return nil }
