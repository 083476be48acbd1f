package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
)

// ErrBadInput is wrapped by every error about the content of a dataset.
var ErrBadInput = errors.New("dataset: bad input")

// File is one resolved input file.
type File struct {
	// Store is the URL of the store holding the file (a local directory or
	// scheme://bucket).
	Store string
	// Key is the file's key in Store.
	Key string
	// Name is the file as gale.ReadText and messages take it: a local path
	// or a full object URL.
	Name string
}

// Names returns the names of files, for gale.ReadText.
func Names(files []File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Name
	}
	return out
}

// Expand resolves input paths to files, in order: a path may be a local
// file, a local directory (its regular files, recursively, in lexical
// order, skipping hidden ones and _SUCCESS markers), a local glob, or an
// object-store URL naming an object, a prefix or a glob. opts are the
// store options of gale.OpenStore.
func Expand(ctx context.Context, paths []string, opts map[string]string) ([]File, error) {
	if len(paths) == 0 {
		return nil, errors.New("dataset: no input paths")
	}
	var files []File
	for _, p := range paths {
		fs, err := expandOne(ctx, p, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

func skipName(name string) bool { return strings.HasPrefix(name, ".") || name == "_SUCCESS" }

func expandOne(ctx context.Context, p string, opts map[string]string) ([]File, error) {
	u, err := url.Parse(p)
	if err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1 {
		root := u.Scheme + "://" + u.Host
		st, err := gale.OpenStore(ctx, root, opts)
		if err != nil {
			return nil, fmt.Errorf("dataset: input %s: %w", p, err)
		}
		key := strings.TrimPrefix(u.Path, "/")
		prefix, glob := key, ""
		if i := strings.IndexAny(key, "*?["); i >= 0 {
			prefix, glob = key[:i], key
		}
		objs, err := objstore.ListAll(ctx, st, prefix)
		if err != nil {
			return nil, fmt.Errorf("dataset: listing %s: %w", p, err)
		}
		var files []File
		for _, o := range objs {
			switch {
			case glob != "":
				if ok, _ := path.Match(glob, o.Key); !ok {
					continue
				}
			case o.Key != key && !strings.HasPrefix(o.Key, strings.TrimSuffix(key, "/")+"/") && key != "":
				continue
			}
			if strings.HasSuffix(o.Key, "/") || skipName(path.Base(o.Key)) {
				continue
			}
			files = append(files, File{Store: root, Key: o.Key, Name: root + "/" + o.Key})
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("dataset: input %s matched no objects", p)
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Key < files[j].Key })
		return files, nil
	}
	if err == nil && u.Scheme == "file" {
		p = u.Path
	}
	paths := []string{p}
	if strings.ContainsAny(p, "*?[") {
		if paths, err = filepath.Glob(p); err != nil {
			return nil, fmt.Errorf("dataset: bad pattern %q: %v", p, err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("dataset: pattern %s matched no files", p)
		}
	}
	var files []File
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("dataset: input %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("dataset: input %s: %w", p, err)
		}
		if !fi.IsDir() {
			files = append(files, File{Store: filepath.Dir(abs), Key: filepath.Base(abs), Name: abs})
			continue
		}
		err = filepath.WalkDir(abs, func(fp string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if fp != abs && skipName(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				files = append(files, File{Store: filepath.Dir(fp), Key: filepath.Base(fp), Name: fp})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dataset: input %s: %w", p, err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("dataset: input %s holds no files", p)
	}
	return files, nil
}

// ParseLine parses one line of comma-separated numbers, appending them to
// dst. Blank lines give no values and no error (callers skip them). The
// error names the offending value by its 1-based position.
func ParseLine(dst []float64, line string) ([]float64, error) {
	if strings.TrimSpace(line) == "" {
		return dst, nil
	}
	pos := 0
	for {
		pos++
		i := strings.IndexByte(line, ',')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		field = strings.TrimSpace(field)
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return dst, fmt.Errorf("value %d %q is not a number", pos, field)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return dst, fmt.Errorf("value %d %q is not a finite number", pos, field)
		}
		dst = append(dst, v)
		if i < 0 {
			return dst, nil
		}
		line = line[i+1:]
	}
}

// Summary describes a validated dataset.
type Summary struct {
	// Points is the number of non-blank lines.
	Points int64
	// Width is the number of values per line.
	Width int
}

// Scan reads every line of files in order and validates it: every
// non-blank line must hold width finite numbers (width 0: as many as the
// first line). fn, if not nil, sees every vector with its 0-based index
// among the dataset's vectors (the slice is reused after fn returns) and
// may reject it. The first problem ends the scan with an error wrapping
// ErrBadInput (and fn's error) that names the file and line.
func Scan(ctx context.Context, files []File, opts map[string]string, width int, fn func(i int64, v []float64) error) (Summary, error) {
	var sum Summary
	sum.Width = width
	widthFrom := ""
	if width > 0 {
		widthFrom = "the job's configuration"
	}
	var buf []float64
	for _, f := range files {
		err := readLines(ctx, f, opts, func(line int, text string) error {
			var err error
			buf, err = ParseLine(buf[:0], text)
			if err != nil {
				return fmt.Errorf("%w: %s:%d: %v", ErrBadInput, f.Name, line, err)
			}
			if len(buf) == 0 {
				return nil
			}
			if sum.Width == 0 {
				sum.Width = len(buf)
				widthFrom = fmt.Sprintf("%s:%d", f.Name, line)
			} else if len(buf) != sum.Width {
				return fmt.Errorf("%w: %s:%d: %d values, but %s has %d; every line needs the same number of values",
					ErrBadInput, f.Name, line, len(buf), widthFrom, sum.Width)
			}
			if fn != nil {
				if err := fn(sum.Points, buf); err != nil {
					return fmt.Errorf("%w: %s:%d: %w", ErrBadInput, f.Name, line, err)
				}
			}
			sum.Points++
			return nil
		})
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// readLines calls fn with every line of f (1-based numbers, trailing "\r"
// removed), as gale.ReadText splits them.
func readLines(ctx context.Context, f File, opts map[string]string, fn func(line int, text string) error) error {
	st, err := gale.OpenStore(ctx, f.Store, opts)
	if err != nil {
		return fmt.Errorf("dataset: opening %s: %w", f.Name, err)
	}
	rc, err := st.Get(ctx, f.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("dataset: reading %s: %w", f.Name, err)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 1<<20)
	for line := 1; ; line++ {
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		text, err := r.ReadString('\n')
		if len(text) > 0 {
			text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
			if ferr := fn(line, text); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dataset: reading %s: %w", f.Name, err)
		}
	}
}

// Load reads a whole validated dataset into memory: the vectors one after
// the other in one slice, and the summary.
func Load(ctx context.Context, files []File, opts map[string]string, width int) ([]float64, Summary, error) {
	var all []float64
	sum, err := Scan(ctx, files, opts, width, func(_ int64, v []float64) error {
		all = append(all, v...)
		return nil
	})
	return all, sum, err
}

// Pick returns the first k of a seeded random permutation of [0, n): the
// same seed, n and k always give the same indices. It draws k steps of a
// Fisher–Yates shuffle, so it costs O(k) whatever n is.
func Pick(seed uint64, n int64, k int) []int64 {
	rng := rand.New(rand.NewPCG(seed, 0x6b6d65616e73)) // "kmeans"
	swapped := map[int64]int64{}
	at := func(i int64) int64 {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int64, 0, k)
	for i := int64(0); i < int64(k) && i < n; i++ {
		j := i + rng.Int64N(n-i)
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		out = append(out, vj)
	}
	return out
}

// Gather returns the vectors at the given indices of the dataset, in the
// order of indices, one after the other. width is the dataset's width.
func Gather(ctx context.Context, files []File, opts map[string]string, width int, indices []int64) ([]float64, error) {
	pos := make(map[int64][]int, len(indices))
	var last int64 = -1
	for i, idx := range indices {
		pos[idx] = append(pos[idx], i)
		last = max(last, idx)
	}
	out := make([]float64, len(indices)*width)
	errDone := errors.New("done")
	_, err := Scan(ctx, files, opts, width, func(i int64, v []float64) error {
		for _, p := range pos[i] {
			copy(out[p*width:], v)
		}
		if i >= last {
			return errDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, err
	}
	return out, nil
}

// SqDist returns the squared Euclidean distance between a and b, which
// have the same length.
func SqDist(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, x := range a {
		d := x - b[i]
		s += d * d
	}
	return s
}

// Dot returns the dot product of a and b, which have the same length.
func Dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// VecSum is a gale combiner of element-wise vector sums, for the
// iterative examples' stage-per-round baselines.
type VecSum struct{}

// Create returns the empty sum.
func (VecSum) Create() []float64 { return nil }

// Add adds v into acc.
func (VecSum) Add(acc, v []float64) []float64 {
	if acc == nil {
		return slices.Clone(v)
	}
	for i, x := range v[:len(acc)] {
		acc[i] += x
	}
	return acc
}

// Merge adds b into a.
func (s VecSum) Merge(a, b []float64) []float64 {
	if a == nil {
		return slices.Clone(b)
	}
	return s.Add(a, b)
}

// Extract returns acc.
func (VecSum) Extract(acc []float64) []float64 { return acc }
