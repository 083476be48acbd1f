// Package santa solves the Santa Claus problem (Trono, 1994) with cloud
// threads that coordinate only through shared objects.
//
// Santa sleeps until woken either by all nine reindeer, back from vacation,
// to deliver toys, or by a group of three of the ten elves who need help;
// reindeer have priority. Every participant is a cloud thread:
//
//   - Groups are CyclicBarriers: the reindeer barrier (9 parties) and the
//     elf barrier (3 parties). Its generation number is the group's epoch.
//     A Semaphore of 3 permits keeps other elves out while a group is
//     being helped.
//   - Elves take visit tickets from a shared AtomicLong and stop when the
//     run's 3·groups tickets are gone. In the problem elves work forever;
//     a run of bounded length cannot give every elf a fixed quota, since
//     the last visits could then belong to fewer than three elves (an elf
//     that starts late finds the others done and waits at the barrier
//     alone). With tickets, exactly 3·groups elves arrive at the elf
//     barrier, each ticket held by an elf that is not already waiting
//     there, so every group fills.
//   - The member that completes a group appends a "ready" event to the
//     shared event log (a List) and wakes Santa (a Semaphore).
//   - Gates are Futures, one per epoch: group members wait on the gate
//     of their epoch; Santa opens it (Set) when he has delivered or helped.
//   - Santa reads the log from where he left off, serves a pending
//     reindeer group if there is one, else the oldest elf group, and logs
//     his decision with the log length he had read.
//
// Every thread appends what it does to the event log, and Run checks the
// problem's invariants on it (Verify): reindeer priority, groups of exactly
// three elves (and nine reindeer), and no epoch lost. A worker binary must
// call Register. Run starts goroutines only through threads.StartLocal,
// which it closes before returning.
package santa

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/galeproject/gale/state"
	"github.com/galeproject/gale/state/threads"
)

// Registered function names.
const (
	FuncSanta    = "gale.examples.santa.santa"
	FuncReindeer = "gale.examples.santa.reindeer"
	FuncElf      = "gale.examples.santa.elf"
)

// The problem's fixed group sizes.
const (
	Reindeer  = 9
	ElfGroup  = 3
	NumElves  = 10
	elfPermit = 3
)

// Config configures a run.
type Config struct {
	// Deliveries is the number of toy deliveries (each reindeer's number
	// of trips). Default 15.
	Deliveries int
	// ElfVisits is how many times each of the 10 elves asks for help on
	// average: the elves make 10·ElfVisits visits in all, which must be a
	// multiple of 3, and which elf comes is up to timing. Default 3 (10
	// groups).
	ElfVisits int
	// MaxPause bounds the random pause of a reindeer's vacation or an
	// elf's work between visits. Default 2 ms.
	MaxPause time.Duration
	// Executor and DSO, if both set, run the threads there (the backend
	// must run all 20 threads at once).
	Executor *threads.Executor
	DSO      *state.Client
}

