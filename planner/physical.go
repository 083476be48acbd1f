package planner

import (
	"errors"
	"fmt"
	"strings"
)

// Options steers compilation.
type Options struct {
	// Parallelism is how many tasks the backend runs at once; lifted
	// combines use at most this many partitions. Default 1.
	Parallelism int
	// Partitions, when positive, fixes every shuffle's partition count
	// (a node's own Partitions still wins).
	Partitions int
	// PartitionBytes is the target number of input bytes behind one
	// partition of a shuffle that is not lifted. Default 256 MiB.
	PartitionBytes int64
	// MaxPartitions caps chosen partition counts. Default 10,000.
	MaxPartitions int
	// MaxShuffleReads bounds the ranged reads of one data-shipping
	// shuffle: M map outputs read by N reduce tasks cost M×N requests.
	// Above it, each reduce task reads a run of contiguous partitions of
	// every map output with one request (Shuffle.ReadRun), so the
	// shuffle costs at most this many reads (at least M). Shuffles whose
	// node fixes its partition count (a sort's SortPartitions) and
	// Iterate shuffles are never coalesced. Default 100,000 (a tenth of a
	// 1000 × 1000 shuffle); negative: no bound.
	MaxShuffleReads int64
	// CombinedPartitionBytes is the target number of input bytes behind
	// one partition of a lifted combine: the partial aggregates crossing
	// the shuffle are at most its input, so a small input gets few
	// partitions however wide the backend is. Default 64 MiB.
	CombinedPartitionBytes int64
	// NoLift disables combiner lifting: combines then shuffle every value.
	NoLift bool
	// SortPartitionBytes is the target number of input bytes behind one
	// partition of a sort. Default 256 MiB.
	SortPartitionBytes int64
	// Glider selects the glider shuffle strategy: lifted combines stream
	// their partial aggregates into Glider merge actions and sorts stream
	// their records into Glider sort actions, one action per partition,
	// instead of writing shuffle objects (data shipping). Other shuffles
	// (GroupByKey, unlifted combines, Iterate) ship data either way.
	Glider bool
	// GliderSortSinks names the Sort nodes whose sorted elements, written
	// one after the other (with a line terminator for text), are exactly
	// the part file of the sink that consumes them: the caller checked the
	// element encoding and the sink format. With Glider, the sort actions
	// of such a sort write the part files themselves when the sink is the
	// only operation of the consuming stage (Shuffle.GliderOutput).
	GliderSortSinks map[int]bool
	// GliderFilters names the Narrow nodes — line filters by a predicate
	// registered with the active servers, over a text source stored in the
	// job's Glider namespace — that may be lowered onto Glider filter
	// actions. A node is lowered when it is the only consumer of its
	// source: the source's tasks then read the actions' output.
	GliderFilters map[int]bool
	// GliderValueKeys gives, for Sort nodes whose records to Glider carry
	// no key of their own, how many leading bytes of the value make the
	// key (0: all of it); Shuffle.GliderValueKey.
	GliderValueKeys map[int]int
	// GliderUnlifted names Combine nodes whose values have their
	// accumulators' encoding and fold with a merge action's combine
	// function (sums): with Glider they stream into merge actions even
	// when the combiner is not lifted (NoLift), as the thesis's reduce
	// streams every pair into the action.
	GliderUnlifted map[int]bool
	// GliderAuto makes the planner choose the strategy of each shuffle
	// (Shuffle.StrategyReason says why): with Glider set, a Glider cluster
	// is reachable and the planner picks glider where it pays; without,
	// every shuffle ships data for the reason in GliderUnavailable.
	GliderAuto bool
	// GliderUnavailable says why no Glider cluster can serve the job, for
	// GliderAuto's reasons.
	GliderUnavailable string
}

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = 1
	}
	if o.PartitionBytes <= 0 {
		o.PartitionBytes = 256 << 20
	}
	if o.MaxPartitions <= 0 {
		o.MaxPartitions = 10000
	}
	if o.MaxShuffleReads == 0 {
		o.MaxShuffleReads = 100_000
	}
	if o.SortPartitionBytes <= 0 {
		o.SortPartitionBytes = 256 << 20
	}
	if o.CombinedPartitionBytes <= 0 {
		o.CombinedPartitionBytes = 64 << 20
	}
	return o
}

