//go:build unix

package objstore

import "syscall"

// openNonblock is or-ed into the flags of every open of an object: open(2)
// of a named pipe without a writer would otherwise block in the kernel,
// where no signal or context reaches it. Reads of regular files ignore it.
const openNonblock = syscall.O_NONBLOCK
