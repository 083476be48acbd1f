//go:build !unix

package sim

import "time"

// start is when this process first asked for its CPU time.
var start = time.Now()

// processCPU stands in for the process's CPU time where the system does
// not report it: wall time, which charges a handler for its waits too.
func processCPU() time.Duration { return time.Since(start) }
