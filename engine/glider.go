package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"
	"sync"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
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

// WriterID numbers the map task that writes a sort action's stream: the
// order of producing stages, then tasks, in which data shipping's reduce
// reads the segments of a partition.
func WriterID(stage, task int) uint64 { return uint64(stage)<<32 | uint64(task) }

// GliderSortOutput tells the task of a GliderOutput sort partition where
// its sort action writes the sink's part file.
type GliderSortOutput struct {
	// Action is the sort action; reading it writes the file.
	Action string `json:"action"`
	// Key is the sink output key the file has in the sink's staging store
	// (the action writes straight into it), or empty when File is set.
	Key string `json:"key,omitempty"`
	// File is the Glider file the action writes when the sink's store is
	// not in this Glider namespace; the commit copies it to the output.
	File string `json:"file,omitempty"`
}

// commitSortAction is the whole task of a GliderOutput sort partition: it
// reads its sort action, which sorts, writes the sink's part file and
// answers with a summary, and reports that file as the sink's output. No
// sorted data crosses to the worker.
func (t *task) commitSortAction(ctx context.Context) error {
	so := t.spec.Input.SortOutput
	if len(t.spec.Roots) != 1 || t.spec.Ops[t.spec.Roots[0]].Kind != planner.OpSink {
		return fmt.Errorf("engine: a sort whose actions write the output must feed only a sink")
	}
	op := t.spec.Ops[t.spec.Roots[0]]
	c, err := t.w.gliders.get(ctx, t.spec.Glider)
	if err != nil {
		return err
	}
	sum, err := c.ReadAction(ctx, so.Action)
	m := &t.res.Metrics
	m.shuffleGet(1)
	m.ShuffleBytesRead += int64(len(sum))
	if err != nil {
		return fmt.Errorf("engine: committing Glider sort action %s: %w", so.Action, err)
	}
	recs, size, err := glider.ParseSortSummary(sum)
	if err != nil {
		return fmt.Errorf("engine: committing Glider sort action %s: %w", so.Action, err)
	}
	m.RecordsIn += recs
	m.RecordsOut += recs
	t.res.Sinks = append(t.res.Sinks, SinkOutput{Op: t.spec.Roots[0], Node: op.Node, Key: so.Key, Glider: so.File,
		Records: recs, Bytes: size})
	return nil
}

// readFilterAction feeds the lines a Glider filter action streams to emit.
// The action already split its byte range into lines and dropped the line
// terminators of the text, so lines here end at "\n" only.
func (t *task) readFilterAction(ctx context.Context, emit func(string)) error {
	path := t.spec.Input.GliderAction
	m := &t.res.Metrics
	c, err := t.w.gliders.get(ctx, t.spec.Glider)
	if err != nil {
		return err
	}
	r, err := c.ActionReader(ctx, path)
	if err != nil {
		return fmt.Errorf("engine: reading Glider filter action %s: %w", path, err)
	}
	defer r.Close()
	m.objectGet(1)
	cr := &countingReader{r: r}
	defer func() { m.ObjectBytesRead += cr.n }()
	br := bufio.NewReaderSize(cr, 1<<20)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			emit(string(line))
			m.RecordsIn++
			if m.RecordsIn&4095 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("engine: reading Glider filter action %s: %w", path, err)
		}
	}
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

// PartitionFlusher is implemented by shuffle writers (kernel.ShuffleWriter)
// that can hand over each partition's encoded records while elements are
// fed, instead of holding every partition until Finish. The glider
// strategy uses it to stream partitions into their actions while the map
// task runs: the task then holds one chunk per partition instead of its
// whole output (no buffers grown by copying), and the actions collect
// while the task reads its input.
type PartitionFlusher interface {
	// FlushTo makes the writer call flush(part, data) each time partition
	// part has size (> 0) bytes, with exactly size bytes (a record may straddle
	// two calls); data is valid only during the call. If flush fails, the
	// writer aborts the task with a kernel.Abort panic carrying the
	// error, as sinks do. Finish returns the bytes not yet flushed.
	FlushTo(size int, flush func(part int, data []byte) error)
}

