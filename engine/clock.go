package engine

import "time"

// Clock is the driver's source of time: the scheduler reads none (it is
// fed Tick events), and the driver reads this one, so tests can run the
// timeouts and backups of a real job on a clock they move by hand
// (enginetest.FakeClock) instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a channel that receives a value about every d,
	// dropping ticks a slow reader misses (as time.Ticker does), and a
	// function that stops it. The driver reads Now when a tick arrives;
	// the value sent is not used.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

// SystemClock returns the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
