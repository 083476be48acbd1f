package sim

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"time"
)

// The model is a discrete-event simulation: a virtual clock (now) and a
// queue of events in time order. Nothing in it sleeps or reads the wall
// clock; it is a single-threaded state machine that the Backend drives
// under its mutex.

type evKind uint8

const (
	evArrive  evKind = iota // a request reaches the platform
	evReady                 // an instance finished starting
	evFinish                // an invocation's task ends (if ver matches)
	evReturn                // a response reaches the client
	evTick                  // the scale controller acts
	evTimeout               // a queued invocation's wait ends (if still queued)
	evRetire                // an idle instance's keep-alive ends (if ver matches)
	evPrewarm               // a host's pre-started instance is replaced
)

type event struct {
	at   time.Duration
	seq  uint64 // FIFO among equal times: deterministic
	kind evKind
	inv  *invocation
	inst *instance
	host *host
	ver  uint64
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type invState uint8

const (
	invQueued  invState = iota // waiting for an instance
	invBound                   // assigned to a starting instance
	invRunning                 // running on an instance
	invDone                    // answered (ran, or rejected)
)

// invocation is one request in the model.
type invocation struct {
	id      string
	sent    time.Duration // client send
	arrived time.Duration // reached the platform
	state   invState
	cpu     bool          // compute (shares CPU) or sleep
	exec    bool          // runs a real handler: work is measured when it has run
	waiting bool          // exec: started, its handler still running in wall time
	work    time.Duration // compute: CPU time on the reference CPU; sleep: the duration
	left    float64       // compute: reference-CPU seconds still to run
	slow    float64       // compute: the straggler factor drawn when it started (0: not slowed)
	rate    float64       // compute: reference-CPU seconds per second now
	last    time.Duration // when left was last brought up to date
	ver     uint64        // invalidates stale evFinish events
	inst    *instance
	start   time.Duration
	end     time.Duration
	cold    bool
	reject  string // non-empty: rejected for this reason
	admit   bool   // counted in inFlight
	async   bool   // asynchronous: the platform retries it when throttled
	qver    uint64 // invalidates stale evTimeout events
	call    *call  // the backend's request
	done    func(*invocation)
	// io is an exec invocation's storage demand, run as an I/O phase
	// after its CPU demand when the platform models storage; ioDone once
	// that phase has begun.
	io     ioDemand
	ioDone bool
}

// instance is one function instance (container, microVM).
type instance struct {
	id       string
	host     *host
	created  time.Duration
	ready    bool
	bound    []*invocation // waiting for it to be ready
	running  []*invocation
	served   int
	ver      uint64 // invalidates stale evRetire events
	boot     time.Duration
	retired  bool
	prewarmd bool
}

// host is a machine instances are packed onto.
type host struct {
	idx      int
	boot     time.Duration // negative: booted before the run
	memFree  int
	prewarm  int
	running  int // compute invocations running on it
	insts    []*instance
	instSeen int
}

type model struct {
	p        Platform
	mem      int
	vcpus    float64
	rng      *rand.Rand
	seed     uint64 // of the straggler draws (slowed), apart from rng so enabling them changes no other draw
	now      time.Duration
	events   eventQueue
	seq      uint64
	queue    []*invocation // waiting for an instance, FIFO
	insts    []*instance   // alive
	hosts    []*host
	starting int // instances being created
	tokens   int // push: creation tokens left
	ticking  bool
	inFlight int             // admitted, not yet finished
	admitted []time.Duration // arrival times within the rate window
	nextInst int
	// unanswered counts invocations submitted whose answer has not reached
	// the client; answers counts those that have.
	unanswered, answers int
	// executing counts started invocations whose handler is still running
	// in wall time: simulated time cannot pass while any is, since the
	// model does not know yet when they end. onExec starts a handler.
	executing int
	onExec    func(*invocation)
	// billed sums the in-function time of finished invocations.
	billed time.Duration
	// store models the platform's object store; nil if it models none.
	store *store
	// Stats.
	created, rejected, retried int
	stragglers                 int // invocations slowed
}

func newModel(p Platform, mem int, seed uint64) *model {
	m := &model{p: p, mem: mem, vcpus: p.VCPUs(mem), rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		seed:   seed,
		tokens: p.ScaleBurst}
	if p.Storage.Modelled() {
		m.store = &store{s: p.Storage}
	}
	for i := range p.Hosts {
		// Hosts booted hours to days before the run, at distinct times, so
		// the uptime hint tells them apart.
		boot := -time.Duration(3600+m.rng.IntN(7*24*3600)) * time.Second
		m.hosts = append(m.hosts, &host{idx: i, boot: boot, memFree: p.HostMemoryMiB, prewarm: p.PrewarmedPerHost})
	}
	return m
}

func (m *model) schedule(e *event) {
	m.seq++
	e.seq = m.seq
	heap.Push(&m.events, e)
}

// submit adds an invocation the client sends now.
func (m *model) submit(inv *invocation) {
	inv.sent = m.now
	m.unanswered++
	m.schedule(&event{at: m.now + m.p.Latency.sample(m.rng), kind: evArrive, inv: inv})
}

// blocked reports whether the next event lies in the future while a
// handler is still running: simulated time must wait for its measurement.
func (m *model) blocked() bool {
	return m.executing > 0 && (len(m.events) == 0 || m.events[0].at > m.now)
}

// step processes the next event; it returns false if there is none, or
// if processing it would advance time while the model is blocked.
func (m *model) step() bool {
	if len(m.events) == 0 || m.blocked() {
		return false
	}
	e := heap.Pop(&m.events).(*event)
	m.now = e.at
	switch e.kind {
	case evArrive:
		m.arrive(e.inv)
	case evReady:
		m.ready(e.inst)
	case evFinish:
		if e.ver == e.inv.ver && e.inv.state == invRunning {
			m.finish(e.inv)
		}
	case evReturn:
		m.unanswered--
		m.answers++
		e.inv.done(e.inv)
	case evTick:
		m.tick()
	case evTimeout:
		if e.inv.state == invQueued && e.ver == e.inv.qver {
			m.dequeue(e.inv)
			m.rejectInv(e.inv, fmt.Sprintf("no instance became available within %s", m.p.QueueTimeout))
		}
	case evRetire:
		if e.ver == e.inst.ver && len(e.inst.running) == 0 && len(e.inst.bound) == 0 {
			m.retire(e.inst)
		}
	case evPrewarm:
		e.host.prewarm++
	}
	return true
}

func (m *model) arrive(inv *invocation) {
	inv.arrived = m.now
	if m.p.MaxInFlight > 0 && m.inFlight >= m.p.MaxInFlight {
		m.rejectInv(inv, fmt.Sprintf("throttled: %d invocations in flight, the limit is %d", m.inFlight, m.p.MaxInFlight))
		return
	}
	if m.p.RateLimit > 0 {
		cut := 0
		for cut < len(m.admitted) && m.admitted[cut] <= m.now-m.p.RateWindow {
			cut++
		}
		m.admitted = m.admitted[cut:]
		if len(m.admitted) >= m.p.RateLimit {
			m.rejectInv(inv, fmt.Sprintf("throttled: over %d invocations per %s", m.p.RateLimit, m.p.RateWindow))
			return
		}
		m.admitted = append(m.admitted, m.now)
	}
	m.inFlight++
	inv.admit = true
	if in := m.freeInstance(); in != nil {
		m.assign(inv, in)
		return
	}
	m.enqueue(inv)
	if m.p.Scheduling == Push {
		m.createFor()
	} else if len(m.insts) == 0 && m.starting == 0 {
		m.create() // scale from zero at once
	}
	m.ensureTick()
}

func (m *model) enqueue(inv *invocation) {
	inv.state = invQueued
	inv.qver++
	m.queue = append(m.queue, inv)
	if m.p.QueueTimeout > 0 {
		m.schedule(&event{at: m.now + m.p.QueueTimeout, kind: evTimeout, inv: inv, ver: inv.qver})
	}
}

func (m *model) dequeue(inv *invocation) {
	for i, q := range m.queue {
		if q == inv {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			return
		}
	}
}

// freeInstance returns a ready instance with a free slot, the oldest
// first.
func (m *model) freeInstance() *instance {
	for _, in := range m.insts {
		if in.ready && len(in.running) < m.p.InstanceConcurrency {
			return in
		}
	}
	return nil
}

// canCreate reports whether the scale controller may create an instance
// now, and on which host.
func (m *model) canCreate() (*host, bool) {
	if m.p.MaxInstances > 0 && len(m.insts) >= m.p.MaxInstances {
		return nil, false
	}
	if m.p.Scheduling == Push && m.p.ScaleInterval > 0 && m.tokens <= 0 {
		return nil, false
	}
	if len(m.hosts) == 0 {
		return nil, true
	}
	for _, h := range m.hosts { // pack: the first host with room
		if h.memFree >= m.mem {
			return h, true
		}
	}
	return nil, false
}

// createFor creates instances for queued invocations while the scale
// controller allows (push).
func (m *model) createFor() {
	for len(m.queue) > 0 {
		in := m.create()
		if in == nil {
			return
		}
		inv := m.queue[0]
		m.queue = m.queue[1:]
		inv.state = invBound
		inv.inst = in
		in.bound = append(in.bound, inv)
	}
}

// create starts a new instance if allowed; nil if not.
func (m *model) create() *instance {
	h, ok := m.canCreate()
	if !ok {
		return nil
	}
	if m.p.Scheduling == Push && m.p.ScaleInterval > 0 {
		m.tokens--
	}
	m.nextInst++
	m.created++
	in := &instance{id: m.p.Name + "-" + strconv.Itoa(m.nextInst), host: h, created: m.now}
	var d time.Duration
	if h != nil && h.prewarm > 0 && m.mem == m.p.PrewarmedMiB {
		h.prewarm--
		in.prewarmd = true
		d = m.p.PrewarmedStart.sample(m.rng)
		m.schedule(&event{at: m.now + m.p.ColdStart.sample(m.rng), kind: evPrewarm, host: h})
	} else {
		d = m.p.ColdStart.sample(m.rng) + time.Duration(m.starting)*m.p.ColdStartPerCreation
	}
	in.boot = m.now
	if h != nil {
		h.memFree -= m.mem
		h.insts = append(h.insts, in)
		in.boot = h.boot
	}
	m.starting++
	m.insts = append(m.insts, in)
	m.schedule(&event{at: m.now + d, kind: evReady, inst: in})
	return in
}

// ensureTick keeps the scale controller ticking while it has work.
func (m *model) ensureTick() {
	if m.ticking || m.p.ScaleInterval <= 0 {
		return
	}
	if m.p.Scheduling == Push && m.tokens >= m.p.ScaleBurst {
		return
	}
	if m.p.Scheduling == Pull && len(m.queue) == 0 {
		return
	}
	m.ticking = true
	m.schedule(&event{at: m.now + m.p.ScaleInterval, kind: evTick})
}

func (m *model) tick() {
	m.ticking = false
	switch m.p.Scheduling {
	case Push:
		m.tokens = min(m.tokens+1, m.p.ScaleBurst)
		m.createFor()
	case Pull:
		if len(m.queue) > 0 {
			m.create()
		}
	}
	m.ensureTick()
}

func (m *model) ready(in *instance) {
	in.ready = true
	m.starting--
	for _, inv := range in.bound {
		m.start(inv, in)
	}
	in.bound = nil
	m.pull(in)
	m.idle(in)
}

// pull fills the free slots of a ready instance from the queue.
func (m *model) pull(in *instance) {
	for len(m.queue) > 0 && len(in.running) < m.p.InstanceConcurrency {
		inv := m.queue[0]
		m.queue = m.queue[1:]
		m.start(inv, in)
	}
}

func (m *model) assign(inv *invocation, in *instance) { m.start(inv, in) }

// slowed draws whether the invocation of the task id is a straggler: a
// hash of the model's seed and the id, so the same task is slowed whatever
// else ran before it (a backup, a retry: other ids, their own draws), and
// two runs of one job (same ids, same seed) see the same stragglers.
func (m *model) slowed(id string) bool {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], m.seed^0x5851F42D4C957F2D)
	h.Write(b[:])
	h.Write([]byte(id))
	// FNV-1a mixes its last bytes into the low bits only: finish with
	// SplitMix64's mixer, then take the top 53 bits as a uniform float in
	// [0, 1).
	x := h.Sum64()
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < m.p.Stragglers.Fraction
}

