package worker

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/galeproject/gale/shuffle"
	"google.golang.org/protobuf/proto"
)

// A stateful ParDo's stage reads a keyed edge. Its task groups the
// partition's records by key (the hash grouper, or the external sort past
// the budget, as for a GroupByKey) and runs its plan over one batch of
// whole keys at a time, each batch in bundles:
//
//  1. a bundle of the batch's elements, all of a key's together, in
//     arrival order;
//  2. then, while timers are set, a bundle of the timers that are due:
//     in batch the input is complete, so the watermark is past every
//     event-time timer and all of them are due, in order of their firing
//     time; a processing-time timer is due once the clock reaches it (the
//     task waits for the earliest when nothing else is due). The SDK
//     fires, within the bundle, a timer a callback sets earlier than the
//     next one delivered; timers set later come back at the end of the
//     bundle and are delivered in the next one;
//  3. when no timer is left, the batch's user state is dropped (every
//     key's windows have expired: the input is complete).
//
// A batch ends at the end of a key once its elements pass a share of the
// task's memory budget or its user state passes its own share, so a task
// holds one batch's state at a time (userstate.go).

// keyedChunk is a run of whole encoded elements of a keyed input; end
// marks the last chunk of a batch.
type keyedChunk struct {
	data []byte
	end  bool
}

// visitGroups calls begin for each group of a grouped partition, value
// for each of its values in arrival order, and end. A value is valid only
// during the call.
func (p *partitionGrouper) visitGroups(ctx context.Context, begin func(key, win []byte) error, value func(v []byte) error, end func() error) error {
	if p.sorter == nil {
		return p.g.each(func(key, win []byte, vals func(func([]byte) bool), _ int) error {
			if err := begin(key, win); err != nil {
				return err
			}
			var err error
			for v := range vals {
				if err = value(v); err != nil {
					return err
				}
			}
			return end()
		})
	}
	var cur []byte // identity of the open group
	err := p.sorter.Sort(ctx, func(rec []byte) error {
		r, _, err := readGroupRecord(rec)
		if err != nil {
			return err
		}
		if cur == nil || !bytes.Equal(cur, r.id) {
			if cur != nil {
				if err := end(); err != nil {
					return err
				}
			}
			cur = append(cur[:0:0], r.id...)
			if err := begin(r.key, r.win); err != nil {
				return err
			}
		}
		return value(r.val)
	})
	st := p.sorter.Stats()
	p.stats.spillRuns, p.stats.spillBytes = int64(st.RunsSpilled), st.BytesSpilled
	if err != nil {
		return err
	}
	if cur != nil {
		return end()
	}
	return nil
}

// keyedLimits bounds the batches of a keyed input.
type keyedLimits struct {
	group groupLimits
	// batchBytes ends a batch at the next key's end once its elements
	// take that many bytes; stateBytes once the user state holds
	// stateLimit bytes.
	batchBytes int64
	stateBytes func() int64
	stateLimit int64
}

