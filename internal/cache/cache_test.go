package cache

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/internal/textgen"
)

// isolate points the user's cache directory at a new temporary one.
func isolate(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", d)
	t.Setenv("HOME", d)
	return filepath.Join(d, "gale")
}

// A corpus is generated once per configuration and reused; another
// configuration gets another file.
func TestCorpusIsGeneratedOnceAndReused(t *testing.T) {
	root := isolate(t)
	cfg := textgen.DefaultConfig()
	cfg.Size = 64 << 10
	var log bytes.Buffer
	p1, err := Corpus(t.Context(), cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p1, filepath.Join(root, "samples")+string(filepath.Separator)) || !strings.Contains(log.String(), "generating") {
		t.Fatalf("corpus at %s, log %q; want it generated under %s/samples", p1, &log, root)
	}
	want, err := os.ReadFile(p1)
	if err != nil || int64(len(want)) != cfg.Size {
		t.Fatalf("corpus of %d bytes (%v), want %d", len(want), err, cfg.Size)
	}
	log.Reset()
	cfg.Workers = 3 // does not change the text
	if p2, err := Corpus(t.Context(), cfg, &log); err != nil || p2 != p1 || log.Len() != 0 {
		t.Errorf("second Corpus = %s, %v, log %q; want %s reused silently", p2, err, &log, p1)
	}
	cfg.ZipfS = 1.2
	if p3, err := Corpus(t.Context(), cfg, &log); err != nil || p3 == p1 {
		t.Errorf("Corpus of another configuration = %s, %v; want a file other than %s", p3, err, p1)
	}
	cfg.Size = -1
	if _, err := Corpus(t.Context(), cfg, &log); !errors.Is(err, textgen.ErrInvalidConfig) {
		t.Errorf("Corpus of a bad configuration: %v", err)
	}
}

// A dataset whose generation failed is not taken for a complete one: the
// next call removes what is left and generates it again.
func TestDatasetRegeneratesAnIncompleteCopy(t *testing.T) {
	isolate(t)
	var log bytes.Buffer
	boom := errors.New("interrupted")
	_, err := Dataset("points", &log, func(dir string) error {
		os.WriteFile(filepath.Join(dir, "part-0"), []byte("half"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Dataset = %v, want the generator's error", err)
	}
	calls := 0
	gen := func(dir string) error {
		calls++
		if _, err := os.Stat(filepath.Join(dir, "part-0")); err == nil {
			t.Error("the incomplete copy's file is still there")
		}
		return os.WriteFile(filepath.Join(dir, "part-1"), []byte("whole"), 0o644)
	}
	dir, err := Dataset("points", &log, gen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Dataset("points", &log, gen); err != nil || calls != 1 {
		t.Errorf("the complete dataset was generated %d times (%v), want once", calls, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "part-1")); err != nil || string(b) != "whole" {
		t.Errorf("dataset holds %q, %v", b, err)
	}
}

func TestOutputIsNamedByJob(t *testing.T) {
	root := isolate(t)
	if d, err := Output("wordcount"); err != nil || d != filepath.Join(root, "out", "wordcount") {
		t.Errorf("Output(wordcount) = %s, %v", d, err)
	}
}