func (m *model) start(inv *invocation, in *instance) {
	inv.state = invRunning
	inv.inst = in
	inv.start = m.now
	inv.cold = in.served == 0
	in.served++
	in.ver++ // cancels a pending retirement
	in.running = append(in.running, inv)
	if inv.cpu && m.p.Stragglers.Fraction > 0 && m.slowed(inv.id) {
		inv.slow = m.p.Stragglers.Factor
		m.stragglers++
	}
	if !inv.cpu {
		inv.ver++
		m.schedule(&event{at: m.now + inv.work, kind: evFinish, inv: inv, ver: inv.ver})
		return
	}
	if inv.exec {
		// Its CPU demand is known once the handler has run; until then it
		// holds its slot and stops the clock (blocked).
		inv.waiting = true
		m.executing++
		m.onExec(inv)
		return
	}
	m.compute(inv)
}

// measured gives a started exec invocation the CPU time its handler took
// and lets it compute under the model from now, the instant it started
// (the clock has not moved since).
func (m *model) measured(inv *invocation, cpu time.Duration) {
	inv.waiting = false
	m.executing--
	inv.work = cpu
	m.compute(inv)
}

// compute starts a compute invocation's CPU demand on its instance.
func (m *model) compute(inv *invocation) {
	in := inv.inst
	inv.left = inv.work.Seconds()
	if inv.slow > 1 {
		inv.left *= inv.slow
	}
	inv.last = m.now
	if in.host != nil {
		in.host.running++
	}
	m.reshare(in)
}

