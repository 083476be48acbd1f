// Package gale is the pipeline API of Gale, a dataflow engine whose workers
// are serverless functions.
//
// A program builds a Pipeline of typed Collections with sources (ReadText,
// FromSlice, Generate), transforms (Map, FlatMap, Filter, KeyBy,
// GroupByKey, CombinePerKey, CountPerKey, CountPerElement, SumPerKey,
// Reduce, Flatten; the global aggregates Count, Sum, Min, Max, Mean,
// Largest, Smallest, Combine and Distinct, and their per-key forms; the
// joins CoGroupByKey, Join, LeftJoin and OuterJoin; MapWithSide,
// FlatMapWithSide and FilterWithSide with a side input made by AsSlice,
// AsMap, AsMultiMap or AsSingleton) and sinks (WriteText, Collect), then
// calls Run. Gale's
// planner fuses the transforms into stages, and the engine runs each stage
// as many function invocations on a backend: goroutines in this process by
// default, or worker processes and cloud functions.
//
// User functions travel to workers by name, not as code: the program binary
// itself is the worker. Ordinary top-level functions are registered
// automatically when a transform uses them; a closure must be pinned to a
// name with Register, and is otherwise reported as an error by Run before
// any task starts.
//
// Worker mode: backends that run tasks outside the driver start this same
// program as a worker (the process backend sets GALE_WORKER=process in its
// worker processes; see WorkerMode). A worker runs main as usual up to
// gale.Run, which, instead of running the job, serves tasks with the
// kernels the pipeline construction registered and ends the process when
// its backend stops it. Programs that must not reach pipeline construction
// or their own flag parsing in a worker call ServeWorkerIfRequested first.
// See docs/backends.md.
//
// A whole word count:
//
//	package main
//
//	import (
//		"context"
//		"log"
//		"os"
//		"strings"
//		"unicode"
//
//		"github.com/galeproject/gale"
//	)
//
//	func words(line string, emit func(string)) {
//		for _, w := range strings.FieldsFunc(line, func(r rune) bool {
//			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
//		}) {
//			emit(strings.ToLower(w))
//		}
//	}
//
//	func main() {
//		p := gale.NewPipeline()
//		lines := gale.ReadText(p, "books/*.txt")
//		counts := gale.CountPerElement(gale.FlatMap(lines, words))
//		gale.WriteText(counts, "out")
//		report, err := gale.Run(context.Background(), p)
//		if err != nil {
//			log.Fatal(err)
//		}
//		report.Print(os.Stdout)
//	}
package gale

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// Pipeline is a graph of transforms under construction. It is not safe for
// concurrent use. A Pipeline records construction errors (an unregistered
// closure, a type that cannot travel between workers) instead of panicking;
// Err reports them and Run refuses to start while there are any.
type Pipeline struct {
	nodes []*node
	errs  []error
	reg   *kernel.Registry
	// reshuffles are the side readers' pass-through reshuffles that Run
	// activates, in order, while the plan has stages that wait for each
	// other's side inputs (sides.go).
	reshuffles []*reshuffleNodes
}

// node is a logical node plus what only the driver needs to know about it.
type node struct {
	planner.Node
	text     *textSource
	slice    *sliceSource
	gen      *genSource
	sink     *sinkInfo
	collects *collector
}

// Collection is a distributed collection of elements of type T produced by
// a transform of a pipeline. The zero Collection is invalid.
type Collection[T any] struct {
	p  *Pipeline
	id int
}

// KV is a key and a value; keyed transforms take and produce KVs.
type KV[K, V any] struct {
	Key   K
	Value V
}

// GaleCoder returns the binary coder of KV[K, V] (built from the coders of
// K and V).
func (KV[K, V]) GaleCoder() any {
	return coder.Pair[K, V, KV[K, V]]{
		A: coder.For[K](), B: coder.For[V](),
		Split: func(kv KV[K, V]) (K, V) { return kv.Key, kv.Value },
		Join:  func(k K, v V) KV[K, V] { return KV[K, V]{k, v} },
	}
}

// galeText returns the text formatter of KV[K, V]: key, tab, value.
func (KV[K, V]) galeText() any {
	fk, fv := textFormatter[K](), textFormatter[V]()
	return func(b []byte, kv KV[K, V]) []byte {
		b = fk(b, kv.Key)
		b = append(b, '\t')
		return fv(b, kv.Value)
	}
}

// NewPipeline returns an empty pipeline.
func NewPipeline() *Pipeline { return &Pipeline{reg: kernel.Default} }

// Err reports every construction error so far, or nil.
func (p *Pipeline) Err() error { return errors.Join(p.errs...) }

func (p *Pipeline) fail(loc, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("gale: %s: %s", loc, fmt.Sprintf(format, args...)))
}

// add appends a node whose output (or, for sinks, input) elements are T.
func addNode[T any](p *Pipeline, n *node) Collection[T] {
	n.ID = len(p.nodes)
	if n.Elem == "" {
		n.Elem = registerElem[T](p)
	}
	p.nodes = append(p.nodes, n)
	return Collection[T]{p: p, id: n.ID}
}

// callerLoc returns "file.go:line" of the user code that called the
// transform, skip frames above the caller of callerLoc.
func callerLoc(skip int) string {
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		return "?"
	}
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}

// Pipeline returns the pipeline c belongs to.
func (c Collection[T]) Pipeline() *Pipeline { return c.p }
