package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
)

// ErrUnknownBackend is wrapped by Open's and Traits' error for a name
// that Names does not list.
var ErrUnknownBackend = errors.New("config: unknown backend")

// ErrNotConfigured is wrapped by Open's error when a cloud backend's
// section lacks what reaching its platform needs; the message names the
// config file, the section and the keys to set.
var ErrNotConfigured = errors.New("config: backend not configured")

// ErrWorkerBinary is wrapped by Open's error when the binary the workers
// of a backend that starts them on this machine (process, the gcp and
// azure local stand-ins) would run is missing or unusable.
var ErrWorkerBinary = errors.New("config: unusable worker binary")

// File is Gale's configuration file: one section per backend, keyed by
// backend name, and object-store client options.
type File struct {
	// Path is the file read, or the default location that held none; ""
	// when there is no home directory to look in.
	Path string `yaml:"-"`
	// Backends holds the backends.<name> sections, decoded strictly by
	// Decode when a backend is opened.
	Backends map[string]yaml.Node `yaml:"backends"`
	// Storage holds object-store client options as gale.StoreOptions
	// takes them (s3.endpoint, s3.region, gs.endpoint, azblob.key, ...).
	Storage map[string]string `yaml:"storage"`

	// text is the file's text as Parse read it, which Decode decodes
	// again so that its errors give the file's line numbers.
	text []byte
}

// DefaultPath returns the config file to read when none is named:
// GALE_CONFIG (explicit reports true: the file must exist), else
// ~/.gale/config.yaml ("" when there is no home directory).
func DefaultPath() (path string, explicit bool) {
	if p := os.Getenv("GALE_CONFIG"); p != "" {
		return p, true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(home, ".gale", "config.yaml"), false
}

// Load reads and checks the config file at path, or at DefaultPath when
// path is "". It rejects unknown top-level keys and backend sections not
// named by Names; the sections themselves are decoded, strictly, when a
// backend is opened. A missing file at the default location is an empty
// configuration; a missing file named by path or GALE_CONFIG is an error.
func Load(path string) (*File, error) {
	explicit := path != ""
	if !explicit {
		path, explicit = DefaultPath()
	}
	f := &File{Path: path}
	if path == "" {
		return f, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: reading Gale's config file: %w", err)
	}
	return Parse(path, data)
}

// Parse checks and returns the config file text data, read from path
// (which names the file in errors).
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", f.name(), err)
	}
	f.Path, f.text = path, data
	for name := range f.Backends {
		if !Known(name) {
			if err := gale.CloudNotLinked(name); err != nil {
				return nil, fmt.Errorf("config %s: section %q: %w", f.name(), name, err)
			}
			return nil, fmt.Errorf("config %s: unknown backend section %q (known: %s)", f.name(), name, strings.Join(Names(), ", "))
		}
	}
	return f, nil
}

// name names the file in messages.
func (f *File) name() string {
	if f == nil || f.Path == "" {
		return "Gale's config file (GALE_CONFIG or ~/.gale/config.yaml)"
	}
	return f.Path
}

// Decode decodes the backends.<backend> section into v, rejecting unknown
// keys with an error naming the file, the section and the key. A missing
// section (or a nil File) leaves v as it is.
func (f *File) Decode(backend string, v any) error {
	if f == nil {
		return nil
	}
	n, ok := f.Backends[backend]
	if !ok {
		return nil
	}
	if f.text != nil {
		if err := f.decodeInFile(backend, v); err != nil {
			return oneLine(fmt.Errorf("config %s, section backends.%s: %w", f.name(), backend, err))
		}
		return nil
	}
	// A File not read by Parse has no text: re-encoding the node and decoding it with KnownFields is how
	// yaml.v3 decodes a sub-tree strictly (Node.Decode has no such mode).
	b, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Errorf("config %s, section backends.%s: %w", f.name(), backend, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s, section backends.%s: %w", f.name(), backend, err)
	}
	return nil
}

