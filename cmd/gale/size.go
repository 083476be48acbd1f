package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// sizeValue is a pflag.Value for byte sizes written as 512MiB, 1GiB, 64KB
// or a plain number of bytes.
type sizeValue struct{ n *int64 }

// String returns "0" for zero, which pflag takes for a zero default and
// leaves out of the help (a flag with no default says what it means in
// its usage).
func (s sizeValue) String() string {
	if s.n == nil || *s.n == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*s.n))
}

func (s sizeValue) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("%q is not a size such as 512MiB or 1GiB", v)
	}
	*s.n = int64(n)
	return nil
}

func (sizeValue) Type() string { return "size" }
