package santa

import (
	"context"
	"strings"
	"testing"
)

func TestRunInvariants(t *testing.T) {
	res, err := Run(context.Background(), Config{Deliveries: 6, ElfVisits: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Independent recount of the log.
	count := map[string]int{}
	for _, ev := range res.Events {
		count[ev.Kind]++
	}
	if count[Deliver] != 6 || count[Delivered] != 6*9 || count[ReadyReindeer] != 6 {
		t.Fatalf("reindeer events: %v", count)
	}
	if count[Help] != 10 || count[Helped] != 30 || count[ReadyElves] != 10 {
		t.Fatalf("elf events: %v", count)
	}
	// Every reindeer went through epochs 0..5 in order: none lost.
	next := map[int]int64{}
	for _, ev := range res.Events {
		if ev.Kind == Delivered {
			if ev.Epoch != next[ev.Who] {
				t.Fatalf("reindeer %d: epoch %d after %d", ev.Who, ev.Epoch, next[ev.Who]-1)
			}
			next[ev.Who]++
		}
	}
}

func TestVerifyCatchesViolations(t *testing.T) {
	// Santa helps elves while a reindeer group he had read was waiting.
	evs := []Event{
		{Kind: ReadyReindeer, Epoch: 0},
		{Kind: ReadyElves, Epoch: 0},
		{Kind: Help, Epoch: 0, Seen: 2},
		{Kind: Helped, Who: 1, Epoch: 0}, {Kind: Helped, Who: 2, Epoch: 0},
	}
	err := Verify(evs, 0, 1)
	if err == nil || !strings.Contains(err.Error(), "priority") || !strings.Contains(err.Error(), "had 2 elves") {
		t.Fatalf("Verify = %v", err)
	}
	// A skipped epoch.
	err = Verify([]Event{{Kind: Deliver, Epoch: 1}}, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "epoch lost") {
		t.Fatalf("Verify = %v", err)
	}
}