// actionStreams are one map task's write streams into the actions of one
// glider shuffle, each opened at its partition's first bytes.
//
// Every action is created with writer ids: each stream starts with a
// header naming the producing task (WriterID), so exactly one attempt's
// data per task counts in each action, whatever order attempts end or
// fail in. A merge action keeps the first clean stream of each task and
// discards later ones (a task retried after some of its streams ended, or
// whose result was lost, or a duplicate); a sort action keeps the last
// (the attempts' data is the same) and orders ties between equal keys by
// task, as data shipping's reduce reads its segments. A failed stream is
// aborted, so the action ignores what it sent (merge and sort actions
// keep a stream's records only when it ends cleanly).
type actionStreams struct {
	ctx     context.Context
	c       *glider.Client
	job     string
	shuffle int
	header  []byte
	ws      []*glider.ActionWriter // per partition; nil until opened
	sent    int64                  // bytes written to the streams
	ends    int64                  // streams ended (requests)
}

func (t *task) newActionStreams(ctx context.Context, shuffle, parts int) (*actionStreams, error) {
	c, err := t.w.gliders.get(ctx, t.spec.Glider)
	if err != nil {
		return nil, err
	}
	header := glider.AppendRecord(nil, []byte(glider.WriterKey), binary.AppendUvarint(nil, WriterID(t.spec.Stage, t.spec.Task)))
	return &actionStreams{ctx: ctx, c: c, job: t.spec.Job, shuffle: shuffle, header: header,
		ws: make([]*glider.ActionWriter, parts)}, nil
}

// write appends data to partition part's stream, opening it first.
func (s *actionStreams) write(part int, data []byte) error {
	if part >= len(s.ws) {
		s.ws = append(s.ws, make([]*glider.ActionWriter, part+1-len(s.ws))...)
	}
	w := s.ws[part]
	if w == nil {
		path := ActionPath(s.job, s.shuffle, part)
		var err error
		if w, err = s.c.ActionWriter(s.ctx, path); err != nil {
			return fmt.Errorf("engine: streaming to Glider action %s: %w", path, err)
		}
		s.ws[part] = w
		if _, err := w.Write(s.header); err != nil {
			return fmt.Errorf("engine: streaming to Glider action %s: %w", path, err)
		}
		s.sent += int64(len(s.header))
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("engine: streaming to Glider action %s: %w", ActionPath(s.job, s.shuffle, part), err)
	}
	s.sent += int64(len(data))
	return nil
}

// end writes the rest of each partition, sends every stream's last bytes
// and only then ends the streams, so a failure while sending aborts them
// all and leaves the actions' state as it was (a failure between two ends
// is what the writer ids cover). On error, every stream not ended is
// aborted.
func (s *actionStreams) end(rest [][]byte) error {
	for p, data := range rest {
		if len(data) > 0 {
			if err := s.write(p, data); err != nil {
				s.abort()
				return err
			}
		}
	}
	for p, w := range s.ws {
		if w == nil {
			continue
		}
		if err := w.Flush(); err != nil {
			s.abort()
			return fmt.Errorf("engine: streaming to Glider action %s: %w", ActionPath(s.job, s.shuffle, p), err)
		}
	}
	for p, w := range s.ws {
		if w == nil {
			continue
		}
		if err := w.Close(); err != nil {
			s.abort()
			return fmt.Errorf("engine: streaming to Glider action %s: %w", ActionPath(s.job, s.shuffle, p), err)
		}
		s.ends++
	}
	return nil
}

// abort cuts every stream not ended yet (Abort after Close does nothing).
func (s *actionStreams) abort() {
	for _, w := range s.ws {
		if w != nil {
			w.Abort()
		}
	}
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
	m.shuffleGet(1)
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
	// sortOutputs holds, per GliderOutput shuffle, where each partition's
	// sort action writes its part file.
	sortOutputs map[int][]GliderSortOutput
	// filters holds, per stage reading a lowered filter, each task's
	// filter action.
	filters map[int][]string
}

// GliderFilter is a Filter lowered onto Glider: the stage's tasks read
// what filter actions stream from the text files of its source instead
// of the files.
type GliderFilter struct {
	// Predicate names the line predicate registered in the active
	// servers' registry; Arg is its argument.
	Predicate string `json:"predicate"`
	Arg       string `json:"arg,omitempty"`
}

// gliderLocated is implemented by object stores on Glider files
// (glider/gliderstore.Store): where their root directory is.
type gliderLocated interface {
	Location() (meta, namespace, root string)
}

// gliderPathOf returns the Glider path of key in store st when st is a
// store on the files of the job's Glider namespace.
func (d *driver) gliderPathOf(st any, key string) (string, bool) {
	gl, ok := st.(gliderLocated)
	if !ok || d.job.Glider == nil {
		return "", false
	}
	meta, ns, root := gl.Location()
	if meta != d.job.Glider.Meta || ns != d.job.Glider.Namespace {
		return "", false
	}
	return strings.TrimSuffix(root, "/") + "/" + key, true
}

