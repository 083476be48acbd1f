//go:build !gale_slim || gale_aws

package gale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/awsstandin"
)

// errKilled is what every store call and commit step returns once a
// crasher has let its quota of steps through: the driver's process is
// dead from then on.
var errKilled = errors.New("test: the driver's process was killed here")

// crasher lets limit mutating steps of a job's driver through (a Put,
// Delete, Copy or Rename of its stores, or a commit step outside them),
// then kills the driver: every later call fails, reads included, so the
// driver neither finishes nor cleans up. limit < 0 never kills; steps
// counts what was let through.
type crasher struct {
	mu     sync.Mutex
	limit  int
	steps  int
	killed bool
	log    []string
}

func (c *crasher) step(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killed {
		return errKilled
	}
	if c.limit >= 0 && c.steps >= c.limit {
		c.killed = true
		return errKilled
	}
	c.steps++
	c.log = append(c.log, what)
	return nil
}

func (c *crasher) dead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killed {
		return errKilled
	}
	return nil
}

// crashStore passes calls to a store until its crasher kills the driver.
type crashStore struct {
	objstore.Store
	c *crasher
}

func (s crashStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := s.c.dead(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key, off, n)
}

func (s crashStore) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if err := s.c.dead(); err != nil {
		return objstore.ListPage{}, err
	}
	return s.Store.List(ctx, prefix, token, limit)
}

func (s crashStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := s.c.dead(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return s.Store.Stat(ctx, key)
}

func (s crashStore) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.c.step("put " + key); err != nil {
		return err
	}
	return s.Store.Put(ctx, key, r)
}

func (s crashStore) Delete(ctx context.Context, key string) error {
	if err := s.c.step("delete " + key); err != nil {
		return err
	}
	return s.Store.Delete(ctx, key)
}

type crashCopier struct{ crashStore }

func (s crashCopier) Copy(ctx context.Context, from, to string) error {
	if err := s.c.step("copy " + from + " to " + to); err != nil {
		return err
	}
	return s.Store.(objstore.Copier).Copy(ctx, from, to)
}

type crashRenamer struct{ crashCopier }

func (s crashRenamer) Rename(ctx context.Context, from, to string) error {
	if err := s.c.step("rename " + from + " to " + to); err != nil {
		return err
	}
	return s.Store.(objstore.Renamer).Rename(ctx, from, to)
}

func (c *crasher) wrap(st objstore.Store) objstore.Store {
	s := crashStore{st, c}
	_, copies := st.(objstore.Copier)
	_, renames := st.(objstore.Renamer)
	switch {
	case renames && copies:
		return crashRenamer{crashCopier{s}}
	case copies:
		return crashCopier{s}
	}
	return s
}