// decodeInFile decodes the backends.<backend> section of the file's text
// into v (a non-nil pointer), rejecting unknown keys. yaml.v3 decodes a
// sub-tree only leniently (Node.Decode has no KnownFields), and a
// re-encoded sub-tree counts lines from the section, not the file; so the
// whole text is decoded strictly again into a document type built for
// this section: v at backends.<backend>, every other part of the file
// taken as it is.
func (f *File) decodeInFile(backend string, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: Decode needs a non-nil pointer, got %T", v)
	}
	nodeType := reflect.TypeFor[yaml.Node]()
	var fields []reflect.StructField
	target := -1
	for name := range f.Backends {
		t := nodeType
		if name == backend {
			t, target = rv.Type(), len(fields)
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("S%d", len(fields)), Type: t,
			Tag: reflect.StructTag(fmt.Sprintf("yaml:%q", name))})
	}
	sections := reflect.New(reflect.StructOf(fields)).Elem()
	sections.Field(target).Set(rv)
	doc := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "Backends", Type: sections.Type(), Tag: `yaml:"backends"`},
		{Name: "Storage", Type: nodeType, Tag: `yaml:"storage"`},
	}))
	doc.Elem().Field(0).Set(sections)
	dec := yaml.NewDecoder(bytes.NewReader(f.text))
	dec.KnownFields(true)
	if err := dec.Decode(doc.Interface()); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// sectionError reports a problem with the backends.<backend> section.
func (f *File) sectionError(backend string, err error) error {
	return oneLine(fmt.Errorf("config %s, section backends.%s: %w", f.name(), backend, err))
}

// oneLine returns err with its message on one line: a Validate joins every
// problem it finds (errors.Join, one per line), and the commands print an
// error as one line. errors.Is and errors.As still see through it.
func oneLine(err error) error {
	if err == nil || !strings.Contains(err.Error(), "\n") {
		return err
	}
	return &lineError{err}
}

type lineError struct{ err error }

func (e *lineError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e *lineError) Unwrap() error { return e.err }

// OpenOptions are what the caller of Open decides rather than the file.
type OpenOptions struct {
	// Workers bounds the tasks in flight: a cloud backend's concurrency,
	// the process backend's worker count, a local stand-in's instances.
	// 0 takes the section's or the backend's default.
	Workers int
	// Output receives the output of the worker processes this machine
	// starts (process, the gcp and azure local stand-ins). Default
	// os.Stderr.
	Output io.Writer
	// Report, if set, receives a line of the backend's counters when it
	// closes (aws: invocations, throttled, staged payloads).
	Report io.Writer
	// WorkerArgs are the arguments this program's binary gets when a
	// backend starts it as a worker on this machine (process, the gcp and
	// azure local stand-ins): the gale command passes its hidden
	// "worker" subcommand; a Gale program that serves tasks from main
	// passes none.
	WorkerArgs []string
	// Handler runs the tasks of the backends that run them in this
	// process under a model of a platform (the simulated platforms,
	// sim:*). Default: Gale's stage worker; the Beam runner passes its
	// own.
	Handler backends.Handler
}

// Opened is a backend Open built.
type Opened struct {
	// Name is the backend's name.
	Name string
	// About is one line describing the backend.
	About string
	// Backend runs the tasks; nil for the local backend, which the caller
	// builds in its own process (gale.Run's and galerunner.Run's
	// default). Its Close stops any local stand-in it started.
	Backend backends.Backend
	// Traits describes the platform.
	Traits backends.Traits
	// StoreOptions are the file's storage section: the object-store
	// client options the driver and every worker open stores with.
	StoreOptions map[string]string
	// WorkersHere reports whether the workers run on this machine
	// (local, process, sim:*, the gcp and azure local stand-ins), so a
	// local directory can hold the temporary store.
	WorkersHere bool
}

// Close stops the backend and any local stand-in it started. It is safe
// on a nil Opened and on the local backend.
func (o *Opened) Close() error {
	if o == nil || o.Backend == nil {
		return nil
	}
	return o.Backend.Close()
}