func (c *Config) fill() {
	if c.Deliveries == 0 {
		c.Deliveries = 15
	}
	if c.ElfVisits == 0 {
		c.ElfVisits = 3
	}
	if c.MaxPause == 0 {
		c.MaxPause = 2 * time.Millisecond
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Deliveries < 0 || c.ElfVisits < 0 || c.MaxPause < 0 {
		errs = append(errs, errors.New("santa: Deliveries, ElfVisits and MaxPause must be >= 0"))
	}
	if (NumElves*c.ElfVisits)%ElfGroup != 0 {
		errs = append(errs, fmt.Errorf("santa: 10 elves × %d visits = %d is not a whole number of groups of 3", c.ElfVisits, NumElves*c.ElfVisits))
	}
	if (c.Executor == nil) != (c.DSO == nil) {
		errs = append(errs, errors.New("santa: set both Executor and DSO, or neither"))
	}
	return errors.Join(errs...)
}

// Event kinds in the log.
const (
	ReadyReindeer = "ready-reindeer" // the 9th reindeer of epoch is back
	ReadyElves    = "ready-elves"    // the 3rd elf of epoch joined
	Deliver       = "deliver"        // Santa delivers with the reindeer of epoch
	Help          = "help"           // Santa helps the elf group of epoch
	Delivered     = "delivered"      // reindeer Who went through delivery epoch
	Helped        = "helped"         // elf Who was helped in group epoch
)

// Event is one entry of the shared event log.
type Event struct {
	Kind  string `json:"k"`
	Who   int    `json:"w"`
	Epoch int64  `json:"e"`
	// Seen is, for Santa's decisions, the log length he had read.
	Seen int `json:"s,omitempty"`
}

// Result is a run's outcome.
type Result struct {
	Deliveries, Groups int
	// Events is the whole event log, in its linearized order.
	Events []Event
}

// task is every thread's argument.
type task struct {
	Key        string        `json:"key"`
	Who        int           `json:"who"`
	Deliveries int           `json:"deliveries"`
	Groups     int           `json:"groups"`
	MaxPause   time.Duration `json:"max_pause"`
}

type objs struct {
	wake      state.Semaphore
	log       state.List
	reindeer  state.CyclicBarrier
	elves     state.CyclicBarrier
	elfSlots  state.Semaphore
	tickets   state.AtomicLong
	deliverAt func(epoch int64) state.Future
	helpAt    func(epoch int64) state.Future
}

func shared(c *state.Client, key string) objs {
	return objs{
		wake:      c.Semaphore(key+"/wake", 0),
		log:       c.List(key + "/events"),
		reindeer:  c.CyclicBarrier(key+"/reindeer", Reindeer),
		elves:     c.CyclicBarrier(key+"/elves", ElfGroup),
		elfSlots:  c.Semaphore(key+"/elfslots", elfPermit),
		tickets:   c.AtomicLong(key + "/elftickets"),
		deliverAt: func(e int64) state.Future { return c.Future(fmt.Sprintf("%s/deliver/%d", key, e)) },
		helpAt:    func(e int64) state.Future { return c.Future(fmt.Sprintf("%s/help/%d", key, e)) },
	}
}

func (o objs) record(ctx context.Context, ev Event) (int, error) {
	b, _ := json.Marshal(ev)
	return o.log.Append(ctx, b)
}

func pause(r *mrand.Rand, maxPause time.Duration) {
	if maxPause > 0 {
		time.Sleep(time.Duration(r.Int64N(int64(maxPause))))
	}
}

// Register adds Santa, reindeer and elf functions to reg.
func Register(reg *threads.Registry) {
	threads.Register(reg, FuncReindeer, func(ctx context.Context, env *threads.Env, t task) (int, error) {
		o := shared(env.DSO, t.Key)
		r := mrand.New(mrand.NewPCG(uint64(t.Who), 1))
		for d := 0; d < t.Deliveries; d++ {
			pause(r, t.MaxPause)
			idx, epoch, err := o.reindeer.Await(ctx)
			if err != nil {
				return d, err
			}
			if idx == Reindeer-1 {
				if _, err := o.record(ctx, Event{Kind: ReadyReindeer, Epoch: epoch}); err != nil {
					return d, err
				}
				if err := o.wake.Release(ctx, 1); err != nil {
					return d, err
				}
			}
			if _, err := o.deliverAt(epoch).Get(ctx); err != nil {
				return d, err
			}
			if _, err := o.record(ctx, Event{Kind: Delivered, Who: t.Who, Epoch: epoch}); err != nil {
				return d, err
			}
		}
		return t.Deliveries, nil
	})
	threads.Register(reg, FuncElf, func(ctx context.Context, env *threads.Env, t task) (int, error) {
		o := shared(env.DSO, t.Key)
		r := mrand.New(mrand.NewPCG(uint64(t.Who), 2))
		for v := 0; ; v++ {
			pause(r, t.MaxPause)
			// A ticket per visit: the run's visits go to whichever elves
			// are working, never to fewer than three (see the package doc).
			ticket, err := o.tickets.GetAndAdd(ctx, 1)
			if err != nil {
				return v, err
			}
			if ticket >= int64(ElfGroup*t.Groups) {
				return v, nil
			}
			if err := o.elfSlots.Acquire(ctx, 1); err != nil {
				return v, err
			}
			idx, epoch, err := o.elves.Await(ctx)
			if err != nil {
				return v, err
			}
			if idx == ElfGroup-1 {
				if _, err := o.record(ctx, Event{Kind: ReadyElves, Epoch: epoch}); err != nil {
					return v, err
				}
				if err := o.wake.Release(ctx, 1); err != nil {
					return v, err
				}
			}
			if _, err := o.helpAt(epoch).Get(ctx); err != nil {
				return v, err
			}
			if _, err := o.record(ctx, Event{Kind: Helped, Who: t.Who, Epoch: epoch}); err != nil {
				return v, err
			}
			if err := o.elfSlots.Release(ctx, 1); err != nil {
				return v + 1, err
			}
		}
	})
	threads.Register(reg, FuncSanta, func(ctx context.Context, env *threads.Env, t task) (int, error) {
		o := shared(env.DSO, t.Key)
		var pendingR, pendingE []int64
		cursor, delivered, helped := 0, 0, 0
		for delivered < t.Deliveries || helped < t.Groups {
			if err := o.wake.Acquire(ctx, 1); err != nil {
				return delivered + helped, err
			}
			items, err := o.log.Range(ctx, cursor, 1<<62)
			if err != nil {
				return delivered + helped, err
			}
			cursor += len(items)
			for _, it := range items {
				var ev Event
				if err := json.Unmarshal(it, &ev); err != nil {
					return delivered + helped, fmt.Errorf("santa: bad event %q: %w", it, err)
				}
				switch ev.Kind {
				case ReadyReindeer:
					pendingR = append(pendingR, ev.Epoch)
				case ReadyElves:
					pendingE = append(pendingE, ev.Epoch)
				}
			}
			var gate state.Future
			switch {
			case len(pendingR) > 0: // reindeer first
				e := pendingR[0]
				pendingR = pendingR[1:]
				if _, err := o.record(ctx, Event{Kind: Deliver, Epoch: e, Seen: cursor}); err != nil {
					return delivered + helped, err
				}
				gate = o.deliverAt(e)
				delivered++
			case len(pendingE) > 0:
				e := pendingE[0]
				pendingE = pendingE[1:]
				if _, err := o.record(ctx, Event{Kind: Help, Epoch: e, Seen: cursor}); err != nil {
					return delivered + helped, err
				}
				gate = o.helpAt(e)
				helped++
			default:
				return delivered + helped, errors.New("santa: woken with no group ready (a wake-up without its ready event)")
			}
			if err := gate.Set(ctx, nil); err != nil {
				return delivered + helped, err
			}
		}
		return delivered + helped, nil
	})
}

// Run plays the problem out and verifies its invariants on the event log.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ex, dso := cfg.Executor, cfg.DSO
	if ex == nil {
		reg := threads.NewRegistry()
		Register(reg)
		l, err := threads.StartLocal(ctx, threads.LocalConfig{Registry: reg, Concurrency: 1 + Reindeer + NumElves})
		if err != nil {
			return Result{}, err
		}
		defer l.Close()
		ex, dso = l.Executor, l.DSO
	}
	base := newTask(cfg)
	calls := threadCalls(base)
	// A failing thread would leave the others blocked forever: cancel them
	// all on the first failure.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts := make([]*threads.Thread, len(calls))
	for i, c := range calls {
		ts[i] = ex.Go(ctx, c.Func, c.Arg)
	}
	var errs []error
	for _, t := range ts {
		if _, err := t.Wait(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, err)
			cancel()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Result{}, fmt.Errorf("santa: %w", err)
	}
	return check(ctx, dso, base)
}

