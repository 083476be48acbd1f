package state

import (
	"errors"

	"github.com/galeproject/gale/state/internal/wire"
)

// Coordination objects park blocking callers as waiters and answer them
// when another call releases them. They never hold a goroutine or the
// object's lock while a caller waits. They are never persistent.

var errNotPersistent = errors.New("state: coordination objects are not persistent")

type coord struct{}

func (coord) marshal() ([]byte, error) { return nil, errNotPersistent }
func (coord) unmarshal([]byte) error   { return errNotPersistent }

// dropLost removes (and drops) the waiters whose connection closed.
func dropLost(ws []*waiter) []*waiter {
	keep := ws[:0]
	for _, x := range ws {
		if x.lost() {
			x.drop()
		} else {
			keep = append(keep, x)
		}
	}
	clear(ws[len(keep):])
	return keep
}

func remove(ws []*waiter, w *waiter) ([]*waiter, bool) {
	for i, x := range ws {
		if x == w {
			return append(ws[:i], ws[i+1:]...), true
		}
	}
	return ws, false
}

// barrierObj implements CyclicBarrier: Await parks until parties callers
// have arrived, then releases them all and starts the next generation.
// A caller that gives up (cancel, lost connection) is withdrawn from the
// current generation, which then waits for one more arrival.
type barrierObj struct {
	coord
	parties int64
	gen     int64
	waiting []*waiter
}

func newBarrier(init []byte) (object, *status) {
	n, ok := decInit(init)
	if !ok || n < 1 {
		return nil, fail(wire.CodeBadArgs, "CyclicBarrier needs its number of parties (>= 1) at creation")
	}
	return &barrierObj{parties: n}, nil
}

func (o *barrierObj) checkInit(init []byte) *status {
	if n, ok := decInit(init); !ok || n != o.parties {
		return fail(wire.CodeMismatch, "CyclicBarrier was created with %d parties; this call expects %d", o.parties, n)
	}
	return nil
}

func (o *barrierObj) readOnly(string) bool { return true }

func (o *barrierObj) invoke(m string, args [][]byte, w *waiter) ([]byte, *status, bool) {
	switch m {
	case "Await", "Waiting", "Generation":
		if st := wantArgs(TypeCyclicBarrier, m, args, 0); st != nil {
			return nil, st, false
		}
	}
	switch m {
	case "Waiting":
		return encI64(int64(len(o.waiting))), nil, false
	case "Generation":
		return encI64(o.gen), nil, false
	case "Await":
		if w == nil {
			return nil, fail(wire.CodeInternal, "CyclicBarrier.Await cannot run here"), false
		}
		o.waiting = append(o.waiting, w)
		if int64(len(o.waiting)) < o.parties {
			return nil, nil, true
		}
		// Parties whose connection closed are being withdrawn: they must
		// not complete a generation.
		o.waiting = dropLost(o.waiting)
		if int64(len(o.waiting)) < o.parties {
			return nil, nil, true
		}
		gen := o.gen
		o.gen++
		ws := o.waiting
		o.waiting = nil
		for i, x := range ws {
			// The result is the arrival index (0 = first) and the
			// generation that tripped.
			res := append(encI64(int64(i)), encI64(gen)...)
			if x == w {
				continue // the caller's own reply is the return value
			}
			x.finish(res, nil)
		}
		return append(encI64(int64(len(ws)-1)), encI64(gen)...), nil, false
	}
	return nil, unknownMethod(TypeCyclicBarrier, m, "Await", "Waiting", "Generation"), false
}

func (o *barrierObj) cancel(w *waiter) bool {
	var ok bool
	o.waiting, ok = remove(o.waiting, w)
	return ok
}

// semaphoreObj implements Semaphore with FIFO fairness: an Acquire that
// cannot be served waits behind earlier ones.
type semaphoreObj struct {
	coord
	initial int64
	avail   int64
	queue   []*waiter
}

func newSemaphore(init []byte) (object, *status) {
	n, ok := decInit(init)
	if !ok || n < 0 {
		return nil, fail(wire.CodeBadArgs, "Semaphore needs its initial permits (>= 0) at creation")
	}
	return &semaphoreObj{initial: n, avail: n}, nil
}

func (o *semaphoreObj) checkInit(init []byte) *status {
	if n, ok := decInit(init); !ok || n != o.initial {
		return fail(wire.CodeMismatch, "Semaphore was created with %d permits; this call expects %d", o.initial, n)
	}
	return nil
}

func (o *semaphoreObj) readOnly(string) bool { return true }

// grant serves the queue in order while permits last. A waiter whose
// connection closed is being withdrawn: it is dropped, not granted.
func (o *semaphoreObj) grant() {
	for len(o.queue) > 0 {
		w := o.queue[0]
		if w.lost() {
			o.queue = o.queue[1:]
			w.drop()
			continue
		}
		if w.n > o.avail {
			return
		}
		o.queue = o.queue[1:]
		o.avail -= w.n
		w.finish(nil, nil)
	}
}