// spec tells Open how to build one backend. Each backend file registers
// its own in init.
type spec struct {
	name  string
	about string
	// open builds the backend from f's section. It returns a nil backend
	// for local; workersHere as for Opened.
	open func(ctx context.Context, f *File, opts OpenOptions) (b backends.Backend, workersHere bool, err error)
	// traits describes the platform without building a backend; nil means
	// open one to ask it.
	traits func(f *File) (backends.Traits, error)
}

// table is the registry of backends by name, filled by init functions in
// this package only.
var table = map[string]spec{}

func register(s spec) {
	if _, dup := table[s.name]; dup {
		panic("config: backend " + s.name + " registered twice")
	}
	table[s.name] = s
}

// Names lists the backends Open builds, sorted.
func Names() []string {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known reports whether Open builds the backend name.
func Known(name string) bool {
	_, ok := table[name]
	return ok
}

// About returns one line describing the backend name ("" when unknown).
func About(name string) string { return table[name].about }

func lookup(name string) (spec, error) {
	s, ok := table[name]
	if !ok {
		if err := gale.CloudNotLinked(name); err != nil {
			return spec{}, fmt.Errorf("%w: %w", ErrUnknownBackend, err)
		}
		return spec{}, fmt.Errorf("%w %q: use one of %s", ErrUnknownBackend, name, strings.Join(Names(), ", "))
	}
	return s, nil
}

// Open builds the backend name from its backends.<name> section of f (a
// nil f is an empty configuration). The workers of every backend run this
// program's binary. A cloud backend whose section lacks what reaching its
// platform needs fails with an error wrapping ErrNotConfigured that names
// the file, the section and the keys; a misspelt key fails naming it.
func Open(ctx context.Context, name string, f *File, opts OpenOptions) (*Opened, error) {
	s, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("config: backend %s: OpenOptions.Workers must not be negative, got %d", name, opts.Workers)
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if f == nil {
		f = &File{}
	}
	b, here, err := s.open(ctx, f, opts)
	if err != nil {
		return nil, err
	}
	o := &Opened{Name: name, About: s.about, Backend: b, StoreOptions: f.Storage, WorkersHere: here}
	switch {
	case b != nil:
		o.Traits = backends.TraitsOf(b)
	case s.traits != nil:
		o.Traits, _ = s.traits(f)
	}
	if o.Traits.Name == "" {
		o.Traits.Name = name
	}
	return o, nil
}

// Traits describes the backend name as configured in f without reaching
// its platform when it can (a cloud backend's traits follow from its
// section); otherwise it opens the backend, asks it and closes it.
func Traits(ctx context.Context, name string, f *File) (backends.Traits, error) {
	s, err := lookup(name)
	if err != nil {
		return backends.Traits{}, err
	}
	if f == nil {
		f = &File{}
	}
	if s.traits != nil {
		return s.traits(f)
	}
	o, err := Open(ctx, name, f, OpenOptions{Output: io.Discard})
	if err != nil {
		return backends.Traits{}, err
	}
	defer o.Close()
	return o.Traits, nil
}

// wrapOpen names the backend in an error from its constructor.
func wrapOpen(name string, err error) error {
	return oneLine(fmt.Errorf("config: backend %s: %w", name, err))
}

// workerBinary returns this program's binary, which the backends that
// start workers on this machine run, after CheckWorkerBinary.
func workerBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: cannot locate this program's binary: %w", ErrWorkerBinary, err)
	}
	return exe, CheckWorkerBinary(exe)
}

// CheckWorkerBinary reports, wrapping ErrWorkerBinary, a worker binary
// that is missing (removed since the program started: Linux reports the
// path with a " (deleted)" suffix) or not an executable file. Open runs it
// before it starts any worker.
func CheckWorkerBinary(path string) error {
	if path == "" {
		return fmt.Errorf("%w: cannot locate this program's binary", ErrWorkerBinary)
	}
	if strings.HasSuffix(path, " (deleted)") {
		return fmt.Errorf("%w: %s was removed after the program started; rebuild and run it again", ErrWorkerBinary, strings.TrimSuffix(path, " (deleted)"))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: the worker binary (this program): %w", ErrWorkerBinary, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file", ErrWorkerBinary, path)
	}
	return nil
}

// first returns the first non-zero value.
func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}