// feedKeyed groups a keyed partition (read returns its segments, then
// nil) by key and sends its elements to out in batches of whole keys,
// then closes out.
func feedKeyed(ctx context.Context, read func() ([]byte, error), lim keyedLimits, out chan<- keyedChunk) (st groupStats, err error) {
	defer close(out)
	p := newPartitionGrouper(lim.group)
	defer func() {
		cerr := p.close()
		if err == nil && cerr != nil {
			err = fmt.Errorf("worker: %w", cerr)
		}
		st = p.stats
		st.records = p.records()
	}()
	for {
		seg, err := read()
		if err != nil {
			return st, err
		}
		if seg == nil {
			break
		}
		if err := p.add(seg); err != nil {
			return st, err
		}
	}
	send := func(c keyedChunk) error {
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var buf []byte
	var batch int64
	err = p.visitGroups(ctx,
		func(_, _ []byte) error { return nil },
		func(v []byte) error {
			buf = append(buf, v...)
			batch += int64(len(v))
			if len(buf) >= chunkBytes {
				if err := send(keyedChunk{data: buf}); err != nil {
					return err
				}
				buf = nil
			}
			return nil
		},
		func() error {
			if batch < lim.batchBytes && (lim.stateBytes == nil || lim.stateBytes() < lim.stateLimit) {
				return nil
			}
			err := send(keyedChunk{data: buf, end: true})
			buf, batch = nil, 0
			return err
		})
	if err != nil {
		return st, err
	}
	if len(buf) > 0 || batch > 0 {
		return st, send(keyedChunk{data: buf, end: true})
	}
	return st, nil
}

// timerFamily is one timer family of the stage's stateful ParDo.
type timerFamily struct {
	transform, family string
	domain            pipepb.TimeDomain_Enum
	dec               exec.ElementDecoder
	winEnc            exec.WindowEncoder
}

// pendingTimer is a set timer: the bytes the SDK wrote for it and what
// orders it.
type pendingTimer struct {
	fam  *timerFamily
	id   string
	fire mtime.Time
	raw  []byte
}

// timerQueue holds a task's set timers, the last setting of each
// (transform, family, key, window, tag).
type timerQueue struct {
	fams    map[string]*timerFamily // by transform and family
	pending map[string]*pendingTimer
}

func famKey(transform, family string) string { return transform + "\x00" + family }

// newTimerQueue reads the timer families of the descriptor's ParDos.
func newTimerQueue(desc *fnpb.ProcessBundleDescriptor, coders *graphx.CoderUnmarshaller) (*timerQueue, error) {
	q := &timerQueue{fams: map[string]*timerFamily{}, pending: map[string]*pendingTimer{}}
	for id, t := range desc.GetTransforms() {
		if t.GetSpec().GetUrn() != graphx.URNParDo {
			continue
		}
		var pardo pipepb.ParDoPayload
		if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pardo); err != nil {
			return nil, fmt.Errorf("worker: ParDo %s: %w", id, err)
		}
		for fam, spec := range pardo.GetTimerFamilySpecs() {
			c, err := coders.Coder(spec.GetTimerFamilyCoderId())
			if err != nil {
				return nil, fmt.Errorf("worker: coder of timer family %s of %s: %w", fam, id, err)
			}
			if c.Kind != coder.Timer || c.Window == nil {
				return nil, fmt.Errorf("worker: timer family %s of %s has coder %v, want a timer coder", fam, id, c)
			}
			q.fams[famKey(id, fam)] = &timerFamily{transform: id, family: fam, domain: spec.GetTimeDomain(),
				dec: exec.MakeElementDecoder(c), winEnc: exec.MakeWindowEncoder(c.Window)}
		}
	}
	return q, nil
}

// apply records the timers a bundle wrote for one family: a set timer
// replaces the one of its identity, a cleared one removes it.
func (q *timerQueue) apply(transform, family string, data []byte) error {
	f, ok := q.fams[famKey(transform, family)]
	if !ok {
		return fmt.Errorf("worker: transform %s wrote timers of family %q, which its ParDo does not declare", transform, family)
	}
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		start := len(data) - r.Len()
		fv, err := f.dec.Decode(r)
		if err != nil {
			return fmt.Errorf("worker: decoding a timer of family %s of %s: %w", family, transform, err)
		}
		raw := data[start : len(data)-r.Len()]
		tm, ok := fv.Elm.(exec.TimerRecv)
		if !ok || len(tm.Windows) != 1 {
			return fmt.Errorf("worker: a timer of family %s of %s decoded as %T with %d windows", family, transform, fv.Elm, len(tm.Windows))
		}
		win, err := exec.EncodeWindow(f.winEnc, tm.Windows[0])
		if err != nil {
			return err
		}
		var id []byte
		id = shuffle.AppendField(id, []byte(famKey(transform, family)))
		id = shuffle.AppendField(id, []byte(tm.KeyString))
		id = shuffle.AppendField(id, win)
		id = shuffle.AppendField(id, []byte(tm.Tag))
		if tm.Clear {
			delete(q.pending, string(id))
			continue
		}
		q.pending[string(id)] = &pendingTimer{fam: f, id: string(id), fire: tm.FireTimestamp, raw: bytes.Clone(raw)}
	}
	return nil
}

