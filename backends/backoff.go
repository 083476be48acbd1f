package backends

import (
	"math/rand/v2"
	"time"
)

// Backoff is the one retry policy every backend applies to throttled
// invocations (Lambda's TooManyRequestsException, HTTP 429 from the
// Functions host, Cloud Functions or OpenWhisk): the wait doubles from
// Base with each retry up to Max, and each wait is drawn uniformly from
// [d/2, d] ("equal jitter": many tasks throttled together spread their
// retries out, yet none retries at once). A server's Retry-After, when
// longer than the drawn wait, is honoured, capped at Max so that a job's
// wait stays bounded by its configuration. docs/backends.md,
// "Throttling", states it once for every backend.
type Backoff struct {
	// Base is the first retry's ceiling; Max caps every wait.
	Base, Max time.Duration
}

// Wait returns how long to wait before retry number retry (1 for the
// first retry), given the server's Retry-After (0 if none).
func (b Backoff) Wait(retry int, retryAfter time.Duration) time.Duration {
	d := b.ceiling(retry)
	w := d/2 + rand.N(d-d/2+1)
	if ra := min(retryAfter, b.Max); ra > w {
		w = ra
	}
	return w
}

// ceiling is min(Base·2^(retry-1), Max), safe from overflow.
func (b Backoff) ceiling(retry int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	d := b.Base << min(max(retry-1, 0), 30)
	if d <= 0 || d > b.Max || d>>min(max(retry-1, 0), 30) != b.Base {
		d = b.Max
	}
	return d
}