// reshare brings the compute invocations sharing CPU with in up to date
// and reschedules their ends at their new rates.
func (m *model) reshare(in *instance) {
	var insts []*instance
	if in.host != nil {
		insts = in.host.insts
	} else {
		insts = []*instance{in}
	}
	for _, x := range insts {
		n := 0
		for _, inv := range x.running {
			if inv.cpu && !inv.waiting {
				n++
			}
		}
		share := 1.0 // single-threaded
		if m.vcpus > 0 {
			share = min(share, m.vcpus/float64(n))
		}
		if x.host != nil && x.host.running > 0 {
			share = min(share, m.p.HostCPUs/float64(x.host.running))
		}
		rate := share * m.p.CPUSpeed
		for _, inv := range x.running {
			if !inv.cpu || inv.waiting {
				continue
			}
			inv.left -= inv.rate * (m.now - inv.last).Seconds()
			inv.left = max(inv.left, 0)
			inv.last = m.now
			if inv.rate == rate && inv.ver != 0 {
				continue
			}
			inv.rate = rate
			inv.ver++
			m.schedule(&event{at: m.now + time.Duration(inv.left/rate*float64(time.Second)), kind: evFinish, inv: inv, ver: inv.ver})
		}
	}
}

func (m *model) finish(inv *invocation) {
	in := inv.inst
	if m.store != nil && !inv.ioDone && inv.io.requests() > 0 {
		// The CPU demand is done; the storage requests follow, off the
		// CPU.
		inv.ioDone = true
		if inv.cpu {
			inv.cpu = false
			if in.host != nil {
				in.host.running--
			}
			m.reshare(in)
		}
		inv.ver++
		m.schedule(&event{at: m.now + m.store.serve(m.now, inv.io), kind: evFinish, inv: inv, ver: inv.ver})
		return
	}
	inv.state = invDone
	inv.end = m.now
	m.billed += inv.end - inv.start
	m.inFlight--
	inv.admit = false
	for i, r := range in.running {
		if r == inv {
			in.running = append(in.running[:i], in.running[i+1:]...)
			break
		}
	}
	if inv.cpu {
		if in.host != nil {
			in.host.running--
		}
		m.reshare(in)
	}
	m.schedule(&event{at: m.now + m.p.Latency.sample(m.rng), kind: evReturn, inv: inv})
	m.pull(in)
	if m.p.Scheduling == Push && len(m.queue) > 0 {
		m.createFor()
	}
	m.idle(in)
}

