package gale

import (
	"bufio"
	"bytes"
	"context"
	"encoding"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/internal/coder"
	"github.com/galeproject/gale/internal/kernel"
	"github.com/galeproject/gale/planner"
)

// FileLine is a line of text and the name of the file it came from, as
// ReadTextWithFilename reads them.
type FileLine struct {
	// File is the file's path or URL: the path given to
	// ReadTextWithFilename for a file, joined with the name found inside
	// a directory given, or the object's URL in a store.
	File string
	// Line is the line, without its line terminator.
	Line string
}

// ReadTextWithFilename is ReadText that pairs every line with the name of
// its file (an inverted index, counts per file): one source, and one
// stage, for any number of files, split into chunks as ReadText's are.
func ReadTextWithFilename(p *Pipeline, paths ...string) Collection[FileLine] {
	loc := callerLoc(1)
	if len(paths) == 0 {
		p.fail(loc, "ReadTextWithFilename needs at least one path")
	}
	label := "ReadTextWithFilename(" + summarize(paths) + ")"
	return addNode[FileLine](p, &node{Node: planner.Node{Kind: planner.Source, Label: label, Loc: loc, Splits: 1},
		text: &textSource{patterns: append([]string(nil), paths...), named: true}})
}

// FileLines pairs each line with file for a text source read with file
// names (kernel.FileLiner); next must take FileLines.
func (elemKernel[T]) FileLines(next any, file string) (any, error) {
	emit, ok := next.(func(FileLine))
	if !ok {
		return nil, fmt.Errorf("gale: lines with their file names feed %T, want func(gale.FileLine)", next)
	}
	return func(line string) { emit(FileLine{File: file, Line: line}) }, nil
}

// namedTextSplits is textSplits with every split tagged with its file's
// name.
func namedTextSplits(files []inputFile, chunk int64) []engine.InputSpec {
	names := map[[2]string]string{}
	for _, f := range files {
		names[[2]string{f.url, f.key}] = f.name
	}
	ins := textSplits(files, chunk)
	for i := range ins {
		ins[i].File = names[[2]string{ins[i].URL, ins[i].Key}]
	}
	return ins
}

// fileSplits makes the tasks of files read by the FileReader kernel k:
// one whole-file task per file, or, when k parses single lines
// (kernel.LineParser, lines), a task per byte-range chunk of an
// uncompressed file, cut at line boundaries as text is.
func fileSplits(files []inputFile, k string, chunk int64, lines bool) []engine.InputSpec {
	ins := make([]engine.InputSpec, 0, len(files))
	for _, f := range files {
		if !lines || f.codec != "" || f.size <= chunk {
			ins = append(ins, engine.InputSpec{Kind: engine.InputFile, URL: f.url, Key: f.key, Len: f.size,
				Compression: f.codec, File: f.name, Kernel: k, Expect: f.stamp()})
			continue
		}
		for off := int64(0); off < f.size; off += chunk {
			ins = append(ins, engine.InputSpec{Kind: engine.InputFile, URL: f.url, Key: f.key, Off: off, Len: min(chunk, f.size-off),
				File: f.name, Kernel: k, Expect: f.stamp()})
		}
	}
	return ins
}

// fileSource adds a source of files parsed by the FileReader k.
func fileSource[T any](p *Pipeline, kind, kname string, k kernel.FileReader, paths []string, loc string) Collection[T] {
	if len(paths) == 0 {
		p.fail(loc, "%s needs at least one path", kind)
	}
	p.reg.Put(kname, k)
	_, lines := k.(kernel.LineParser)
	if _, ok := k.(kernel.RangeReader); ok {
		lines = true
	}
	return addNode[T](p, &node{Node: planner.Node{Kind: planner.Source, Label: kind + "(" + summarize(paths) + ")", Loc: loc, Splits: 1},
		text: &textSource{patterns: append([]string(nil), paths...), fileKernel: kname, lines: lines}})
}

// CSV.

