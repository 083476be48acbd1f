// Package cache keeps what the gale command generates for the user in one
// place instead of the system's temporary directory: Gale's cache
// directory, os.UserCacheDir()/gale ($XDG_CACHE_HOME/gale, else
// ~/.cache/gale, on Linux). It holds
//
//   - samples/: reproducible inputs (text corpora, datasets), generated
//     once per configuration and reused by later runs;
//   - out/JOB: the output of the latest run of a sample job given no
//     --output, replaced by the next such run;
//   - bin/: programs gale builds from a source checkout (beam-wordcount).
//
// Everything in it can be deleted at any time; it is generated again when
// needed.
//
// This package imports the standard library, internal/textgen and go-humanize. It
// starts no goroutines (textgen's generator owns its own, and waits for
// them).
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale/internal/textgen"
)

// Dir returns Gale's cache directory, os.UserCacheDir()/gale, without
// creating it.
func Dir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache: no directory for Gale's cache (%v); set XDG_CACHE_HOME or HOME", err)
	}
	return filepath.Join(d, "gale"), nil
}

// Sub returns the directory elem under Gale's cache directory, creating
// it.
func Sub(elem ...string) (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	d = filepath.Join(append([]string{d}, elem...)...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return d, nil
}

// Output returns the directory for the output of a run of job given no
// output: out/JOB in the cache directory. The caller replaces what the
// last such run left there.
func Output(job string) (string, error) {
	d, err := Sub("out")
	if err != nil {
		return "", err
	}
	return filepath.Join(d, job), nil
}

// Corpus returns the path of the text corpus cfg describes in the cache's
// samples/, generating it first (atomically, saying so on log) unless a
// copy is already there. The name holds the seed, the size and a digest
// of the whole configuration and of textgen.Version, so a corpus is never
// taken for another one.
func Corpus(ctx context.Context, cfg textgen.Config, log io.Writer) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	dir, err := Sub("samples")
	if err != nil {
		return "", err
	}
	id := cfg
	id.Workers = 0 // does not change the text
	sum := sha256.Sum256(fmt.Appendf(nil, "textgen %d %+v", textgen.Version, id))
	path := filepath.Join(dir, fmt.Sprintf("text-seed%d-%d-%s.txt", cfg.Seed, cfg.Size, hex.EncodeToString(sum[:4])))
	if fi, err := os.Stat(path); err == nil && fi.Size() == cfg.Size {
		return path, nil
	}
	fmt.Fprintf(log, "generating a %s sample corpus at %s (once: later runs reuse it)\n", humanize.IBytes(uint64(cfg.Size)), path)
	if err := textgen.GenerateFile(ctx, path, cfg); err != nil {
		return "", err
	}
	return path, nil
}

// Dataset returns the directory name in the cache's samples/, filled by
// gen unless a complete copy is already there (gen's last act is not
// enough: a .complete marker is written after it returns). An incomplete
// copy, from a run interrupted while generating, is removed and
// generated again.
func Dataset(name string, log io.Writer, gen func(dir string) error) (string, error) {
	samples, err := Sub("samples")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(samples, name)
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("cache: removing an incomplete %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	fmt.Fprintf(log, "generating %s (once: later runs reuse it)\n", dir)
	if err := gen(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, os.WriteFile(marker, nil, 0o644)
}