// InputKind says where a stage's tasks read their elements.
type InputKind int

// Stage input kinds.
const (
	// FromSource tasks read one split each of a source node.
	FromSource InputKind = iota + 1
	// FromShuffle tasks read one partition each of a shuffle.
	FromShuffle
)

// OpKind is the kind of one operation inside a stage.
type OpKind int

// Operation kinds.
const (
	// OpNarrow applies a narrow kernel.
	OpNarrow OpKind = iota + 1
	// OpFlatten passes elements through unchanged.
	OpFlatten
	// OpShuffleWrite partitions elements into a shuffle.
	OpShuffleWrite
	// OpSink writes elements to a sink.
	OpSink
	// OpSample keeps a sample of the keys of a sort's input; it is the
	// terminal of a sampling stage.
	OpSample
)

// Op is one operation of a stage's operation tree.
type Op struct {
	// Kind is what the operation does.
	Kind OpKind
	// Node is the logical node the operation implements.
	Node int
	// Kernel and Elem are copied from the node: the kernel to apply and the
	// element kernel of the operation's output (for shuffle writes and
	// sinks, of its input). Params are the node's kernel parameters.
	Kernel string
	Elem   string
	Params []byte
	// Sides are the node's side inputs (Node.Sides): sink nodes whose
	// whole output the operation reads before its first element.
	Sides []int
	// Children are indices into Stage.Ops fed by this operation's output.
	Children []int
	// Shuffle is the shuffle written by an OpShuffleWrite.
	Shuffle int
	// Combine reports that an OpShuffleWrite aggregates values per key
	// before writing (a lifted combiner).
	Combine bool
}

// StageRole says what a stage is for.
type StageRole int

// Stage roles.
const (
	// Compute stages produce the job's data.
	Compute StageRole = iota
	// Sampling stages run a sort's producing operations only to sample its
	// keys; their results decide the sort's range split points.
	Sampling
)

// Stage is a set of identical tasks.
type Stage struct {
	// ID is the stage's index in Plan.Stages; stages are in an order in
	// which every stage follows the stages it depends on.
	ID int
	// Input is where the tasks read: a source node or a shuffle.
	Input InputKind
	// Source is the source node (FromSource) or the shuffle's node
	// (FromShuffle).
	Source int
	// Shuffle is the shuffle read (FromShuffle).
	Shuffle int
	// Tasks is the number of tasks.
	Tasks int
	// Ops is the fused operation tree; Roots are the ops fed by the input.
	Ops   []Op
	Roots []int
	// Deps are the stages that must finish first.
	Deps []int
	// Role is Compute, or Sampling for a sort's sampling pass (SortShuffle
	// names the sort).
	Role        StageRole
	SortShuffle int
	// GliderFilter reports that the stage's source is read through Glider
	// filter actions that apply FilterNode (a Narrow node, not among the
	// stage's Ops) next to the data; Roots are fed its output.
	GliderFilter bool
	FilterNode   int
}

// Shuffle is one shuffle edge between stages.
type Shuffle struct {
	// ID is the shuffle's index in Plan.Shuffles.
	ID int
	// Node is the GroupByKey or Combine node.
	Node int
	// Kernel is the node's keyed kernel.
	Kernel string
	// Partitions is the number of partitions map tasks write, and
	// PartitionsWhy how it was chosen (Explain prints it).
	Partitions    int
	PartitionsWhy string
	// ReadRun is how many contiguous partitions one reduce task reads
	// from each map output, with one request per map output: 1, or more
	// when the shuffle's M×N reads exceed Options.MaxShuffleReads. The
	// consumer stage has ceil(Partitions/ReadRun) tasks, task t reading
	// partitions [t×ReadRun, (t+1)×ReadRun); its output has that many
	// parts, in partition order.
	ReadRun int
	// Combined reports that map tasks write partial aggregates.
	Combined bool
	// EstimatedBytes is the source volume behind the shuffle.
	EstimatedBytes int64
	// Producers are the stages that write the shuffle; Consumer reads it.
	Producers []int
	Consumer  int
	// Range reports a sort: range-partitioned by sampled split points,
	// each partition sorted. Samplers are the sampling stages.
	Range    bool
	Samplers []int
	// Iterate reports that the consumer's tasks are iterate workers, which
	// must all run at once.
	Iterate bool
	// Glider reports that the shuffle goes through Glider actions (merge
	// actions for a lifted combine or a GliderUnlifted one, sort actions
	// for a sort).
	Glider bool
	// GliderOutput reports a glider sort whose sort actions write the
	// consuming sink's part files straight to storage (thesis Fig. 5.9):
	// the consumer stage's tasks only trigger each action's write and
	// report the file, so the sorted data never crosses back to workers.
	GliderOutput bool
	// GliderValueKey, when at least 0, tells the sort actions that records
	// with an empty key sort by that many leading bytes of their value
	// (all of it for 0); -1 when records carry their keys.
	GliderValueKey int
	// StrategyReason says why the planner chose the strategy under
	// Options.GliderAuto; empty when the strategy was fixed.
	StrategyReason string
}