// idle starts the keep-alive of an instance with nothing to run.
func (m *model) idle(in *instance) {
	if len(in.running) > 0 || len(in.bound) > 0 || m.p.KeepAlive <= 0 {
		return
	}
	in.ver++
	m.schedule(&event{at: m.now + m.p.KeepAlive, kind: evRetire, inst: in, ver: in.ver})
}

func (m *model) retire(in *instance) {
	in.retired = true
	for i, x := range m.insts {
		if x == in {
			m.insts = append(m.insts[:i], m.insts[i+1:]...)
			break
		}
	}
	if h := in.host; h != nil {
		h.memFree += m.mem
		for i, x := range h.insts {
			if x == in {
				h.insts = append(h.insts[:i], h.insts[i+1:]...)
				break
			}
		}
	}
	if m.p.Scheduling == Push {
		m.createFor() // host memory freed
	}
}

func (m *model) rejectInv(inv *invocation, why string) {
	if inv.admit {
		m.inFlight--
		inv.admit = false
	}
	if inv.async && m.now-inv.sent < m.p.asyncMaxAge() {
		// The platform keeps an asynchronous invocation and tries it
		// again later, as Lambda does with throttled events.
		m.retried++
		inv.state = invQueued
		inv.qver++
		m.schedule(&event{at: m.now + m.p.asyncRetry(), kind: evArrive, inv: inv})
		return
	}
	inv.state = invDone
	inv.reject = why
	m.rejected++
	m.schedule(&event{at: m.now + m.p.Latency.sample(m.rng), kind: evReturn, inv: inv})
}
