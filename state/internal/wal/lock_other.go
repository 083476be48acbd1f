//go:build !unix

package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates dir/LOCK exclusively. Without flock a crashed server
// leaves the file behind; the error says to remove it once no server runs.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %s exists; stop the server using %s, or remove the file if none runs", ErrLocked, path, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: lock file: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) {
	if f == nil {
		return
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
}
