package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/galeproject/gale/planner"
	"github.com/galeproject/gale/shuffle"
)

// sortSplits are a sort shuffle's split points as descriptors carry them:
// inline when small, else by the key of the object that holds them in the
// temporary store, written once.
type sortSplits struct {
	inline *shuffle.Splits
	key    string
	data   []byte // what goes to key

	once sync.Once
	done chan struct{} // closed once the object is written (or failed)
	err  error         // written before done closes
}

// sortSplits returns the split points of a sort shuffle, the quantiles of
// every sampled key, computed once when its sampling stages are done. It
// runs on the driver loop; split points larger than inlineLimit go to the
// temporary store once, through stored, so descriptors stay small however
// many tasks read them.
func (d *driver) sortSplits(sh planner.Shuffle) *sortSplits {
	if sp, ok := d.splits[sh.ID]; ok {
		return sp
	}
	var keys [][]byte
	for _, smp := range sh.Samplers {
		for t := range d.job.Plan.Stages[smp].Tasks {
			if w := d.sched.Winner(TaskRef{smp, t}); w != nil {
				keys = append(keys, w.Samples...)
			}
		}
	}
	s := shuffle.SplitPoints(keys, sh.Partitions)
	sp := &sortSplits{inline: &s, done: make(chan struct{})}
	if s.Size() > inlineLimit {
		b, err := json.Marshal(s)
		sp = &sortSplits{key: fmt.Sprintf("splits/shuffle-%d", sh.ID), data: b, err: err, done: make(chan struct{})}
	}
	if d.splits == nil {
		d.splits = map[int]*sortSplits{}
	}
	d.splits[sh.ID] = sp
	return sp
}

// storeSplits writes the split points' object, once whichever stage asks
// first; the others wait for it. It does the I/O off the driver loop
// (stageReady).
func (d *driver) storeSplits(sh int) func(ctx context.Context) error {
	sp := d.splits[sh]
	return func(ctx context.Context) error {
		sp.once.Do(func() {
			defer close(sp.done)
			if sp.key == "" || sp.err != nil {
				return
			}
			if err := d.temp.Put(ctx, sp.key, bytes.NewReader(sp.data)); err != nil {
				sp.err = fmt.Errorf("engine: storing the split points of shuffle %d: %w", sh, err)
			}
		})
		select {
		case <-sp.done:
			return sp.err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// splits returns the split points of a range shuffle write, reading them
// from the temporary store when the descriptor names their object.
func (t *task) splits(ctx context.Context, op OpSpec) (*shuffle.Splits, error) {
	s := op.Splits
	if op.SplitsKey != "" {
		st, err := t.w.store(ctx, t.spec.Temp, t.spec.StoreOptions)
		if err != nil {
			return nil, err
		}
		b, err := readAll(ctx, st, op.SplitsKey, 0, -1)
		if err != nil {
			return nil, err
		}
		t.res.Metrics.shuffleGet(1)
		s = new(shuffle.Splits)
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("engine: split points %s/%s: %w", st, op.SplitsKey, err)
		}
	}
	if s == nil {
		return nil, fmt.Errorf("engine: range shuffle write op of shuffle %d has no split points", op.Shuffle)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("engine: shuffle %d: %w", op.Shuffle, err)
	}
	return s, nil
}
