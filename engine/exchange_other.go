//go:build !linux

package engine

import "errors"

// errNoExchange means the filesystem cannot exchange two directories
// atomically; swapLocal then falls back to two renames.
var errNoExchange = errors.New("engine: no atomic directory exchange")

// exchangeDirs reports that this platform has no atomic exchange.
func exchangeDirs(a, b string) error { return errNoExchange }
