package santa

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale/state/threads"
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

// TestLateElfJoinsNoGroup starts one elf only after the other 28 threads
// have finished, as a slow worker process start can. With a fixed quota
// per elf the nine early elves would fill 9 groups among themselves and
// leave the late elf's three visits to wait at the elf barrier alone; with
// visit tickets the early elves take every visit and the late one has
// none left.
func TestLateElfJoinsNoGroup(t *testing.T) {
	reg := threads.NewRegistry()
	Register(reg)
	ctx := context.Background()
	l, err := threads.StartLocal(ctx, threads.LocalConfig{Registry: reg, Concurrency: 1 + Reindeer + NumElves})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := Config{Deliveries: 4, ElfVisits: 3}
	cfg.fill()
	base := newTask(cfg)
	calls := threadCalls(base)
	late := calls[len(calls)-1]
	// A deadlock would block Wait forever; this bound only turns it into
	// a failure and is not a performance threshold.
	guard, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	early := calls[:len(calls)-1]
	ts := make([]*threads.Thread, len(early))
	for i, c := range early {
		ts[i] = l.Executor.Go(guard, c.Func, c.Arg)
	}
	elfVisits := 0
	for i, th := range ts {
		n, err := threads.WaitAs[int](guard, th)
		if err != nil {
			t.Fatalf("%s (elf 9 not started yet): %v", early[i].Func, err)
		}
		if early[i].Func == FuncElf {
			elfVisits += n
		}
	}
	if elfVisits != NumElves*cfg.ElfVisits {
		t.Fatalf("the nine early elves made %d visits, want all %d", elfVisits, NumElves*cfg.ElfVisits)
	}
	n, err := threads.WaitAs[int](guard, l.Executor.Go(guard, late.Func, late.Arg))
	if err != nil || n != 0 {
		t.Fatalf("late elf: %d visits, %v; want 0 (no tickets left)", n, err)
	}
	res, err := check(ctx, l.DSO, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range res.Events {
		if ev.Kind == Helped && ev.Who == 9 {
			t.Fatalf("late elf 9 was helped in group %d", ev.Epoch)
		}
	}
}
