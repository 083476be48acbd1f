package wordref

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoParts is returned by ReadCountDir when the directory holds no part
// files.
var ErrNoParts = errors.New("wordref: no part-* files")

// ReadCountDir reads a word count job's output directory: every part-*
// file in dir, each parsed by ParseCounts. A word that appears in two part
// files is an error (a job partitions its words), as is a directory with no
// part files (ErrNoParts); errors name the file.
func ReadCountDir(dir string) (map[string]int64, error) {
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoParts, dir)
	}
	all := make(map[string]int64)
	for _, p := range parts {
		m, err := readCountFile(p)
		if err != nil {
			return nil, err
		}
		for w, c := range m {
			if _, dup := all[w]; dup {
				return nil, fmt.Errorf("wordref: %s: word %q also appears in another part file", p, w)
			}
			all[w] = c
		}
	}
	return all, nil
}

func readCountFile(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ParseCounts(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// CountFile counts the words of the file at path (Count).
func CountFile(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Count(f)
}

// Diff describes how the counts got differ from want: nil when they are
// equal, else an error naming the number of distinct words of each and
// the first differing words in order (at most five).
func Diff(got, want map[string]int64) error {
	var words []string
	for w, c := range want {
		if got[w] != c {
			words = append(words, w)
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return nil
	}
	sort.Strings(words)
	var b strings.Builder
	fmt.Fprintf(&b, "wordref: %d distinct words, the reference counts %d; %d differ:", len(got), len(want), len(words))
	for i, w := range words {
		if i == 5 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " %q %d (want %d)", w, got[w], want[w])
	}
	return errors.New(b.String())
}