// startLoopbackS3 serves an in-memory S3 bucket on loopback and returns
// the store options that reach it.
func startLoopbackS3(t *testing.T, bucket string) map[string]string {
	t.Helper()
	awsstandin.IsolateTest(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return map[string]string{"s3.endpoint": srv.URL, "s3.path_style": "true", "s3.region": "us-east-1"}
}

func crashTestUpper(s string) string { return strings.ToUpper(s) }

// crashTestLines writes a text file of n distinct lines tagged tag and
// returns its path and the lines the job makes of it (upper-cased).
func crashTestLines(t *testing.T, dir, tag string, n int) (string, []string) {
	t.Helper()
	var b strings.Builder
	var want []string
	for i := range n {
		line := fmt.Sprintf("%s line %04d of the crash test", tag, i)
		b.WriteString(line + "\n")
		want = append(want, strings.ToUpper(line))
	}
	p := filepath.Join(dir, tag+".txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	return p, want
}

// committedLines reads the output at out independently of Gale's reader:
// its manifest, then the parts it lists, each of which must exist with its
// listed size. ok is false when out has no _SUCCESS.
func committedLines(t *testing.T, st objstore.Store) (lines []string, parts []string, ok bool) {
	t.Helper()
	ctx := context.Background()
	m, err := objstore.ReadManifest(ctx, st, "")
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, nil, false
	}
	if err != nil || m == nil {
		t.Fatalf("reading the manifest of %s: %v (%v)", st, err, m)
	}
	for _, p := range m.Parts {
		rc, err := st.Get(ctx, p.Key, 0, -1)
		if err != nil {
			t.Fatalf("manifest of job %s lists %s: %v", m.Job, p.Key, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if int64(len(b)) != p.Size {
			t.Fatalf("%s has %d bytes, its manifest says %d", p.Key, len(b), p.Size)
		}
		if len(b) > 0 {
			lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		}
		parts = append(parts, p.Key)
	}
	sort.Strings(lines)
	return lines, parts, true
}

// TestCommitSurvivesACrashAtEveryStep replaces a committed output (A) by a
// job's new one (B), killing the job's driver after each of the steps its
// commit protocol takes, on a filesystem and on a loopback S3. After every
// crash the output must be A whole or B whole — never a mix, never
// nothing — and Gale's reader must read exactly it; then a new job on the
// output must clean up what the dead one left and commit. The same holds
// for a first commit (no previous output), where the crash may also leave
// no output at all, and the rerun, without --overwrite, must not be
// refused because of the dead job's files.
func TestCommitSurvivesACrashAtEveryStep(t *testing.T) {
	dir := t.TempDir()
	inA, wantA := crashTestLines(t, dir, "alpha", 60)
	inB, wantB := crashTestLines(t, dir, "bravo", 45)
	s3opts := startLoopbackS3(t, "bucket")
	ctx := context.Background()
	for _, kind := range []string{"fs", "s3"} {
		t.Run(kind, func(t *testing.T) {
			outURL := filepath.Join(t.TempDir(), "out")
			var opts map[string]string
			if kind == "s3" {
				outURL, opts = "s3://bucket/"+kind+"-out", s3opts
			}
			out, err := OpenStore(ctx, outURL, opts)
			if err != nil {
				t.Fatal(err)
			}
			run := func(in string, c *crasher, overwrite bool) error {
				p := NewPipeline()
				WriteText(Map(ReadText(p, in), crashTestUpper), outURL)
				ro := []RunOption{StoreOptions(opts), Overwrite(overwrite), ChunkSize(minChunkSize), Workers(2)}
				if c != nil {
					ro = append(ro, func(rc *runConfig) { rc.wrapStore, rc.commitHook = c.wrap, c.step })
				}
				_, err := Run(ctx, p, ro...)
				return err
			}
			// Gale's reader, as a job reading the output would resolve it.
			readerKeys := func() ([]string, error) {
				files, err := expandText(ctx, OpenStore, opts, outURL, false)
				var keys []string
				for _, f := range files {
					keys = append(keys, filepath.Base(f.key))
				}
				sort.Strings(keys)
				return keys, err
			}
			// clean asserts that out holds the committed output and
			// nothing else: no staging area, no stray part.
			clean := func(want []string) {
				t.Helper()
				lines, parts, ok := committedLines(t, out)
				if !ok || !slices.Equal(lines, want) {
					t.Fatalf("after a clean run: committed %v, %d lines, want %d", ok, len(lines), len(want))
				}
				objs, err := objstore.ListAll(ctx, out, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != len(parts)+1 {
					var keys []string
					for _, o := range objs {
						keys = append(keys, o.Key)
					}
					t.Fatalf("output holds %v, want only the manifest's %v and _SUCCESS", keys, parts)
				}
				if kind == "fs" {
					left, _ := filepath.Glob(filepath.Join(filepath.Dir(outURL), ".out.gale-*"))
					if len(left) > 0 {
						t.Fatalf("staging files left beside the output: %v", left)
					}
				}
			}
			// Count the steps of an undisturbed replacement.
			if err := run(inA, nil, false); err != nil {
				t.Fatal(err)
			}
			counter := &crasher{limit: -1}
			if err := run(inB, counter, true); err != nil {
				t.Fatal(err)
			}
			clean(wantB)
			n := counter.steps
			t.Logf("replacing an output takes %d steps: %q", n, counter.log)
			if n < 6 {
				t.Fatalf("only %d steps counted", n)
			}
			for k := range n {
				if err := run(inA, nil, true); err != nil {
					t.Fatalf("restoring output A before crash point %d: %v", k, err)
				}
				c := &crasher{limit: k}
				// After the switch the job succeeds: the crash only keeps
				// it from removing what the new output replaced.
				if err := run(inB, c, true); err != nil && !errors.Is(err, errKilled) {
					t.Fatalf("crash after %d steps: err = %v, want the kill", k, err)
				}
				lines, parts, ok := committedLines(t, out)
				if !ok || !slices.Equal(lines, wantA) && !slices.Equal(lines, wantB) {
					t.Fatalf("crash after %d steps (%q): output committed %v with %d lines, neither A (%d) nor B (%d)",
						k, c.log, ok, len(lines), len(wantA), len(wantB))
				}
				keys, err := readerKeys()
				if err != nil {
					t.Fatalf("crash after %d steps: Gale's reader refuses the output: %v", k, err)
				}
				if !slices.Equal(keys, parts) {
					t.Fatalf("crash after %d steps: Gale's reader reads %v, the manifest lists %v", k, keys, parts)
				}
				// The next job cleans up and commits.
				if err := run(inB, nil, true); err != nil {
					t.Fatalf("rerun after a crash at step %d: %v", k, err)
				}
				clean(wantB)
			}
			// A first commit, crashed at each step.
			for k := range n {
				removeOutput(t, out, outURL, kind)
				c := &crasher{limit: k}
				if err := run(inB, c, false); err != nil && !errors.Is(err, errKilled) {
					t.Fatalf("first commit, crash after %d steps: err = %v, want the kill", k, err)
				}
				lines, _, ok := committedLines(t, out)
				if ok && !slices.Equal(lines, wantB) {
					t.Fatalf("first commit, crash after %d steps: committed %d lines, want B's %d", k, len(lines), len(wantB))
				}
				if !ok {
					if _, err := readerKeys(); err == nil {
						t.Fatalf("first commit, crash after %d steps: Gale's reader accepts an uncommitted output", k)
					}
					if err := run(inB, nil, false); err != nil {
						t.Fatalf("first commit, rerun after a crash at step %d: %v", k, err)
					}
				} else if err := run(inB, nil, true); err != nil {
					t.Fatalf("first commit, rerun after a crash at step %d: %v", k, err)
				}
				clean(wantB)
			}
		})
	}
}

// removeOutput deletes an output and whatever jobs left beside it.
func removeOutput(t *testing.T, out objstore.Store, outURL, kind string) {
	t.Helper()
	ctx := context.Background()
	if kind == "fs" {
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(outURL), ".out.gale-*"))
		for _, p := range append(left, outURL) {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	objs, err := objstore.ListAll(ctx, out, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := out.Delete(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReaderRefusesAnUncommittedOutput reads folders that look like Gale
// outputs: part files without _SUCCESS are refused, naming the folder and
// the option that reads them anyway; a manifest's folder is read as the
// parts it lists only.
func TestReaderRefusesAnUncommittedOutput(t *testing.T) {
	ctx := context.Background()
	s3opts := startLoopbackS3(t, "bucket")
	for _, kind := range []string{"fs", "s3"} {
		t.Run(kind, func(t *testing.T) {
			root := t.TempDir()
			var opts map[string]string
			var st objstore.Store
			var err error
			base := root
			if kind == "s3" {
				base, opts = "s3://bucket/"+kind, s3opts
			}
			st, err = OpenStore(ctx, base, opts)
			if err != nil {
				t.Fatal(err)
			}
			put := func(key, data string) {
				if err := st.Put(ctx, key, bytes.NewReader([]byte(data))); err != nil {
					t.Fatal(err)
				}
			}
			url := func(folder string) string { return base + "/" + folder }
			// Uncommitted: parts, no marker.
			put("half/part-00000-job-1", "a\n")
			put("half/part-00001-job-1", "b\n")
			_, err = expandText(ctx, OpenStore, opts, url("half"), false)
			if !errors.Is(err, objstore.ErrUncommitted) && (err == nil || !strings.Contains(err.Error(), "uncommitted")) {
				t.Fatalf("uncommitted folder: err = %v, want it refused", err)
			}
			if err != nil && !strings.Contains(err.Error(), "gale.ReadUncommitted(true)") {
				t.Errorf("the refusal does not name the option that reads it anyway: %v", err)
			}
			if _, err := expandText(ctx, OpenStore, opts, url("half/part-*"), false); err == nil {
				t.Error("a glob over an uncommitted folder's parts is read")
			}
			files, err := expandText(ctx, OpenStore, opts, url("half"), true)
			if err != nil || len(files) != 2 {
				t.Fatalf("with ReadUncommitted: %d files, %v", len(files), err)
			}
			// Committed: only the listed parts are read.
			put("done/part-00000-job-2", "x\n")
			put("done/part-00000-job-1", "stale\n")
			m := &objstore.Manifest{Job: "job-2", Parts: []objstore.ManifestPart{{Key: "part-00000-job-2", Size: 2}}}
			put("done/_SUCCESS", string(m.Encode()))
			files, err = expandText(ctx, OpenStore, opts, url("done"), false)
			if err != nil || len(files) != 1 || !strings.HasSuffix(files[0].key, "part-00000-job-2") {
				t.Fatalf("committed folder: %v, %v; want its listed part only", files, err)
			}
			// A damaged one: a listed part is gone.
			if err := st.Delete(ctx, "done/part-00000-job-2"); err != nil {
				t.Fatal(err)
			}
			if _, err := expandText(ctx, OpenStore, opts, url("done"), false); err == nil || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("a committed folder missing a listed part: err = %v", err)
			}
			// An ordinary folder of text is read whole.
			put("plain/a.txt", "a\n")
			put("plain/b.txt", "b\n")
			if files, err := expandText(ctx, OpenStore, opts, url("plain"), false); err != nil || len(files) != 2 {
				t.Fatalf("plain folder: %d files, %v", len(files), err)
			}
		})
	}
}