func (o *semaphoreObj) invoke(m string, args [][]byte, w *waiter) ([]byte, *status, bool) {
	switch m {
	case "Acquire", "TryAcquire", "Release":
		a, st := argsI64(TypeSemaphore, m, args, 1)
		if st != nil {
			return nil, st, false
		}
		n := a[0]
		if n < 1 {
			return nil, fail(wire.CodeBadArgs, "Semaphore.%s: permits must be >= 1, got %d", m, n), false
		}
		switch m {
		case "Release":
			o.avail += n
			o.grant()
			return nil, nil, false
		case "TryAcquire":
			if len(o.queue) == 0 && o.avail >= n {
				o.avail -= n
				return encBool(true), nil, false
			}
			return encBool(false), nil, false
		}
		if len(o.queue) == 0 && o.avail >= n {
			o.avail -= n
			return nil, nil, false
		}
		if w == nil {
			return nil, fail(wire.CodeInternal, "Semaphore.Acquire cannot block here"), false
		}
		w.n = n
		o.queue = append(o.queue, w)
		return nil, nil, true
	case "Available":
		if st := wantArgs(TypeSemaphore, m, args, 0); st != nil {
			return nil, st, false
		}
		return encI64(o.avail), nil, false
	}
	return nil, unknownMethod(TypeSemaphore, m, "Acquire", "TryAcquire", "Release", "Available"), false
}

func (o *semaphoreObj) cancel(w *waiter) bool {
	var ok bool
	o.queue, ok = remove(o.queue, w)
	if ok {
		o.grant() // a large request leaving the head may unblock smaller ones
	}
	return ok
}

// futureObj implements Future: set once, Get blocks until set.
type futureObj struct {
	coord
	plainInit
	set     bool
	v       []byte
	waiting []*waiter
}

type plainInit struct{}

func (plainInit) checkInit([]byte) *status { return nil }

func (o *futureObj) readOnly(string) bool { return true }

func (o *futureObj) invoke(m string, args [][]byte, w *waiter) ([]byte, *status, bool) {
	switch m {
	case "Set":
		if st := wantArgs(TypeFuture, m, args, 1); st != nil {
			return nil, st, false
		}
		if o.set {
			return nil, fail(wire.CodeAlreadySet, "Future already holds a value; it can be set only once"), false
		}
		o.set, o.v = true, append([]byte(nil), args[0]...)
		for _, x := range o.waiting {
			x.finish(o.v, nil)
		}
		o.waiting = nil
		return nil, nil, false
	case "Get":
		if st := wantArgs(TypeFuture, m, args, 0); st != nil {
			return nil, st, false
		}
		if o.set {
			return o.v, nil, false
		}
		if w == nil {
			return nil, fail(wire.CodeInternal, "Future.Get cannot block here"), false
		}
		o.waiting = append(o.waiting, w)
		return nil, nil, true
	case "IsDone":
		return encBool(o.set), nil, false
	}
	return nil, unknownMethod(TypeFuture, m, "Set", "Get", "IsDone"), false
}

func (o *futureObj) cancel(w *waiter) bool {
	var ok bool
	o.waiting, ok = remove(o.waiting, w)
	return ok
}

// latchObj implements CountDownLatch.
type latchObj struct {
	coord
	initial, count int64
	waiting        []*waiter
}

func newLatch(init []byte) (object, *status) {
	n, ok := decInit(init)
	if !ok || n < 0 {
		return nil, fail(wire.CodeBadArgs, "CountDownLatch needs its count (>= 0) at creation")
	}
	return &latchObj{initial: n, count: n}, nil
}

func (o *latchObj) checkInit(init []byte) *status {
	if n, ok := decInit(init); !ok || n != o.initial {
		return fail(wire.CodeMismatch, "CountDownLatch was created with count %d; this call expects %d", o.initial, n)
	}
	return nil
}

func (o *latchObj) readOnly(string) bool { return true }

func (o *latchObj) invoke(m string, args [][]byte, w *waiter) ([]byte, *status, bool) {
	if st := wantArgs(TypeCountDownLatch, m, args, 0); st != nil {
		return nil, st, false
	}
	switch m {
	case "CountDown":
		if o.count > 0 {
			o.count--
			if o.count == 0 {
				for _, x := range o.waiting {
					x.finish(nil, nil)
				}
				o.waiting = nil
			}
		}
		return encI64(o.count), nil, false
	case "Count":
		return encI64(o.count), nil, false
	case "Await":
		if o.count == 0 {
			return nil, nil, false
		}
		if w == nil {
			return nil, fail(wire.CodeInternal, "CountDownLatch.Await cannot block here"), false
		}
		o.waiting = append(o.waiting, w)
		return nil, nil, true
	}
	return nil, unknownMethod(TypeCountDownLatch, m, "CountDown", "Count", "Await"), false
}

func (o *latchObj) cancel(w *waiter) bool {
	var ok bool
	o.waiting, ok = remove(o.waiting, w)
	return ok
}