func (d *driver) prepareGlider(ctx context.Context) error {
	var used bool
	for _, sh := range d.job.Plan.Shuffles {
		used = used || sh.Glider
	}
	for _, st := range d.job.Plan.Stages {
		used = used || st.GliderFilter
	}
	if !used {
		return nil
	}
	if d.job.Glider == nil {
		return fmt.Errorf("engine: the glider shuffle strategy needs a Glider cluster")
	}
	c, err := glider.Dial(ctx, glider.ClientConfig{Meta: d.job.Glider.Meta, Namespace: d.job.Glider.Namespace, Token: d.job.Glider.Token})
	if err != nil {
		return fmt.Errorf("engine: connecting to Glider at %s: %w", d.job.Glider.Meta, err)
	}
	d.glider = &gliderJob{cfg: d.job.Glider, client: c, sortOutputs: map[int][]GliderSortOutput{}, filters: map[int][]string{}}
	if err := d.prepareFilters(ctx); err != nil {
		return err
	}
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
			opts["writer-ids"] = "true"
			if sh.GliderValueKey >= 0 {
				opts["value-key"] = fmt.Sprint(sh.GliderValueKey)
			}
		} else {
			name, ok := d.job.Glider.Combiners[sh.Kernel]
			if !ok {
				return fmt.Errorf("engine: no Glider combine function for %s", d.job.Plan.Logical.Nodes[sh.Node].Label)
			}
			opts["combine"] = name
			opts["order"] = "none" // the reduce groups (and orders) the keys itself
			opts["writer-ids"] = "true"
		}
		var outs []GliderSortOutput
		if sh.GliderOutput {
			var err error
			if outs, err = d.sortOutputs(ctx, sh, opts); err != nil {
				return err
			}
			d.glider.sortOutputs[sh.ID] = outs
		}
		for p := range sh.Partitions {
			path := ActionPath(d.job.ID, sh.ID, p)
			o := opts
			if outs != nil {
				o = maps.Clone(opts)
				o["output"] = outs[p].File
				if outs[p].Key != "" {
					o["output"], _ = d.gliderPathOf(d.staging[d.sortSink(sh)].store, outs[p].Key)
				}
			}
			// Interleaving lets a map task's stream go on while another
			// waits for data: merge and sort actions stage each stream
			// and fold it into their state only at its end.
			if _, err := c.CreateAction(ctx, path, typ, glider.ActionOptions{Options: o, Interleave: true}); err != nil {
				return fmt.Errorf("engine: creating Glider action %s: %w", path, err)
			}
		}
	}
	return nil
}

// sortSink returns the sink node that consumes a GliderOutput shuffle.
func (d *driver) sortSink(sh planner.Shuffle) int {
	st := d.job.Plan.Stages[sh.Consumer]
	return st.Ops[st.Roots[0]].Node
}

// sortOutputs decides where the sort actions of a GliderOutput shuffle
// write the part files: straight into the sink's staging area when that is
// in the job's Glider namespace (the commit then only renames them), else
// into Glider files of the job that the commit copies to the output. It
// sets the actions' output options in opts.
func (d *driver) sortOutputs(ctx context.Context, sh planner.Shuffle, opts map[string]string) ([]GliderSortOutput, error) {
	node := d.sortSink(sh)
	sink, st := d.job.Sinks[node], d.staging[node]
	if st == nil {
		return nil, fmt.Errorf("engine: sort %s writes through Glider to a sink with no staging area", d.job.Plan.Logical.Nodes[sh.Node].Label)
	}
	opts["commit"], opts["values"] = "read", "true"
	switch sink.Format {
	case "text":
		opts["terminator"] = "\n"
	case "raw":
	default:
		return nil, fmt.Errorf("engine: sort %s writes through Glider to a %s sink; want text or raw", d.job.Plan.Logical.Nodes[sh.Node].Label, sink.Format)
	}
	outs := make([]GliderSortOutput, sh.Partitions)
	key := func(p int) string { return fmt.Sprintf("attempts/glider-s%d-p%05d", sh.ID, p) }
	if dir, ok := d.gliderPathOf(st.store, key(0)); ok {
		if err := d.glider.client.MkdirAll(ctx, path.Dir(dir)); err != nil {
			return nil, fmt.Errorf("engine: creating the staging directory %s: %w", path.Dir(dir), err)
		}
		for p := range outs {
			outs[p] = GliderSortOutput{Action: ActionPath(d.job.ID, sh.ID, p), Key: key(p)}
		}
		return outs, nil
	}
	dir := fmt.Sprintf("/%s/shuffle-%d/sorted", d.job.ID, sh.ID)
	if err := d.glider.client.MkdirAll(ctx, dir); err != nil {
		return nil, fmt.Errorf("engine: creating Glider directory %s: %w", dir, err)
	}
	for p := range outs {
		outs[p] = GliderSortOutput{Action: ActionPath(d.job.ID, sh.ID, p), File: fmt.Sprintf("%s/part-%05d", dir, p)}
	}
	return outs, nil
}