// Strategy names the shuffle's strategy for reports.
func (s Shuffle) Strategy() string {
	if s.Glider {
		return "glider"
	}
	return "data-shipping"
}

// Plan is a compiled physical plan.
type Plan struct {
	Logical  Logical
	Stages   []Stage
	Shuffles []Shuffle
}

// Compile turns a logical graph into a physical plan.
func Compile(l Logical, opt Options) (*Plan, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	c := &compiler{l: l, opt: opt, plan: &Plan{Logical: l}, consumers: make([][]int, len(l.Nodes)),
		shuffleOf: map[int]int{}, bytes: make([]int64, len(l.Nodes))}
	for _, n := range l.Nodes {
		for _, in := range n.Inputs {
			c.consumers[in] = append(c.consumers[in], n.ID)
		}
	}
	// Estimated bytes flowing out of each node: sources' sizes summed down
	// the graph (a useful upper bound without statistics).
	for _, n := range l.Nodes {
		if n.Kind == Source {
			c.bytes[n.ID] = n.SourceBytes
		}
		for _, in := range n.Inputs {
			c.bytes[n.ID] += c.bytes[in]
		}
	}
	// Shuffles are numbered in node order.
	for _, n := range l.Nodes {
		if n.Kind == GroupByKey || n.Kind == Combine || n.Kind == Sort || n.Kind == Iterate {
			id := len(c.plan.Shuffles)
			c.shuffleOf[n.ID] = id
			c.plan.Shuffles = append(c.plan.Shuffles, Shuffle{
				ID: id, Node: n.ID, Kernel: n.Kernel, EstimatedBytes: c.bytes[n.ID],
				Combined: n.Kind == Combine && n.Liftable && !opt.NoLift,
				Range:    n.Kind == Sort,
				Iterate:  n.Kind == Iterate,
				Consumer: -1,
			})
		}
	}
	for i := range c.plan.Shuffles {
		s := &c.plan.Shuffles[i]
		s.Partitions, s.PartitionsWhy = c.partitions(l.Nodes[s.Node], s)
		s.Glider, s.StrategyReason = c.strategy(s, l.Nodes[s.Node]) // strategy.go
		s.GliderValueKey = -1
		if n, ok := opt.GliderValueKeys[s.Node]; ok && s.Glider && s.Range {
			s.GliderValueKey = n
		}
	}
	// Source stages first, then shuffle stages in node order: a shuffle's
	// producers always precede it because node IDs are topological.
	for _, n := range l.Nodes {
		if n.Kind == Source {
			c.addStage(FromSource, n.ID, -1, n.Splits, nil)
		}
	}
	for i := range c.plan.Shuffles {
		s := &c.plan.Shuffles[i]
		s.ReadRun = c.readRun(l.Nodes[s.Node], s)
		st := c.addStage(FromShuffle, s.Node, s.ID, (s.Partitions+s.ReadRun-1)/s.ReadRun, s.Producers)
		s.Consumer = st
	}
	// A glider sort consumed only by a sink whose part file is the sorted
	// elements themselves is written by its sort actions.
	for i := range c.plan.Shuffles {
		s := &c.plan.Shuffles[i]
		if !s.Glider || !s.Range || !opt.GliderSortSinks[s.Node] || s.Consumer < 0 {
			continue
		}
		st := c.plan.Stages[s.Consumer]
		if len(st.Roots) == 1 && len(st.Ops) == 1 && st.Ops[st.Roots[0]].Kind == OpSink {
			s.GliderOutput = true
		}
	}
	if err := c.sideDeps(); err != nil {
		return nil, err
	}
	// A shuffle written by nobody (its producers were pruned) would run
	// empty reduce tasks; that cannot happen since every shuffle reads a
	// node that is reachable from a source.
	var errs []error
	for _, s := range c.plan.Shuffles {
		if len(s.Producers) == 0 {
			errs = append(errs, fmt.Errorf("planner: shuffle %s has no producing stage", l.Nodes[s.Node].Label))
		}
	}
	return c.plan, errors.Join(errs...)
}

