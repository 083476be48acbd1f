package gale

import (
	"fmt"
	"reflect"

	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/planner"
)

// textSource is a ReadText or ReadRecords source: the patterns, resolved
// to files when the pipeline runs. recordSize is 0 for text.
type textSource struct {
	patterns   []string
	recordSize int
	named      bool   // ReadTextWithFilename: lines carry their file's name
	fileKernel string // whole files parsed by this FileReader (ReadCSV, ReadJSONLines)
	lines      bool   // fileKernel parses single lines: files split into chunks (ReadJSONLines)
}

// sliceSource is a FromSlice source: its elements already encoded.
type sliceSource struct {
	data    []byte
	offsets []int // start of each record, plus len(data)
}

// genSource is a Generate source.
type genSource struct {
	n      int64
	kernel string
}

// sinkInfo is a WriteText or Collect sink.
type sinkInfo struct {
	format string // "text" or "records"
	path   string
}

// ReadText reads lines of text from local paths or object-store URLs
// (s3://bucket/prefix). A path may be a file, a directory (every file in
// it, recursively, except hidden ones), a prefix of an object store, or a
// glob (*, ?, [...]) in its last elements. Files are split into byte-range
// chunks aligned to line boundaries (see the ChunkSize run option); each
// line belongs to exactly one chunk. Lines end at "\n"; a trailing "\r" is
// removed (also from a last line without "\n"); invalid UTF-8 is passed
// through unchanged.
//
// Files named *.gz, *.bz2 or *.zst (any case) are read through gzip
// (concatenated members too), bzip2 or zstd, streaming, each file as one
// task since a compressed stream cannot be entered in the middle; other
// compressions Gale recognizes by extension (.xz, .lz4, .zip, .br, ...)
// are refused before the job runs, naming the file.
func ReadText(p *Pipeline, paths ...string) Collection[string] {
	loc := callerLoc(1)
	if len(paths) == 0 {
		p.fail(loc, "ReadText needs at least one path")
	}
	label := "ReadText(" + summarize(paths) + ")"
	return addNode[string](p, &node{Node: planner.Node{Kind: planner.Source, Label: label, Loc: loc, Splits: 1},
		text: &textSource{patterns: append([]string(nil), paths...)}})
}

func summarize(paths []string) string {
	switch len(paths) {
	case 0:
		return ""
	case 1:
		return paths[0]
	}
	return fmt.Sprintf("%s and %d more", paths[0], len(paths)-1)
}

// ReadRecords reads fixed-size binary records (size bytes each, such as
// the 100-byte records of the sort benchmark) from the same kinds of paths
// as ReadText, compressed ones included. Every file's size must be a multiple of size; Run reports a
// file that is not, naming it and the offset of its incomplete record.
func ReadRecords(p *Pipeline, size int, paths ...string) Collection[[]byte] {
	loc := callerLoc(1)
	if len(paths) == 0 {
		p.fail(loc, "ReadRecords needs at least one path")
	}
	if size <= 0 {
		p.fail(loc, "ReadRecords: record size must be positive, got %d", size)
	}
	label := fmt.Sprintf("ReadRecords(%d bytes, %s)", size, summarize(paths))
	return addNode[[]byte](p, &node{Node: planner.Node{Kind: planner.Source, Label: label, Loc: loc, Splits: 1},
		text: &textSource{patterns: append([]string(nil), paths...), recordSize: size}})
}

// FromSlice makes a collection of the elements of xs, encoded when
// FromSlice is called (later changes to xs are not seen).
func FromSlice[T any](p *Pipeline, xs []T) Collection[T] {
	loc := callerLoc(1)
	s := &sliceSource{}
	if err := coder.Check[T](); err != nil {
		p.fail(loc, "FromSlice: %v", err)
	} else {
		c := coder.For[T]()
		for _, x := range xs {
			s.offsets = append(s.offsets, len(s.data))
			s.data = c.Append(s.data, x)
		}
	}
	s.offsets = append(s.offsets, len(s.data))
	return addNode[T](p, &node{Node: planner.Node{Kind: planner.Source,
		Label: fmt.Sprintf("FromSlice(%d elements)", len(xs)), Loc: loc, Splits: 1, SourceBytes: int64(len(s.data))},
		slice: s})
}