// ReadCSV reads CSV files (RFC 4180: quoted fields may hold commas,
// quotes and line breaks) into structs of type T, one per record after
// the header line each file starts with. A field of T reads the column
// named by its `csv:"name"` tag, or else the column whose name equals the
// field's name ignoring case; `csv:"-"` skips a field. Columns no field
// reads are ignored; a field whose column is missing fails the job, as
// does a record with a wrong number of fields or a value that does not
// parse, naming the file and line. Fields may be strings, bools, integers,
// floats or types with an UnmarshalText method (time.Time reads RFC 3339);
// other field types are refused when the pipeline is built.
//
// Paths are resolved as ReadText's (compressed files included). An
// uncompressed file is split into chunks at line boundaries (ChunkSize),
// one task each, reading the header from the file's start; a quoted field
// holding a line break across a chunk boundary fails the job naming the
// boundary (read such a file whole with a larger ChunkSize). Compressed
// files are read whole by one task.
func ReadCSV[T any](p *Pipeline, paths ...string) Collection[T] {
	loc := callerLoc(1)
	cols, err := csvColumns(reflect.TypeFor[T]())
	if err != nil {
		p.fail(loc, "ReadCSV: %v", err)
	}
	return fileSource[T](p, "ReadCSV", "csv:"+coder.TypeName[T](), csvReader[T]{cols: cols}, paths, loc)
}

// WriteCSV writes the elements of c, structs whose fields follow
// ReadCSV's rules, as CSV records into part files under path, each part
// starting with a header line of the column names (so ReadCSV reads the
// output back), with WriteText's commit rules. Floats are written in the
// shortest form that reads back exactly, types with a MarshalText method
// through it.
func WriteCSV[T any](c Collection[T], path string) {
	loc := callerLoc(1)
	cols, err := csvColumns(reflect.TypeFor[T]())
	if err != nil {
		c.p.fail(loc, "WriteCSV(%s): %v", path, err)
	}
	lines := narrowNamed[T, string](c, "WriteCSV.Format", "gale.csvFormat", csvFormatKernel[T]{cols: cols}, loc)
	rawSink(lines, "WriteCSV", path, loc)
}

// rawSink adds a sink writing the bytes of string elements as they are.
func rawSink(c Collection[string], kind, path, loc string) {
	if path == "" {
		c.p.fail(loc, "%s needs an output path", kind)
	}
	addNode[string](c.p, &node{Node: planner.Node{Kind: planner.Sink, Label: kind + "(" + path + ")",
		Inputs: []int{c.id}, Loc: loc}, sink: &sinkInfo{format: "raw", path: path}})
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// csvColumn is one field of a CSV record type.
type csvColumn struct {
	Name  string // the column's name
	Field []int  // the field's index path
	Type  reflect.Type
}

// csvColumns lists the columns of struct type t, refusing field types
// that have no text form.
func csvColumns(t reflect.Type) ([]csvColumn, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct: CSV records are read into and written from structs, one field per column", t)
	}
	var cols []csvColumn
	seen := map[string]string{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("csv")
		if tag == "-" {
			continue
		}
		name := f.Name
		if tag != "" {
			name = tag
		}
		if other, dup := seen[strings.ToLower(name)]; dup {
			return nil, fmt.Errorf("%s fields %s and %s both name column %q", t, other, f.Name, name)
		}
		seen[strings.ToLower(name)] = f.Name
		ft := f.Type
		if !implements(ft, textUnmarshalerType) || !implements(ft, textMarshalerType) {
			switch ft.Kind() {
			case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			default:
				return nil, fmt.Errorf("%s field %s is a %s, which has no CSV form: use a string, bool, number or a type "+
					"with UnmarshalText and MarshalText methods, or skip the field with `csv:\"-\"`", t, f.Name, ft)
			}
		}
		cols = append(cols, csvColumn{Name: name, Field: f.Index, Type: ft})
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%s has no exported field to read or write as a CSV column", t)
	}
	return cols, nil
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// parseCSVField sets v, a field of kind t, from s.
func parseCSVField(v reflect.Value, s string) error {
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			return u.UnmarshalText([]byte(s))
		}
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("gale: no CSV form for %s", v.Type())
	}
	return nil
}

// formatCSVField appends the text of v.
func formatCSVField(b []byte, v reflect.Value) ([]byte, error) {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		return append(b, text...), err
	}
	switch v.Kind() {
	case reflect.String:
		return append(b, v.String()...), nil
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.AppendFloat(b, v.Float(), 'g', -1, v.Type().Bits()), nil
	}
	return b, fmt.Errorf("gale: no CSV form for %s", v.Type())
}

// csvReader is the FileReader of ReadCSV.
type csvReader[T any] struct{ cols []csvColumn }