type compiler struct {
	l         Logical
	opt       Options
	plan      *Plan
	consumers [][]int
	shuffleOf map[int]int
	bytes     []int64
}

// partitions chooses a shuffle's partition count from the data behind it —
// its estimated bytes and, when known, its number of distinct keys — never
// from the backend's width alone: a global aggregate on a backend that runs
// 1000 tasks at once still gets one partition. It returns the count and
// why.
func (c *compiler) partitions(n Node, s *Shuffle) (int, string) {
	if n.Partitions > 0 {
		return n.Partitions, "set on the transform"
	}
	if c.opt.Partitions > 0 {
		return c.opt.Partitions, "set for the job (--partitions, gale.Partitions)"
	}
	var p int
	var why string
	est := FormatBytes(s.EstimatedBytes)
	switch {
	case s.Range:
		// Every worker sorts at least one partition; a partition holds
		// about SortPartitionBytes so it fits a worker's budget or spills
		// a few runs.
		p = int((s.EstimatedBytes + c.opt.SortPartitionBytes - 1) / c.opt.SortPartitionBytes)
		why = fmt.Sprintf("%s to sort, %s per partition (half a task's memory)", est, FormatBytes(c.opt.SortPartitionBytes))
		if p < c.opt.Parallelism {
			why += fmt.Sprintf(", raised to the %d tasks that run at once", c.opt.Parallelism)
		}
		p = max(p, c.opt.Parallelism, 1)
	case s.Combined:
		// Partial aggregates are at most the input and usually far
		// smaller: about CombinedPartitionBytes of input per partition,
		// spread over the available parallelism, no wider.
		p = int((s.EstimatedBytes + c.opt.CombinedPartitionBytes - 1) / c.opt.CombinedPartitionBytes)
		why = fmt.Sprintf("%s of input behind partial aggregates, %s per partition", est, FormatBytes(c.opt.CombinedPartitionBytes))
		if p > c.opt.Parallelism {
			why += fmt.Sprintf(", capped at the %d tasks that run at once", c.opt.Parallelism)
		}
		p = min(max(p, 1), c.opt.Parallelism)
	default:
		p = int((s.EstimatedBytes + c.opt.PartitionBytes - 1) / c.opt.PartitionBytes)
		why = fmt.Sprintf("%s shuffled, %s per partition", est, FormatBytes(c.opt.PartitionBytes))
		p = max(p, 1)
	}
	if n.Keys > 0 && int64(p) > n.Keys {
		p = int(n.Keys)
		why += fmt.Sprintf(", at most its %d distinct key(s)", n.Keys)
	}
	if p > c.opt.MaxPartitions {
		p = c.opt.MaxPartitions
		why += fmt.Sprintf(", capped at %d", c.opt.MaxPartitions)
	}
	return p, why
}

// readRun chooses how many contiguous partitions of each map output a
// reduce task of s reads with one request: the fewest that keep the
// shuffle's reads, M map outputs times the reduce tasks, within
// MaxShuffleReads.
func (c *compiler) readRun(n Node, s *Shuffle) int {
	if s.Glider || s.Iterate || n.Partitions > 0 || c.opt.MaxShuffleReads < 0 {
		return 1
	}
	m := int64(0)
	for _, p := range s.Producers {
		m += int64(c.plan.Stages[p].Tasks)
	}
	return ReadRun(m, s.Partitions, c.opt.MaxShuffleReads)
}