// Generate makes a collection of fn(0), ..., fn(n-1), computed by the
// workers. fn must be a top-level function or registered with Register.
func Generate[T any](p *Pipeline, n int64, fn func(i int64) T) Collection[T] {
	loc := callerLoc(1)
	name, err := funcName(fn)
	if err != nil {
		p.fail(loc, "Generate: %v", err)
	}
	if n < 0 {
		p.fail(loc, "Generate: negative count %d", n)
	}
	kname := fmt.Sprintf("gen:%s(%s)", name, coder.TypeName[T]())
	p.reg.Put(kname, generatorKernel[T]{fn})
	return addNode[T](p, &node{Node: planner.Node{Kind: planner.Source, Kernel: kname,
		Label: fmt.Sprintf("Generate(%s, %d)", displayName(name), n), Loc: loc, Splits: 1},
		gen: &genSource{n: n, kernel: kname}})
}

// WriteText writes the elements of c as lines of text into the directory
// (or object-store prefix) path, as part files (part-00000, part-00001, ...
// in a directory; part-00000-JOB, ... on object stores) and a _SUCCESS
// manifest listing them (docs/engine.md, "Committing output"). Strings and byte slices are written as
// they are, integers in decimal, floats in the shortest form that reads
// back exactly, bools as true/false, KVs as key, tab, value, and types
// with a String or MarshalText method through it; any other element type
// is refused when the pipeline is built (Map it to strings first). The files
// appear only when the whole job succeeds, all at once; an existing
// non-empty output is refused unless the run has the Overwrite option, and
// then stays readable until the new one replaces it.
func WriteText[T any](c Collection[T], path string) {
	loc := callerLoc(1)
	if path == "" {
		c.p.fail(loc, "WriteText needs an output path")
	}
	if err := checkText(reflect.TypeFor[T]()); err != nil {
		c.p.fail(loc, "WriteText(%s): %v", path, err)
	}
	addNode[T](c.p, &node{Node: planner.Node{Kind: planner.Sink, Label: "WriteText(" + path + ")",
		Inputs: []int{c.id}, Loc: loc}, sink: &sinkInfo{format: "text", path: path}})
}

// WriteRecords writes the bytes of every element as they are, with no
// separator (fixed-size binary records), into part files under path, with
// WriteText's commit rules.
func WriteRecords[T ~string | ~[]byte](c Collection[T], path string) {
	loc := callerLoc(1)
	if path == "" {
		c.p.fail(loc, "WriteRecords needs an output path")
	}
	addNode[T](c.p, &node{Node: planner.Node{Kind: planner.Sink, Label: "WriteRecords(" + path + ")",
		Inputs: []int{c.id}, Loc: loc}, sink: &sinkInfo{format: "raw", path: path}})
}

// Collected holds the elements a Collect sink brought back to the driver.
type Collected[T any] struct {
	values []T
	ok     bool
}

// Values returns the collected elements after a successful Run, or nil
// before. For a given plan the order is deterministic: by producing task,
// then by production.
func (c *Collected[T]) Values() []T { return c.values }

// collector decodes a Collect sink's records into its Collected.
type collector struct {
	decode func(data []byte) error
	reset  func()
}

// Collect brings the elements of c back to the driver when the pipeline
// runs; read them with Values.
func Collect[T any](c Collection[T]) *Collected[T] {
	loc := callerLoc(1)
	checkCoder[T](c.p, loc, "Collect")
	out := &Collected[T]{}
	cd := coder.For[T]()
	col := &collector{
		decode: func(data []byte) error {
			for len(data) > 0 {
				v, n, err := cd.Decode(data)
				if err != nil {
					return err
				}
				out.values = append(out.values, v)
				data = data[n:]
			}
			out.ok = true
			return nil
		},
		reset: func() { out.values, out.ok = nil, false },
	}
	addNode[T](c.p, &node{Node: planner.Node{Kind: planner.Sink, Label: "Collect", Inputs: []int{c.id}, Loc: loc},
		sink: &sinkInfo{format: "records"}, collects: col})
	return out
}