func (k csvReader[T]) ReadFile(ctx context.Context, file string, r io.Reader, next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: CSV records of %s feed %T", coder.TypeName[T](), next)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return 0, nil // an empty file holds no records
	}
	if err != nil {
		return 0, csvError(file, 0, err)
	}
	idx, err := k.columnsOf(file, header)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		if n&1023 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, csvError(file, 0, err)
		}
		v, ferr := k.record(rec, idx, cr)
		if ferr != nil {
			return n, fmt.Errorf("%s:%d:%d: %v", file, ferr.line, ferr.col, ferr.err)
		}
		emit(v)
		n++
	}
}

// columnsOf maps k's columns to their indices in header.
func (k csvReader[T]) columnsOf(file string, header []string) ([]int, error) {
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte order mark
	}
	at := map[string]int{}
	for i, h := range header {
		if _, dup := at[strings.ToLower(strings.TrimSpace(h))]; !dup {
			at[strings.ToLower(strings.TrimSpace(h))] = i
		}
	}
	idx := make([]int, len(k.cols))
	for i, c := range k.cols {
		j, ok := at[strings.ToLower(c.Name)]
		if !ok {
			return nil, fmt.Errorf("%s:1: the header has no column %q for field %s of %s (columns: %s); "+
				"name the column with a `csv:\"...\"` tag, or skip the field with `csv:\"-\"`",
				file, c.Name, fieldName(reflect.TypeFor[T](), c.Field), coder.TypeName[T](), strings.Join(header, ", "))
		}
		idx[i] = j
	}
	return idx, nil
}

// csvFieldError is a field that does not parse, at a line and column of
// the reader's input.
type csvFieldError struct {
	line int64
	col  int
	err  error
}

// record parses the fields of rec, read by cr, into a T.
func (k csvReader[T]) record(rec []string, idx []int, cr *csv.Reader) (T, *csvFieldError) {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i, c := range k.cols {
		if err := parseCSVField(rv.FieldByIndex(c.Field), rec[idx[i]]); err != nil {
			line, col := cr.FieldPos(idx[i])
			return v, &csvFieldError{int64(line), col, fmt.Errorf("column %q (field %s): %v", c.Name,
				fieldName(reflect.TypeFor[T](), c.Field), err)}
		}
	}
	return v, nil
}

// ReadRange parses the CSV records that start in the byte range
// [off, off+n) of the file (kernel.RangeReader): a chunk after the first
// reads the header from the file's start (head), skips to its first line
// start, and stops at the first record starting past its range. Chunks
// are cut at line boundaries, which a quoted field holding a line break
// may straddle: the chunk before such a boundary sees it (the record it
// is reading runs past the line start where the next chunk begins) and
// fails the job naming it, so no chunk silently parses from inside a
// field.
func (k csvReader[T]) ReadRange(ctx context.Context, file string, r io.Reader, off, n int64,
	head func() (io.ReadCloser, error), linesBefore func() (int64, error), next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: CSV records of %s feed %T", coder.TypeName[T](), next)
	}
	end := off + n
	br := bufio.NewReaderSize(r, 64<<10)
	pos := off // the first line start at or after off
	if off > 0 {
		prev, err := br.ReadByte()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		for prev != '\n' {
			if prev, err = br.ReadByte(); err == io.EOF {
				return 0, nil
			} else if err != nil {
				return 0, err
			}
			pos++
		}
	}
	if pos >= end {
		return 0, nil // no line starts in the range
	}
	// tr finds the first line start at or after end: where the next
	// chunk begins.
	tr := &boundaryReader{r: br, pos: pos, watch: end - 1, next: -1}
	cr := csv.NewReader(tr)
	cr.ReuseRecord = true
	base := int64(0) // lines before the reader's first line
	lineBase := func() int64 {
		if off == 0 {
			return 0
		}
		if b, err := linesBefore(); err == nil {
			return b
		}
		return -1
	}
	var header []string
	if off == 0 {
		h, err := cr.Read()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, csvError(file, 0, err)
		}
		header = append([]string(nil), h...)
	} else {
		hr, err := head()
		if err != nil {
			return 0, fmt.Errorf("%s: reading the header: %w", file, err)
		}
		h, err := csv.NewReader(hr).Read()
		hr.Close()
		if err != nil {
			return 0, csvError(file, 0, err)
		}
		header = h
		cr.FieldsPerRecord = len(header)
	}
	idx, err := k.columnsOf(file, header)
	if err != nil {
		return 0, err
	}
	var count int64
	first := true
	for {
		if count&1023 == 0 && ctx.Err() != nil {
			return count, ctx.Err()
		}
		start := pos + cr.InputOffset()
		if start >= end {
			break
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if base = lineBase(); base < 0 {
				return count, fmt.Errorf("%s: in the chunk at byte %d: %w", file, off, csvError(file, 0, err))
			}
			err = csvError(file, base, err)
			if first && off > 0 {
				err = fmt.Errorf("%w (the chunk at byte %d starts here; if a quoted field with a line break spans the chunk boundary, "+
					"read the file whole: a ChunkSize larger than the file, or split it into files at record boundaries)", err, off)
			}
			return count, err
		}
		first = false
		v, ferr := k.record(rec, idx, cr)
		if ferr != nil {
			if base = lineBase(); base < 0 {
				return count, fmt.Errorf("%s: line %d of the chunk at byte %d: %v", file, ferr.line, off, ferr.err)
			}
			return count, fmt.Errorf("%s:%d:%d: %v", file, base+ferr.line, ferr.col, ferr.err)
		}
		emit(v)
		count++
	}
	if s := pos + cr.InputOffset(); tr.next >= 0 && tr.next < s {
		return count, fmt.Errorf("%s: a quoted field holding a line break spans the chunk boundary at byte %d "+
			"(the record there runs from before byte %d to byte %d): ReadCSV cuts files at line boundaries, so it "+
			"cannot read this file in chunks; read it whole with a ChunkSize larger than the file, or split it into files at record boundaries",
			file, end, end, s)
	}
	return count, nil
}