// ReadRun returns the partitions per reduce task that keep a shuffle of m
// map outputs into parts partitions within maxReads ranged reads
// (m × ceil(parts/run) <= maxReads, or one reduce task when even that is
// over): 1 when m × parts is within the bound.
func ReadRun(m int64, parts int, maxReads int64) int {
	if m <= 0 || parts <= 1 || m*int64(parts) <= maxReads {
		return 1
	}
	tasks := max(maxReads/m, 1) // reduce tasks the bound allows
	run := (int64(parts) + tasks - 1) / tasks
	return int(min(run, int64(parts)))
}

func (c *compiler) addStage(in InputKind, node, shuffle, tasks int, deps []int) int {
	st := Stage{Input: in, Source: node, Shuffle: shuffle, Tasks: tasks, Deps: append([]int(nil), deps...)}
	feeds := c.consumers[node]
	if c.opt.Glider && in == FromSource && len(feeds) == 1 && c.opt.GliderFilters[feeds[0]] && c.l.Nodes[feeds[0]].Kind == Narrow {
		st.GliderFilter, st.FilterNode = true, feeds[0]
		feeds = c.consumers[feeds[0]]
	}
	for _, cons := range feeds {
		st.Roots = append(st.Roots, c.fuse(&st, cons)...)
	}
	// A stage that writes a sort first runs as a sampling stage, which
	// must finish before the stage itself can partition by range.
	for _, op := range st.Ops {
		if op.Kind == OpShuffleWrite && c.plan.Shuffles[op.Shuffle].Range {
			smp := sampling(st, op.Shuffle)
			smp.ID = len(c.plan.Stages)
			c.plan.Stages = append(c.plan.Stages, smp)
			sh := &c.plan.Shuffles[op.Shuffle]
			sh.Samplers = append(sh.Samplers, smp.ID)
			st.Deps = append(st.Deps, smp.ID)
		}
	}
	st.ID = len(c.plan.Stages)
	for _, op := range st.Ops {
		if op.Kind == OpShuffleWrite {
			sh := &c.plan.Shuffles[op.Shuffle]
			if !containsInt(sh.Producers, st.ID) {
				sh.Producers = append(sh.Producers, st.ID)
			}
		}
	}
	c.plan.Stages = append(c.plan.Stages, st)
	return st.ID
}

// sampling derives from st the stage that computes only what reaches the
// sort shuffle sh, ending in a sample of its keys instead of the write.
func sampling(st Stage, sh int) Stage {
	smp := Stage{Input: st.Input, Source: st.Source, Shuffle: st.Shuffle, Tasks: st.Tasks, Deps: append([]int(nil), st.Deps...),
		Role: Sampling, SortShuffle: sh, GliderFilter: st.GliderFilter, FilterNode: st.FilterNode}
	var copyOp func(i int) (int, bool)
	copyOp = func(i int) (int, bool) {
		op := st.Ops[i]
		switch op.Kind {
		case OpShuffleWrite:
			if op.Shuffle != sh {
				return 0, false
			}
			op.Kind = OpSample
			smp.Ops = append(smp.Ops, op)
			return len(smp.Ops) - 1, true
		case OpSink:
			return 0, false
		}
		idx := len(smp.Ops)
		smp.Ops = append(smp.Ops, op)
		var kids []int
		for _, k := range op.Children {
			if j, ok := copyOp(k); ok {
				kids = append(kids, j)
			}
		}
		if len(kids) == 0 {
			smp.Ops = smp.Ops[:idx]
			return 0, false
		}
		smp.Ops[idx].Children = kids
		return idx, true
	}
	for _, r := range st.Roots {
		if j, ok := copyOp(r); ok {
			smp.Roots = append(smp.Roots, j)
		}
	}
	return smp
}

