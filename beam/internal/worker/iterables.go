package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
)

// A group larger than a quarter of the grouping budget does not travel
// whole: its element carries the first values, then Beam's state-backed
// iterable marker (a chunk of -1 and a token), and the rest of its values
// go to a local file the token names. The SDK's DataSource reads the rest
// through the task's StateReader (OpenIterable), lazily, as a DoFn
// iterates, and again for each re-iteration (a CoGroupByKey's Expand), so
// one key's values never need to fit in memory.

// errBadIterableToken means OpenIterable was asked for a token this task
// did not write.
var errBadIterableToken = errors.New("worker: unknown state-backed iterable token")

// iterableFiles holds the value files of one task's large groups in a
// private directory under parent, created at the first file and removed by
// remove. The feeder creates files; the plan's goroutine opens them, each
// only after the element naming it was sent, so after it was closed.
type iterableFiles struct {
	parent string

	mu   sync.Mutex
	dir  string
	next int
}

// create returns a new value file and its token.
func (f *iterableFiles) create() (*os.File, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dir == "" {
		dir, err := os.MkdirTemp(f.parent, "gale-beam-groups-")
		if err != nil {
			return nil, nil, fmt.Errorf("worker: creating a directory for large groups: %w (check free space and permissions there, or set worker.Config.SpillDir)", err)
		}
		f.dir = dir
	}
	token := []byte(strconv.Itoa(f.next))
	f.next++
	file, err := os.OpenFile(filepath.Join(f.dir, string(token)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("worker: creating a file for a large group: %w", err)
	}
	return file, token, nil
}

// open returns a reader of the values the file token names.
func (f *iterableFiles) open(token []byte) (io.ReadCloser, error) {
	f.mu.Lock()
	dir, n := f.dir, f.next
	f.mu.Unlock()
	i, err := strconv.Atoi(string(token))
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != string(token) {
		return nil, fmt.Errorf("%w %q", errBadIterableToken, token)
	}
	file, err := os.Open(filepath.Join(dir, string(token)))
	if err != nil {
		return nil, fmt.Errorf("worker: reading a large group's values: %w", err)
	}
	return &fileReader{Reader: bufio.NewReaderSize(file, 64<<10), f: file}, nil
}

// remove deletes every value file; it is idempotent.
func (f *iterableFiles) remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dir == "" {
		return nil
	}
	if err := os.RemoveAll(f.dir); err != nil {
		return fmt.Errorf("worker: removing large groups' files: %w", err)
	}
	f.dir = ""
	return nil
}

type fileReader struct {
	*bufio.Reader
	f *os.File
}

func (r *fileReader) Close() error { return r.f.Close() }

// OpenIterable serves the state-backed tail of a large group.
func (s *stateReader) OpenIterable(_ context.Context, id exec.StreamID, token []byte) (io.ReadCloser, error) {
	if s.iterables == nil {
		return nil, fmt.Errorf("%w %q: transform %s has no large groups", errBadIterableToken, token, id.PtransformID)
	}
	return s.iterables.open(token)
}