// boundaryReader passes r through, counting bytes from pos, and records in
// next the position just after the first line break at or after watch
// (-1 until seen).
type boundaryReader struct {
	r     io.Reader
	pos   int64
	watch int64
	next  int64
}

func (b *boundaryReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.next < 0 && b.pos+int64(n) > b.watch {
		from := max(b.watch-b.pos, 0)
		if i := bytes.IndexByte(p[from:n], '\n'); i >= 0 {
			b.next = b.pos + from + int64(i) + 1
		}
	}
	b.pos += int64(n)
	return n, err
}

// csvError names the file and line of a CSV syntax error; base is the
// number of lines before the reader's input.
func csvError(file string, base int64, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %v", file, base+int64(pe.Line), pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", file, err)
}

func fieldName(t reflect.Type, index []int) string {
	return t.FieldByIndex(index).Name
}

// csvFormatKernel formats structs as CSV records, the header line first
// in every task (every part file).
type csvFormatKernel[T any] struct{ cols []csvColumn }

func (k csvFormatKernel[T]) Build(next any) (any, error) {
	emit, ok := next.(func(string))
	if !ok {
		return nil, fmt.Errorf("gale: CSV lines feed %T", next)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	rec := make([]string, len(k.cols))
	var field []byte
	header := true
	return func(v T) {
		if header {
			for i, c := range k.cols {
				rec[i] = c.Name
			}
			_ = w.Write(rec) // writes into buf, which does not fail
			header = false
		}
		rv := reflect.ValueOf(v)
		for i, c := range k.cols {
			var err error
			field, err = formatCSVField(field[:0], rv.FieldByIndex(c.Field))
			if err != nil {
				panic(kernel.Abort{Err: fmt.Errorf("gale: WriteCSV: formatting field %s of a %s: %w",
					fieldName(rv.Type(), c.Field), coder.TypeName[T](), err)})
			}
			rec[i] = string(field)
		}
		_ = w.Write(rec)
		w.Flush()
		emit(buf.String())
		buf.Reset()
	}, nil
}

// JSON lines.

// ReadJSONLines reads files of JSON values, one per line (JSON lines,
// NDJSON), into values of type T with encoding/json; blank lines are
// skipped. Fields of the JSON objects that T lacks are ignored. A line
// that is not valid JSON for T fails the job, naming the file and line.
// T's fields must be exported to be read: a struct with an unexported
// field that holds state is refused when the pipeline is built.
//
// Paths are resolved as ReadText's (compressed files included). Files are
// split into chunks at line boundaries as ReadText's are (ChunkSize), one
// task each, except compressed files, which are read whole; errors name
// the file and the line's number in it.
func ReadJSONLines[T any](p *Pipeline, paths ...string) Collection[T] {
	loc := callerLoc(1)
	if err := checkJSONLines(reflect.TypeFor[T]()); err != nil {
		p.fail(loc, "ReadJSONLines: %v", err)
	}
	return fileSource[T](p, "ReadJSONLines", "jsonl:"+coder.TypeName[T](), jsonLinesReader[T]{}, paths, loc)
}

// WriteJSONLines writes every element of c as one line of JSON
// (encoding/json) into part files under path, with WriteText's commit
// rules. T follows ReadJSONLines's rules, so the output reads back.
func WriteJSONLines[T any](c Collection[T], path string) {
	loc := callerLoc(1)
	if err := checkJSONLines(reflect.TypeFor[T]()); err != nil {
		c.p.fail(loc, "WriteJSONLines(%s): %v", path, err)
	}
	lines := narrowNamed[T, string](c, "WriteJSONLines.Format", "gale.jsonFormat", jsonFormatKernel[T]{}, loc)
	rawSink(lines, "WriteJSONLines", path, loc)
}

// checkJSONLines refuses types encoding/json cannot read or write
// faithfully: unexported state, funcs, channels. Interfaces (a
// map[string]any of a free-form record) and `json:"-"` fields, a choice
// the type's author made, are allowed.
func checkJSONLines(t reflect.Type) error {
	return checkJSONType(t, map[reflect.Type]bool{})
}

func checkJSONType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if implements(t, reflect.TypeFor[json.Marshaler]()) || implements(t, textMarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkJSONType(t.Elem(), seen)
	case reflect.Map:
		return checkJSONType(t.Elem(), seen)
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("%s has no JSON form", t)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type.Size() == 0 || f.Tag.Get("json") == "-" {
				continue
			}
			if !f.IsExported() && !f.Anonymous {
				return fmt.Errorf("%s has unexported field %s, which encoding/json neither reads nor writes: export it, "+
					"or tag it `json:\"-\"` to say it is not part of the record", t, f.Name)
			}
			if err := checkJSONType(f.Type, seen); err != nil {
				return fmt.Errorf("%s.%s: %w", t, f.Name, err)
			}
		}
	}
	return nil
}

