//go:build !unix

package objstore

// openNonblock is 0 where the platform has no O_NONBLOCK (fs_unix.go).
const openNonblock = 0
