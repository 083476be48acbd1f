//go:build !linux

package gale

// pseudoFS reports kernel pseudo-filesystems on Linux only (inputs_linux.go).
func pseudoFS(string) string { return "" }
