package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/probe"
)

// A ticker in simulated time ticks at its interval of simulated time
// while a call waits (here, through a ten-second sleep that takes
// milliseconds of wall time), each tick carrying the simulated time.
func TestTickerTicksInSimulatedTime(t *testing.T) {
	cfg, err := DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ticks, stop := b.NewTicker(time.Second)
	defer stop()
	start := b.Now()
	done := make(chan error, 1)
	go func() {
		_, err := b.Invoke(context.Background(), backends.Task{ID: "sleep", Payload: probe.NewRequest(probe.Sleep, 10*time.Second, 0, 0)})
		done <- err
	}()
	var got []time.Duration
	for {
		select {
		case at := <-ticks:
			got = append(got, at.Sub(start))
			continue
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		}
		break
	}
	elapsed := b.Now().Sub(start)
	if elapsed < 10*time.Second {
		t.Fatalf("the sleep answered after %v of simulated time", elapsed)
	}
	// Ticks at whole simulated seconds until the answer (a tick the
	// reader misses while it is descheduled is dropped, as time.Ticker
	// drops it, so a loaded machine may see fewer).
	if len(got) == 0 || len(got) > int(elapsed/time.Second) {
		t.Fatalf("ticks at %v over %v of simulated time; want one a second", got, elapsed)
	}
	for i, at := range got {
		if at%time.Second != 0 || (i > 0 && at <= got[i-1]) {
			t.Errorf("ticks at %v: not at increasing whole seconds", got)
			break
		}
	}
	// Idle: no caller waits, so simulated time stands still and no tick
	// comes.
	time.Sleep(20 * time.Millisecond)
	select {
	case at := <-ticks:
		t.Errorf("a tick at %v while idle", at.Sub(start))
	default:
	}
}

// A call whose caller gave up runs on in the model (a platform runs an
// invocation its client stopped waiting for), but simulated time does
// not wait for it; Drain runs it to its end and bills it in full.
func TestAbandonedCallHoldsNoTimeAndDrainBillsIt(t *testing.T) {
	cfg, err := DefaultConfig("aws")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ticks, stop := b.NewTicker(time.Second)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	long := make(chan error, 1)
	go func() {
		_, err := b.Invoke(ctx, backends.Task{ID: "long", Payload: probe.NewRequest(probe.Sleep, time.Hour, 0, 0)})
		long <- err
	}()
	<-ticks // the long call is under way
	cancel()
	if err := <-long; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v", err)
	}
	// A short call after it: time advances for it alone.
	if _, err := b.Invoke(context.Background(), backends.Task{ID: "short", Payload: probe.NewRequest(probe.Sleep, time.Second, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the clock would move now if it waited for the abandoned call
	if got := b.SimulatedElapsed(); got > time.Minute {
		t.Fatalf("simulated time went to %v after the abandoned call: it waited for the call no one waits for", got)
	}
	billedBefore := b.SimulatedBilled()
	if err := b.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := b.SimulatedBilled() - billedBefore; got < time.Hour {
		t.Errorf("Drain billed %v more; the abandoned hour-long call was not billed to its end", got)
	}
}