// newTask names a fresh set of shared objects for one run of cfg.
func newTask(cfg Config) task {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return task{Key: "santa/" + hex.EncodeToString(id[:]), Deliveries: cfg.Deliveries,
		Groups: NumElves * cfg.ElfVisits / ElfGroup, MaxPause: cfg.MaxPause}
}

// threadCalls returns the run's threads: Santa, the reindeer, the elves.
func threadCalls(base task) []threads.Call {
	calls := []threads.Call{{Func: FuncSanta, Arg: base}}
	for i := 0; i < Reindeer; i++ {
		t := base
		t.Who = i
		calls = append(calls, threads.Call{Func: FuncReindeer, Arg: t})
	}
	for i := 0; i < NumElves; i++ {
		t := base
		t.Who = i
		calls = append(calls, threads.Call{Func: FuncElf, Arg: t})
	}
	return calls
}

// check reads the event log of a finished run and verifies it.
func check(ctx context.Context, dso *state.Client, base task) (Result, error) {
	items, err := dso.List(base.Key+"/events").Range(ctx, 0, 1<<62)
	if err != nil {
		return Result{}, fmt.Errorf("santa: reading the event log: %w", err)
	}
	res := Result{Deliveries: base.Deliveries, Groups: base.Groups}
	for _, it := range items {
		var ev Event
		if err := json.Unmarshal(it, &ev); err != nil {
			return Result{}, fmt.Errorf("santa: bad event %q: %w", it, err)
		}
		res.Events = append(res.Events, ev)
	}
	if err := Verify(res.Events, base.Deliveries, base.Groups); err != nil {
		return res, err
	}
	return res, nil
}

