package gale_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/local"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/internal/wordref"
)

// isolateTemp points the system temporary directory at a fresh directory,
// so a test can check that a job removed everything it put there.
func isolateTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

// newFaulty returns a faulty backend around a local backend running this
// binary's worker runtime. The test closes it; Cleanup closes it too.
func newFaulty(t *testing.T, cfg faulty.Config) *faulty.Backend {
	t.Helper()
	w, err := gale.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(local.Config{Handler: w.Handle, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(lb, cfg)
	t.Cleanup(func() { _ = fb.Close() })
	return fb
}

// corpus writes a generated text of size bytes and returns its path.
func corpus(t *testing.T, dir, name string, size int64, seed uint64, tweak func(*textgen.Config)) string {
	t.Helper()
	cfg := textgen.DefaultConfig()
	cfg.Size = size
	cfg.Seed = seed
	cfg.Vocabulary = 2000
	cfg.LongLineWords = 2000
	cfg.LongLineEvery = 50
	cfg.BlockSize = textgen.MinBlockSize * 4
	if tweak != nil {
		tweak(&cfg)
	}
	p := filepath.Join(dir, name)
	if err := textgen.GenerateFile(context.Background(), p, cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

// refCount counts the words of files with the reference counter.
func refCount(t *testing.T, files ...string) map[string]int64 {
	t.Helper()
	want := map[string]int64{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := wordref.Count(fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		for w, c := range m {
			want[w] += c
		}
	}
	return want
}

// readCommitted checks that dir is a committed output — _SUCCESS and part
// files, nothing else — and returns the lines of its part files.
func readCommitted(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading output: %v", err)
	}
	success := false
	var lines []string
	for _, e := range ents {
		switch {
		case e.Name() == "_SUCCESS" && e.Type().IsRegular():
			success = true
		case strings.HasPrefix(e.Name(), "part-") && e.Type().IsRegular():
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<30)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
		default:
			t.Errorf("output %s holds %s, which is neither a part file nor _SUCCESS", dir, e.Name())
		}
	}
	if !success {
		t.Errorf("output %s has no _SUCCESS marker", dir)
	}
	return lines
}

// readCounts reads a committed word count output, failing on a word that
// appears twice.
func readCounts(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	lines := readCommitted(t, dir)
	got, err := wordref.ParseCounts(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(lines) && !(len(lines) == 1 && lines[0] == "") {
		t.Errorf("%d output lines hold %d distinct words: some words are duplicated", len(lines), len(got))
	}
	return got
}

// sameCounts compares word counts, reporting the first few differences.
func sameCounts(t *testing.T, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d distinct words, want %d", len(got), len(want))
	}
	bad := 0
	for w, c := range want {
		if got[w] != c {
			if bad < 5 {
				t.Errorf("word %q: got %d, want %d", w, got[w], c)
			}
			bad++
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok && bad < 10 {
			t.Errorf("unexpected word %q", w)
			bad++
		}
	}
}

// noLeftovers checks that parent holds no staging directories and tmp,
// when not empty, holds nothing.
func noLeftovers(t *testing.T, parent, tmp string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".gale-") {
			t.Errorf("staging directory %s left next to the output", filepath.Join(parent, e.Name()))
		}
	}
	if tmp == "" {
		return
	}
	ents, err = os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("temporary directory %s still holds %v", tmp, names)
	}
}

// snapshot returns every file under dir with its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// put stores file under key in st.
func put(t *testing.T, st objstore.Store, key, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := st.Put(context.Background(), key, f); err != nil {
		t.Fatal(err)
	}
}

// get reads key from st whole.
func get(t *testing.T, st objstore.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