// due removes and returns the timers due at now, in firing order
// (processing-time timers first, as the SDK orders them), and, when none
// is due but processing-time timers are set, how long until the first.
func (q *timerQueue) due(now time.Time) (due []*pendingTimer, wait time.Duration) {
	nowT := mtime.FromTime(now)
	var next mtime.Time = mtime.MaxTimestamp
	for id, t := range q.pending {
		if t.fam.domain == pipepb.TimeDomain_PROCESSING_TIME && t.fire > nowT {
			next = min(next, t.fire)
			continue
		}
		due = append(due, t)
		delete(q.pending, id)
	}
	slices.SortFunc(due, func(a, b *pendingTimer) int {
		pa, pb := a.fam.domain == pipepb.TimeDomain_PROCESSING_TIME, b.fam.domain == pipepb.TimeDomain_PROCESSING_TIME
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.fire, b.fire), cmp.Compare(a.id, b.id))
	})
	if len(due) == 0 && len(q.pending) > 0 {
		wait = max(next.ToTime().Sub(now), time.Millisecond)
	}
	return due, wait
}

// elements packs due timers into the DataSource's timer messages, one per
// run of timers of the same family, in order.
func timerElements(due []*pendingTimer) []exec.Elements {
	var out []exec.Elements
	for _, t := range due {
		if n := len(out); n > 0 && out[n-1].PtransformID == t.fam.transform && out[n-1].TimerFamilyID == t.fam.family {
			out[n-1].Timers = append(out[n-1].Timers, t.raw...)
			continue
		}
		out = append(out, exec.Elements{PtransformID: t.fam.transform, TimerFamilyID: t.fam.family, Timers: slices.Clone(t.raw)})
	}
	return out
}

// runKeyed runs a keyed input's plan batch by batch (see the top of this
// file). chunks delivers the batches; bundle runs one bundle fed by feed.
func runKeyed(ctx context.Context, chunks <-chan keyedChunk, q *timerQueue, dm *dataManager, state *userState,
	bundle bundleFunc) error {
	for more := true; more; {
		err := bundle(func(ctx context.Context, ch chan<- exec.Elements) error {
			for {
				var c keyedChunk
				var ok bool
				select {
				case c, ok = <-chunks:
				case <-ctx.Done():
					return ctx.Err()
				}
				if !ok {
					more = false
					return nil
				}
				if len(c.data) > 0 {
					select {
					case ch <- exec.Elements{Data: c.data, PtransformID: dm.source}:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if c.end {
					return nil
				}
			}
		})
		if err != nil {
			return err
		}
		if err := fireTimers(ctx, q, dm, bundle); err != nil {
			return err
		}
		if err := state.reset(); err != nil {
			return fmt.Errorf("worker: dropping user state: %w", err)
		}
	}
	return nil
}

// fireTimers delivers due timers, bundle after bundle, until none is set.
func fireTimers(ctx context.Context, q *timerQueue, dm *dataManager,
	bundle bundleFunc) error {
	for {
		for k, data := range dm.takeTimers() {
			if err := q.apply(k.transform, k.family, data); err != nil {
				return err
			}
		}
		due, wait := q.due(time.Now())
		if len(due) == 0 {
			if wait == 0 {
				return nil
			}
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		msgs := timerElements(due)
		err := bundle(func(ctx context.Context, ch chan<- exec.Elements) error {
			for _, m := range msgs {
				select {
				case ch <- m:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}
