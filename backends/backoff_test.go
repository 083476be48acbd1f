package backends

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	for retry := 1; retry <= 70; retry++ {
		want := 100 * time.Millisecond
		for i := 1; i < retry && want < 10*time.Second; i++ {
			want *= 2
		}
		want = min(want, 10*time.Second)
		for range 200 {
			w := b.Wait(retry, 0)
			if w < want/2 || w > want {
				t.Fatalf("retry %d: waited %s, want within [%s, %s]", retry, w, want/2, want)
			}
		}
	}
}

func TestBackoffHonoursRetryAfterUpToMax(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	if w := b.Wait(1, 3*time.Second); w != 3*time.Second {
		t.Errorf("Retry-After 3s on the first retry: waited %s, want 3s", w)
	}
	if w := b.Wait(1, time.Minute); w != 10*time.Second {
		t.Errorf("Retry-After 1m: waited %s, want the 10s cap", w)
	}
	if w := b.Wait(8, time.Millisecond); w < 5*time.Second {
		t.Errorf("a short Retry-After must not shorten the backoff: waited %s", w)
	}
}

func TestBackoffSpreadsRetries(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[b.Wait(3, 0)] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 draws gave %d distinct waits: no jitter", len(seen))
	}
}

func TestBackoffHugeBase(t *testing.T) {
	b := Backoff{Base: time.Duration(1) << 60, Max: time.Hour}
	if w := b.Wait(40, 0); w < 30*time.Minute || w > time.Hour {
		t.Errorf("overflowing ceiling: waited %s, want within [30m, 1h]", w)
	}
}
