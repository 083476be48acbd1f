package sim

import (
	"context"
	"time"
)

// ticker is a NewTicker in simulated time.
type ticker struct {
	every time.Duration
	next  time.Duration // simulated time of the next tick
	ch    chan time.Time
}

// NewTicker returns a channel that receives the simulated time about
// every d of simulated time, dropping ticks a slow reader misses, and a
// function that stops it. With Now it makes the backend a clock in
// simulated time (engine.Clock), so a driver's deadlines and its test for
// stragglers measure tasks as the platform would run them, not as long
// as their handlers took in this process.
//
// Ticks come only while some Invoke caller waits for an answer (simulated
// time passes only then): the clock stops at each tick's instant, sends
// it, and waits Config.Settle of wall time, as after an answer, for what
// the reader does at that instant (a backup invocation is sent then).
// d must be positive.
func (b *Backend) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		panic("sim: NewTicker needs a positive interval") // a programmer error, as time.NewTicker's
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &ticker{every: d, next: b.m.now + d, ch: make(chan time.Time, 1)}
	b.tickers = append(b.tickers, t)
	return t.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, o := range b.tickers {
			if o == t {
				b.tickers = append(b.tickers[:i], b.tickers[i+1:]...)
				break
			}
		}
	}
}

// tick moves simulated time to the earliest tick due before next (the
// model's next event) and sends it, if some caller waits and no handler
// holds the clock; it reports whether it did. Called under b.mu.
func (b *Backend) tick(next time.Duration) bool {
	if len(b.tickers) == 0 || b.m.executing > 0 || b.m.unanswered-b.abandoned <= 0 {
		return false
	}
	due := time.Duration(-1)
	for _, t := range b.tickers {
		// Ticks missed while time passed without the clock loop (InvokeAll)
		// are dropped.
		for t.next <= b.m.now {
			t.next += t.every
		}
		if due < 0 || t.next < due {
			due = t.next
		}
	}
	if due >= next {
		return false
	}
	b.m.now = due // nothing happens in the model before next
	for _, t := range b.tickers {
		if t.next == due {
			select {
			case t.ch <- b.epoch.Add(due):
			default:
			}
			t.next += t.every
		}
	}
	b.lastActivity.Store(time.Now().UnixNano())
	return true
}

// Drain runs the model until every invocation sent so far has finished,
// those whose callers gave up included, so SimulatedBilled then holds
// all the platform would bill for them: a platform bills an invocation
// its client stopped waiting for (a straggler whose backup won) to its
// end, while simulated time, and so a job's makespan, does not wait for
// it. Call it when no Invoke caller waits; it returns ctx's error if ctx
// ends first.
func (b *Backend) Drain(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.measured.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.flushPending()
	for b.m.unanswered > 0 && !b.closed {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b.m.step() {
			continue
		}
		if b.m.executing == 0 {
			break // nothing left to happen
		}
		b.measured.Wait() // a handler runs: wait for its measurement
	}
	return nil
}