// Verify checks the invariants on an event log: reindeer priority (Santa
// never helped elves while a reindeer group he had seen was waiting),
// groups of exactly three distinct elves and nine distinct reindeer, every
// member passing its gate only after Santa opened it, and no epoch lost
// (deliveries 0..deliveries-1 and groups 0..groups-1, each exactly once, in
// order). It reports every violation.
func Verify(events []Event, deliveries, groups int) error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("santa: "+f, a...)) }
	readyR := make([]int, len(events)+1) // readyR[i] = ready-reindeer events in events[:i]
	for i, ev := range events {
		readyR[i+1] = readyR[i]
		if ev.Kind == ReadyReindeer {
			readyR[i+1]++
		}
	}
	decided := map[string]map[int64]int{Deliver: {}, Help: {}}
	members := map[string]map[int64]map[int]bool{Delivered: {}, Helped: {}}
	var nextDeliver, nextHelp int64
	deliversSoFar := 0
	for i, ev := range events {
		switch ev.Kind {
		case Deliver, Help:
			if _, dup := decided[ev.Kind][ev.Epoch]; dup {
				bad("%s of epoch %d twice", ev.Kind, ev.Epoch)
			}
			decided[ev.Kind][ev.Epoch] = i
			if ev.Seen > i {
				bad("decision at %d claims to have read %d events", i, ev.Seen)
			}
			if ev.Kind == Deliver {
				if ev.Epoch != nextDeliver {
					bad("delivery epoch %d, expected %d (epoch lost or out of order)", ev.Epoch, nextDeliver)
				}
				nextDeliver = ev.Epoch + 1
				deliversSoFar++
			} else {
				if ev.Epoch != nextHelp {
					bad("elf group epoch %d, expected %d (epoch lost or out of order)", ev.Epoch, nextHelp)
				}
				nextHelp = ev.Epoch + 1
				if ev.Seen <= len(events) && readyR[ev.Seen] > deliversSoFar {
					bad("priority: Santa helped elf group %d while %d reindeer group(s) he had seen waited", ev.Epoch, readyR[ev.Seen]-deliversSoFar)
				}
			}
		case Delivered, Helped:
			dec := map[string]string{Delivered: Deliver, Helped: Help}[ev.Kind]
			if _, ok := decided[dec][ev.Epoch]; !ok {
				bad("%d passed the %s gate of epoch %d before Santa opened it", ev.Who, dec, ev.Epoch)
			}
			if members[ev.Kind][ev.Epoch] == nil {
				members[ev.Kind][ev.Epoch] = map[int]bool{}
			}
			if members[ev.Kind][ev.Epoch][ev.Who] {
				bad("%d counted twice in %s epoch %d", ev.Who, ev.Kind, ev.Epoch)
			}
			members[ev.Kind][ev.Epoch][ev.Who] = true
		}
	}
	if int(nextDeliver) != deliveries || len(decided[Deliver]) != deliveries {
		bad("%d deliveries, want %d", len(decided[Deliver]), deliveries)
	}
	if int(nextHelp) != groups || len(decided[Help]) != groups {
		bad("%d elf groups helped, want %d", len(decided[Help]), groups)
	}
	for e := int64(0); e < int64(deliveries); e++ {
		if n := len(members[Delivered][e]); n != Reindeer {
			bad("delivery %d had %d reindeer, want %d", e, n, Reindeer)
		}
	}
	for e := int64(0); e < int64(groups); e++ {
		if n := len(members[Helped][e]); n != ElfGroup {
			bad("elf group %d had %d elves, want exactly %d", e, n, ElfGroup)
		}
	}
	return errors.Join(errs...)
}