// fuse adds the operation for node id, and everything fused below it, to
// st, and returns the operations that take id's input: none when the
// subtree has no effect (no sink or shuffle below it) and was pruned, the
// operations below it for a flatten of one input (a pass-through).
func (c *compiler) fuse(st *Stage, id int) []int {
	n := c.l.Nodes[id]
	op := Op{Node: id, Kernel: n.Kernel, Elem: n.Elem, Params: n.Params, Sides: n.Sides}
	switch n.Kind {
	case Narrow, Flatten:
		if n.Kind == Flatten && len(n.Inputs) == 1 {
			var kids []int
			for _, cons := range c.consumers[id] {
				kids = append(kids, c.fuse(st, cons)...)
			}
			return kids
		}
		op.Kind = OpNarrow
		if n.Kind == Flatten {
			op.Kind = OpFlatten
		}
		idx := len(st.Ops)
		st.Ops = append(st.Ops, op)
		var kids []int
		for _, cons := range c.consumers[id] {
			kids = append(kids, c.fuse(st, cons)...)
		}
		if len(kids) == 0 {
			st.Ops = st.Ops[:idx]
			return nil
		}
		st.Ops[idx].Children = kids
		return []int{idx}
	case GroupByKey, Combine, Sort, Iterate:
		sh := c.shuffleOf[id]
		op.Kind = OpShuffleWrite
		op.Shuffle = sh
		op.Elem = c.l.Nodes[n.Inputs[0]].Elem
		op.Combine = c.plan.Shuffles[sh].Combined
	case Sink:
		op.Kind = OpSink
	default:
		return nil
	}
	st.Ops = append(st.Ops, op)
	return []int{len(st.Ops) - 1}
}

// ErrSideCycle reports stages that would wait for each other because each
// reads a side input the other writes (or its own): the caller must cut
// one of the reading stages, for instance by shuffling the reader's input.
var ErrSideCycle = errors.New("planner: side inputs make stages wait for each other")

