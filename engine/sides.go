package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/galeproject/gale/internal/kernel"
)

// maxCachedSides bounds how many materialized side inputs a worker keeps
// for the tasks that follow (each is at most half a task's memory budget;
// the driver refuses larger ones).
const maxCachedSides = 4

// sideCache holds the side inputs a worker materialized, so the tasks of a
// stage that one warm worker runs read and decode each side input once.
// Entries are keyed by the side's view kernel and its objects' keys, which
// name one attempt's output: a rerun of a job under the same ID never sees
// another run's values. It is safe for concurrent use; tasks that need an
// entry another task is loading wait for it.
type sideCache struct {
	mu      sync.Mutex
	entries map[string]*sideEntry
	order   []string // least recently used first
}

type sideEntry struct {
	ready chan struct{} // closed when val or err is set
	val   any
	err   error
}

// get returns the cached value under key, calling load (once, whatever
// the concurrency) when there is none. A failed load is not kept.
func (c *sideCache) get(ctx context.Context, key string, load func() (any, error)) (any, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*sideEntry{}
	}
	e, ok := c.entries[key]
	if ok {
		c.touch(key)
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil && ctx.Err() == nil {
			// The loading task failed (it may have been cancelled): this
			// task loads the value itself.
			return c.get(ctx, key, load)
		}
		return e.val, e.err
	}
	e = &sideEntry{ready: make(chan struct{})}
	c.entries[key] = e
	c.order = append(c.order, key)
	for len(c.order) > maxCachedSides {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()
	e.val, e.err = load()
	if e.err != nil {
		// Forget the failure before waiters see it, so one that retries
		// loads afresh.
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
			c.order = removeString(c.order, key)
		}
		c.mu.Unlock()
	}
	close(e.ready)
	return e.val, e.err
}

// touch moves key to the most recently used end; c.mu is held.
func (c *sideCache) touch(key string) {
	c.order = append(removeString(c.order, key), key)
}

func removeString(s []string, v string) []string {
	for i, x := range s {
		if x == v {
			return append(s[:i:i], s[i+1:]...)
		}
	}
	return s
}

// sideValues materializes the side inputs of an operation, through the
// worker's cache.
func (t *task) sideValues(ctx context.Context, sides []SideSpec) ([]any, error) {
	vals := make([]any, len(sides))
	for i, sd := range sides {
		key := sd.Kernel + "\x00" + strings.Join(sd.Keys, "\x00")
		v, err := t.w.sides.get(ctx, key, func() (any, error) { return t.loadSide(ctx, sd) })
		if err != nil {
			return nil, fmt.Errorf("engine: side input %s: %w", sd.Label, err)
		}
		vals[i] = v
	}
	return vals, nil
}

func (t *task) loadSide(ctx context.Context, sd SideSpec) (any, error) {
	view, err := kernel.Lookup[kernel.SideView](t.w.reg, sd.Kernel)
	if err != nil {
		return nil, err
	}
	st, err := t.w.store(ctx, t.spec.Temp, t.spec.StoreOptions)
	if err != nil {
		return nil, err
	}
	m := &t.res.Metrics
	data := make([][]byte, 0, len(sd.Keys))
	for _, k := range sd.Keys {
		b, err := readAll(ctx, st, k, 0, -1)
		if err != nil {
			return nil, err
		}
		m.shuffleGet(1)
		m.ShuffleBytesRead += int64(len(b))
		data = append(data, b)
	}
	return view.Materialize(data)
}
