package planner

import (
	"errors"
	"fmt"
)

// Kind is the kind of a logical node.
type Kind int

// Logical node kinds.
const (
	// Source produces elements from outside the pipeline.
	Source Kind = iota + 1
	// Narrow transforms each element independently (map, flat map, filter).
	Narrow
	// Flatten unions its inputs.
	Flatten
	// GroupByKey groups KV elements by key.
	GroupByKey
	// Combine combines the values of each key with a combiner.
	Combine
	// Sink writes or collects its input.
	Sink
	// Iterate hands its input, split into Partitions parts, to as many
	// long-running workers that loop over shared state (a terminal, like a
	// sink).
	Iterate
	// Sort orders its input globally by key: a sampling pass picks range
	// split points, the input is range-partitioned, each partition is sorted
	// (externally when it does not fit in a worker's memory), and partitions
	// come out in key order.
	Sort
)

func (k Kind) String() string {
	switch k {
	case Source:
		return "source"
	case Narrow:
		return "narrow"
	case Flatten:
		return "flatten"
	case GroupByKey:
		return "group-by-key"
	case Combine:
		return "combine"
	case Sink:
		return "sink"
	case Sort:
		return "sort"
	case Iterate:
		return "iterate"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Node is one logical transform.
type Node struct {
	// ID is the node's index in Logical.Nodes.
	ID int
	// Kind is what the node does.
	Kind Kind
	// Label is the human name, e.g. "FlatMap(main.tokenize)".
	Label string
	// Kernel names the registered kernel: a narrow kernel, a keyed kernel
	// for shuffles, a generator for generator sources. Empty for flatten,
	// text sources and sinks.
	Kernel string
	// Elem names the element kernel of the node's output type (for sinks:
	// of their input type).
	Elem string
	// Inputs are the IDs of the nodes this node consumes, each smaller
	// than ID.
	Inputs []int
	// Loc is the source location that built the node, "file.go:12".
	Loc string

	// SourceBytes is the estimated size of a source's input in bytes.
	SourceBytes int64
	// Splits is the number of splits (tasks) of a source; at least 1.
	// SplitsWhy says how that number was chosen (ChooseChunk's Why, or
	// the option that set it); Explain prints it.
	Splits    int
	SplitsWhy string

	// Partitions fixes a shuffle's partition count; 0 lets the planner
	// choose.
	Partitions int
	// Liftable reports that a Combine node's combiner can run before the
	// shuffle.
	Liftable bool
	// Keys estimates how many distinct keys a GroupByKey or Combine node
	// sees; 0 means unknown. A global aggregate's one constant key is 1:
	// the planner gives a shuffle no more partitions than keys.
	Keys int64
	// Params are the encoded parameters of a narrow kernel applied with
	// parameters (MapWith); nil otherwise.
	Params []byte
	// Sides are the side inputs of a Narrow node: Sink nodes that
	// materialize a collection every task of the node reads whole
	// (MapWithSide). The stages that write them run first.
	Sides []int
}

// Logical is a pipeline graph in construction order (a topological order).
type Logical struct {
	Nodes []Node
}

// Validate reports every structural problem with l.
func (l Logical) Validate() error {
	var errs []error
	for i, n := range l.Nodes {
		if n.ID != i {
			errs = append(errs, fmt.Errorf("planner: node %d (%s) has ID %d", i, n.Label, n.ID))
		}
		for _, in := range n.Inputs {
			if in < 0 || in >= i {
				errs = append(errs, fmt.Errorf("planner: node %d (%s) reads node %d, which does not precede it", i, n.Label, in))
			} else if l.Nodes[in].Kind == Sink {
				errs = append(errs, fmt.Errorf("planner: node %d (%s) reads sink %d (%s)", i, n.Label, in, l.Nodes[in].Label))
			}
		}
		want := 1
		switch n.Kind {
		case Source:
			want = 0
			if n.Splits < 1 {
				errs = append(errs, fmt.Errorf("planner: source %d (%s) has %d splits, need at least 1", i, n.Label, n.Splits))
			}
		case Flatten:
			if len(n.Inputs) == 0 {
				errs = append(errs, fmt.Errorf("planner: flatten %d (%s) has no inputs", i, n.Label))
			}
			want = len(n.Inputs)
		case Narrow, GroupByKey, Combine, Sink, Sort, Iterate:
		default:
			errs = append(errs, fmt.Errorf("planner: node %d (%s) has unknown kind %d", i, n.Label, n.Kind))
		}
		if len(n.Inputs) != want {
			errs = append(errs, fmt.Errorf("planner: node %d (%s) of kind %s has %d inputs, want %d", i, n.Label, n.Kind, len(n.Inputs), want))
		}
		for _, sd := range n.Sides {
			switch {
			case n.Kind != Narrow:
				errs = append(errs, fmt.Errorf("planner: node %d (%s) of kind %s has side inputs; only narrow nodes take them", i, n.Label, n.Kind))
			case sd < 0 || sd >= i:
				errs = append(errs, fmt.Errorf("planner: node %d (%s) reads side input %d, which does not precede it", i, n.Label, sd))
			case l.Nodes[sd].Kind != Sink:
				errs = append(errs, fmt.Errorf("planner: node %d (%s) reads side input %d (%s), which is not a sink", i, n.Label, sd, l.Nodes[sd].Label))
			}
		}
		if n.Kind == Iterate && n.Partitions < 1 {
			errs = append(errs, fmt.Errorf("planner: iterate %d (%s) needs at least one worker", i, n.Label))
		}
		if n.Partitions < 0 {
			errs = append(errs, fmt.Errorf("planner: node %d (%s) has negative partitions %d", i, n.Label, n.Partitions))
		}
	}
	hasSink := false
	for _, n := range l.Nodes {
		hasSink = hasSink || n.Kind == Sink || n.Kind == Iterate
	}
	if !hasSink {
		errs = append(errs, errors.New("planner: pipeline has no sink (WriteText or Collect), so it would compute nothing"))
	}
	return errors.Join(errs...)
}