// prepareFilters creates one filter action per task of each stage whose
// Filter is lowered onto Glider, over the byte range the task would have
// read.
func (d *driver) prepareFilters(ctx context.Context) error {
	for _, st := range d.job.Plan.Stages {
		if !st.GliderFilter {
			continue
		}
		f, ok := d.job.GliderFilters[st.FilterNode]
		if !ok {
			return fmt.Errorf("engine: stage %d: no predicate for the Filter lowered onto Glider", st.ID)
		}
		if st.Input != planner.FromSource {
			return fmt.Errorf("engine: stage %d: a Filter lowered onto Glider must read a source", st.ID)
		}
		dir := fmt.Sprintf("/%s/filter-%d", d.job.ID, st.ID)
		if err := d.glider.client.MkdirAll(ctx, dir); err != nil {
			return fmt.Errorf("engine: creating Glider directory %s: %w", dir, err)
		}
		ins := d.job.Inputs[st.Source]
		paths := make([]string, len(ins))
		for i, in := range ins {
			if in.Kind != InputText {
				return fmt.Errorf("engine: stage %d: a Filter lowered onto Glider needs text input, not %s", st.ID, in.Kind)
			}
			src, err := d.cfg.OpenStore(ctx, in.URL, d.job.StoreOptions)
			if err != nil {
				return err
			}
			file, ok := d.gliderPathOf(src, in.Key)
			if !ok {
				return fmt.Errorf("engine: stage %d: input %s/%s is not in the job's Glider namespace; a Filter can be lowered only onto it", st.ID, in.URL, in.Key)
			}
			paths[i] = fmt.Sprintf("%s/split-%05d", dir, i)
			opts := map[string]string{"input": file, "predicate": f.Predicate, "arg": f.Arg,
				"offset": fmt.Sprint(in.Off), "length": fmt.Sprint(in.Len)}
			if _, err := d.glider.client.CreateAction(ctx, paths[i], glider.ActionFilter, glider.ActionOptions{Options: opts}); err != nil {
				return fmt.Errorf("engine: creating Glider filter action %s: %w", paths[i], err)
			}
		}
		d.glider.filters[st.ID] = paths
	}
	return nil
}

// copyGliderOutput copies a part file a sort action wrote in Glider to the
// sink's staging store (an output outside the job's Glider namespace).
func (d *driver) copyGliderOutput(ctx context.Context, file string, dst objstore.Store, key string) (int64, error) {
	r, err := d.glider.client.Open(ctx, file)
	if err != nil {
		return 0, fmt.Errorf("engine: reading Glider output %s: %w", file, err)
	}
	defer r.Close()
	cr := &countingReader{r: r}
	if err := dst.Put(ctx, key, cr); err != nil {
		return cr.n, fmt.Errorf("engine: committing Glider output %s: %w", file, err)
	}
	return cr.n, nil
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

// commitGliderOutput copies one part file a sort action wrote in Glider to
// the sink's staging store as key, and accounts for the copy.
func (d *driver) commitGliderOutput(ctx context.Context, node int, dst objstore.Store, o SinkOutput, key string) error {
	n, err := d.copyGliderOutput(ctx, o.Glider, dst, key)
	d.report.mu.Lock()
	for _, sh := range d.job.Plan.Shuffles {
		if sh.GliderOutput && d.sortSink(sh) == node {
			d.report.Shuffles[sh.ID].BytesCopiedAtCommit += n
		}
	}
	d.report.mu.Unlock()
	return err
}

// reportSortOutputs records what the sort actions of GliderOutput
// shuffles wrote straight to storage.
func (d *driver) reportSortOutputs() {
	for _, sh := range d.job.Plan.Shuffles {
		if !sh.GliderOutput {
			continue
		}
		var n int64
		for t := range d.job.Plan.Stages[sh.Consumer].Tasks {
			if w := d.sched.Winner(TaskRef{sh.Consumer, t}); w != nil {
				for _, o := range w.Sinks {
					n += o.Bytes
				}
			}
		}
		d.report.mu.Lock()
		d.report.Shuffles[sh.ID].BytesWrittenByActions = n
		d.report.mu.Unlock()
	}
}