// jsonLinesReader is the FileReader of ReadJSONLines.
type jsonLinesReader[T any] struct{}

func (jsonLinesReader[T]) ReadFile(ctx context.Context, file string, r io.Reader, next any) (int64, error) {
	emit, ok := next.(func(T))
	if !ok {
		return 0, fmt.Errorf("gale: JSON lines of %s feed %T", coder.TypeName[T](), next)
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var n int64
	var long []byte
	for line := 1; ; line++ {
		if line&1023 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var v T
			if jerr := json.Unmarshal(t, &v); jerr != nil {
				return n, fmt.Errorf("%s:%d: %v", file, line, jerr)
			}
			emit(v)
			n++
		}
		if err == io.EOF {
			return n, nil
		}
	}
}

// ParseLines parses one JSON value per line (kernel.LineParser); blank
// lines are skipped.
func (jsonLinesReader[T]) ParseLines(next any) (func(string) error, error) {
	emit, ok := next.(func(T))
	if !ok {
		return nil, fmt.Errorf("gale: JSON lines of %s feed %T", coder.TypeName[T](), next)
	}
	return func(line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return nil
		}
		var v T
		if err := json.Unmarshal([]byte(t), &v); err != nil {
			return err
		}
		emit(v)
		return nil
	}, nil
}

// jsonFormatKernel formats elements as JSON lines.
type jsonFormatKernel[T any] struct{}

func (jsonFormatKernel[T]) Build(next any) (any, error) {
	emit, ok := next.(func(string))
	if !ok {
		return nil, fmt.Errorf("gale: JSON lines feed %T", next)
	}
	return func(v T) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(kernel.Abort{Err: fmt.Errorf("gale: WriteJSONLines: encoding a %s: %w", coder.TypeName[T](), err)})
		}
		emit(string(append(b, '\n')))
	}, nil
}

var (
	_ kernel.FileReader  = csvReader[struct{ A int }]{}
	_ kernel.RangeReader = csvReader[struct{ A int }]{}
	_ kernel.FileReader  = jsonLinesReader[int]{}
	_ kernel.LineParser  = jsonLinesReader[int]{}
	_ kernel.FileLiner   = elemKernel[FileLine]{}
)
