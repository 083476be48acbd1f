//go:build unix

package engine

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with the given ID runs on this
// host (a reused ID counts as alive: a job's files are then kept until its
// heartbeat is StaleAfter old).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
