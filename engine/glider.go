package engine

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/kernel"
)

// GliderConfig reaches the Glider cluster of the glider shuffle strategy.
type GliderConfig struct {
	// Meta is the metadata server's address, Namespace the job's tenant
	// namespace and Token its token.
	Meta      string `json:"meta"`
	Namespace string `json:"namespace"`
	Token     string `json:"token"`
	// Combiners maps a combine kernel to the name of the combine function
	// its merge actions use on the active servers.
	Combiners map[string]string `json:"combiners,omitempty"`
}

// ActionPath is the Glider path of one partition's action of a shuffle.
func ActionPath(job string, shuffle, part int) string {
	return fmt.Sprintf("/%s/shuffle-%d/part-%05d", job, shuffle, part)
}

// gliderClients caches Glider clients by namespace in a worker (they are
// safe for concurrent use) and closes them with the worker's owner.
type gliderClients struct {
	mu      sync.Mutex
	clients map[string]*glider.Client
}

func (g *gliderClients) get(ctx context.Context, cfg *GliderConfig) (*glider.Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := cfg.Meta + "/" + cfg.Namespace
	if c, ok := g.clients[key]; ok {
		return c, nil
	}
	c, err := glider.Dial(ctx, glider.ClientConfig{Meta: cfg.Meta, Namespace: cfg.Namespace, Token: cfg.Token})
	if err != nil {
		return nil, fmt.Errorf("engine: connecting to Glider at %s: %w", cfg.Meta, err)
	}
	if g.clients == nil {
		g.clients = map[string]*glider.Client{}
	}
	g.clients[key] = c
	return c, nil
}

func (g *gliderClients) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var first error
	for k, c := range g.clients {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
		delete(g.clients, k)
	}
	return first
}

// writeActions streams each partition's records into its action. A
// failed stream is aborted, so the action ignores what it sent (merge and
// sort actions keep a stream's records only when it ends cleanly) and a
// retried task adds them once.
func (t *task) writeActions(ctx context.Context, shuffle int, parts [][]byte) (int64, error) {
	c, err := t.w.gliders.get(ctx, t.spec.Glider)
	if err != nil {
		return 0, err
	}
	var sent int64
	for p, data := range parts {
		if len(data) == 0 {
			continue
		}
		path := ActionPath(t.spec.Job, shuffle, p)
		w, err := c.ActionWriter(ctx, path)
		if err != nil {
			return sent, fmt.Errorf("engine: streaming to Glider action %s: %w", path, err)
		}
		if _, err := w.Write(data); err != nil {
			w.Abort()
			return sent, fmt.Errorf("engine: streaming to Glider action %s: %w", path, err)
		}
		if err := w.Close(); err != nil {
			return sent, fmt.Errorf("engine: streaming to Glider action %s: %w", path, err)
		}
		sent += int64(len(data))
		t.res.Metrics.Requests++
	}
	return sent, nil
}

// readAction reads the partition's action: merged partial aggregates for
// a combine, sorted records for a sort.
func (t *task) readAction(ctx context.Context, emit any) error {
	in := t.spec.Input
	m := &t.res.Metrics
	c, err := t.w.gliders.get(ctx, t.spec.Glider)
	if err != nil {
		return err
	}
	path := ActionPath(t.spec.Job, in.Shuffle, t.spec.Task)
	r, err := c.ActionReader(ctx, path)
	if err != nil {
		return fmt.Errorf("engine: reading Glider action %s: %w", path, err)
	}
	m.Requests++
	cr := &countingReader{r: r}
	defer func() { m.ShuffleBytesRead += cr.n }()
	if in.Range {
		rk, err := kernel.Lookup[kernel.Ranged](t.w.reg, in.Kernel)
		if err != nil {
			return err
		}
		n, err := rk.EmitSorted(ctx, cr, emit)
		m.RecordsIn += n
		if err != nil {
			return fmt.Errorf("engine: reading Glider action %s: %w", path, err)
		}
		return nil
	}
	data, err := io.ReadAll(cr)
	if err != nil {
		return fmt.Errorf("engine: reading Glider action %s: %w", path, err)
	}
	kk, err := kernel.Lookup[kernel.Keyed](t.w.reg, in.Kernel)
	if err != nil {
		return err
	}
	n, err := kk.Reduce(ctx, [][]byte{data}, true, emit)
	m.RecordsIn += n
	return err
}

// gliderJob is the driver's side of the glider strategy: it creates every
// action of the job's glider shuffles before tasks run, measures what they
// hold, and deletes them at the end.
type gliderJob struct {
	cfg    *GliderConfig
	client *glider.Client
}

func (d *driver) prepareGlider(ctx context.Context) error {
	var any bool
	for _, sh := range d.job.Plan.Shuffles {
		any = any || sh.Glider
	}
	if !any {
		return nil
	}
	if d.job.Glider == nil {
		return fmt.Errorf("engine: the glider shuffle strategy needs a Glider cluster")
	}
	c, err := glider.Dial(ctx, glider.ClientConfig{Meta: d.job.Glider.Meta, Namespace: d.job.Glider.Namespace, Token: d.job.Glider.Token})
	if err != nil {
		return fmt.Errorf("engine: connecting to Glider at %s: %w", d.job.Glider.Meta, err)
	}
	d.glider = &gliderJob{cfg: d.job.Glider, client: c}
	for _, sh := range d.job.Plan.Shuffles {
		if !sh.Glider {
			continue
		}
		if err := c.MkdirAll(ctx, fmt.Sprintf("/%s/shuffle-%d", d.job.ID, sh.ID)); err != nil {
			return fmt.Errorf("engine: creating Glider directory for shuffle %d: %w", sh.ID, err)
		}
		typ, opts := glider.ActionMerge, map[string]string{}
		if sh.Range {
			typ = glider.ActionSort
		} else {
			name, ok := d.job.Glider.Combiners[sh.Kernel]
			if !ok {
				return fmt.Errorf("engine: no Glider combine function for %s", d.job.Plan.Logical.Nodes[sh.Node].Label)
			}
			opts["combine"] = name
		}
		for p := range sh.Partitions {
			path := ActionPath(d.job.ID, sh.ID, p)
			if _, err := c.CreateAction(ctx, path, typ, glider.ActionOptions{Options: opts}); err != nil {
				return fmt.Errorf("engine: creating Glider action %s: %w", path, err)
			}
		}
	}
	return nil
}

// gliderStored measures the state Glider's actions hold when a glider
// shuffle's reduce stage starts (every producer is done).
func (d *driver) gliderStored(ctx context.Context) (int64, error) {
	st, err := d.glider.client.ClusterStats(ctx)
	if err != nil {
		return 0, err
	}
	return st.ActionBytes, nil
}

func (d *driver) closeGlider() {
	if d.glider == nil {
		return
	}
	_ = d.glider.client.DeleteAll(context.Background(), "/"+d.job.ID)
	_ = d.glider.client.Close()
}