// sideDeps makes every stage that reads a side input depend on the stages
// that write it, then renumbers the stages so that each still follows the
// stages it depends on (a source stage may now wait for a shuffle stage).
// A stage that would wait for itself, directly or not, is an error: the
// caller must cut the stage first (gale does so with a reshuffle).
func (c *compiler) sideDeps() error {
	stages := c.plan.Stages
	writers := map[int][]int{} // sink node -> stages writing it
	for _, st := range stages {
		for _, op := range st.Ops {
			if op.Kind == OpSink && !containsInt(writers[op.Node], st.ID) {
				writers[op.Node] = append(writers[op.Node], st.ID)
			}
		}
	}
	reorder := false
	for i := range stages {
		st := &stages[i]
		for _, op := range st.Ops {
			for _, sd := range op.Sides {
				if len(writers[sd]) == 0 {
					return fmt.Errorf("planner: %s reads side input %s, which no stage writes", c.l.Nodes[op.Node].Label, c.l.Nodes[sd].Label)
				}
				for _, w := range writers[sd] {
					if !containsInt(st.Deps, w) {
						st.Deps = append(st.Deps, w)
						reorder = reorder || w >= st.ID
					}
				}
			}
		}
	}
	if !reorder {
		return nil
	}
	// Kahn's algorithm, lowest stage first, so the order changes no more
	// than the new dependencies need.
	n := len(stages)
	waiting := make([]int, n)
	dependents := make([][]int, n)
	for _, st := range stages {
		waiting[st.ID] = len(st.Deps)
		for _, d := range st.Deps {
			dependents[d] = append(dependents[d], st.ID)
		}
	}
	newID := make([]int, n)
	placed := make([]bool, n)
	for next := 0; next < n; next++ {
		pick := -1
		for i := range n {
			if !placed[i] && waiting[i] == 0 {
				pick = i
				break
			}
		}
		if pick < 0 {
			var cyc []string
			for i := range n {
				if !placed[i] {
					cyc = append(cyc, fmt.Sprintf("stage %d (%s)", i, c.l.Nodes[stages[i].Source].Label))
				}
			}
			return fmt.Errorf("%w: %s", ErrSideCycle, strings.Join(cyc, ", "))
		}
		placed[pick] = true
		newID[pick] = next
		for _, d := range dependents[pick] {
			waiting[d]--
		}
	}
	out := make([]Stage, n)
	for _, st := range stages {
		st.ID = newID[st.ID]
		for j, d := range st.Deps {
			st.Deps[j] = newID[d]
		}
		out[st.ID] = st
	}
	c.plan.Stages = out
	for i := range c.plan.Shuffles {
		sh := &c.plan.Shuffles[i]
		for j, p := range sh.Producers {
			sh.Producers[j] = newID[p]
		}
		for j, p := range sh.Samplers {
			sh.Samplers[j] = newID[p]
		}
		if sh.Consumer >= 0 {
			sh.Consumer = newID[sh.Consumer]
		}
	}
	return nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Explain renders the plan for people.
func (p *Plan) Explain() string {
	var b strings.Builder
	nodes := p.Logical.Nodes
	for _, st := range p.Stages {
		role := ""
		if st.Role == Sampling {
			role = fmt.Sprintf(" (sampling keys for shuffle %d)", st.SortShuffle)
		}
		switch st.Input {
		case FromSource:
			n := nodes[st.Source]
			fmt.Fprintf(&b, "stage %d%s: %d task(s) reading %s", st.ID, role, st.Tasks, n.Label)
			if n.SourceBytes > 0 {
				fmt.Fprintf(&b, " [%s]", FormatBytes(n.SourceBytes))
			}
			if st.GliderFilter {
				fmt.Fprintf(&b, " through Glider filter actions applying %s", nodes[st.FilterNode].Label)
			}
			if len(st.Deps) > 0 {
				// A source stage waits only for the side inputs it reads.
				fmt.Fprintf(&b, " after stage(s) %s", joinInts(st.Deps))
			}
			if n.SplitsWhy != "" && role == "" {
				fmt.Fprintf(&b, "; tasks: %s", n.SplitsWhy)
			}
		case FromShuffle:
			s := p.Shuffles[st.Shuffle]
			how := "grouped"
			if s.Combined {
				how = "partial aggregates merged"
			} else if nodes[s.Node].Kind == Combine {
				how = "values combined"
			} else if s.Range && s.GliderOutput {
				how = "each partition's sort action writes its part file; tasks only commit"
			} else if s.Range {
				how = "each partition sorted"
			} else if nodes[s.Node].Kind == Iterate {
				how = "one long-running worker per partition"
			}
			fmt.Fprintf(&b, "stage %d: %d task(s) reading shuffle %d (%s) after stage(s) %s",
				st.ID, st.Tasks, s.ID, how, joinInts(st.Deps))
			if s.ReadRun > 1 {
				fmt.Fprintf(&b, "; each task reads %d contiguous partitions of every map output in one request (M×N reads over MaxShuffleReads)", s.ReadRun)
			}
		}
		b.WriteString("\n")
		for _, r := range st.Roots {
			p.explainOp(&b, st, r, 1)
		}
	}
	return b.String()
}

func (p *Plan) explainOp(b *strings.Builder, st Stage, i, depth int) {
	op := st.Ops[i]
	n := p.Logical.Nodes[op.Node]
	b.WriteString(strings.Repeat("  ", depth))
	switch op.Kind {
	case OpShuffleWrite:
		s := p.Shuffles[op.Shuffle]
		mode := "hash-partitioned"
		if op.Combine {
			mode = "combined per key, hash-partitioned"
		} else if s.Range {
			mode = "range-partitioned by sampled keys"
		}
		into := "partition(s)"
		if s.Glider && s.Range {
			into = "Glider sort action(s)"
		} else if s.Glider {
			into = "Glider merge action(s)"
		}
		fmt.Fprintf(b, "-> %s: shuffle %d, %s into %d %s", n.Label, s.ID, mode, s.Partitions, into)
		if s.PartitionsWhy != "" {
			fmt.Fprintf(b, "; partitions: %s", s.PartitionsWhy)
		}
		if s.StrategyReason != "" {
			fmt.Fprintf(b, " [%s]", s.StrategyReason)
		}
	case OpSample:
		fmt.Fprintf(b, "-> sample keys of %s", n.Label)
	case OpSink:
		fmt.Fprintf(b, "-> %s", n.Label)
	default:
		fmt.Fprintf(b, "%s", n.Label)
	}
	for _, sd := range op.Sides {
		fmt.Fprintf(b, " with side input %s", p.Logical.Nodes[sd].Label)
	}
	if n.Loc != "" {
		fmt.Fprintf(b, "  (%s)", n.Loc)
	}
	b.WriteString("\n")
	for _, k := range op.Children {
		p.explainOp(b, st, k, depth+1)
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// FormatBytes renders a byte count with a binary unit, e.g. "1.5 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
