package engine

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errNoExchange means the filesystem cannot exchange two directories
// atomically; swapLocal then falls back to two renames.
var errNoExchange = errors.New("engine: no atomic directory exchange")

// exchangeDirs swaps the directories a and b in one atomic step
// (renameat2 with RENAME_EXCHANGE, Linux 3.15 and later; ext4, xfs, btrfs,
// tmpfs and others support it).
func exchangeDirs(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoExchange
	}
	return err
}
