package gale_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/examples/wordcount"
)

// changingBackend runs change once, just before the first invocation of a
// task whose ID contains match ("stage-0/task-5/"): an input changed by
// someone else while the job runs.
type changingBackend struct {
	backends.Backend
	match  string
	once   sync.Once
	change func()
}

func (b *changingBackend) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	if strings.Contains(t.ID, b.match) {
		b.once.Do(b.change)
	}
	return b.Backend.Invoke(ctx, t)
}

// runChanging runs word count over inputs into out, with change applied
// before the first task matching match.
func runChanging(t *testing.T, ctx context.Context, inputs []string, out, match string, change func(), opts ...gale.RunOption) error {
	t.Helper()
	fb := newFaulty(t, faulty.Config{})
	cb := &changingBackend{Backend: fb, match: match, change: change}
	p := gale.NewPipeline()
	wordcount.Build(p, inputs, out)
	_, err := gale.Run(ctx, p, append([]gale.RunOption{gale.WithBackend("changing", cb), gale.Workers(1),
		gale.ChunkSize(16 << 10)}, opts...)...)
	return err
}

// An input that changes while the job runs fails the job, naming it, and
// nothing is committed: truncated while the map tasks read it (the next
// task refuses it), rewritten with the same size once they are all done
// (the driver's check before the commit finds it), or deleted.
func TestInputChangedWhileRunningFailsTheJob(t *testing.T) {
	dir := t.TempDir()
	in := corpus(t, dir, "in.txt", 256<<10, 7, nil)
	orig, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		writeFile(t, in, orig)
		if err := os.Chtimes(in, time.Now(), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, match string
		change      func()
		want        string
	}{
		{"truncated mid-map", "stage-0/task-5/", func() {
			if err := os.Truncate(in, 10<<10); err != nil {
				t.Error(err)
			}
		}, "is now 10240 bytes"},
		{"rewritten after the map stage", "stage-1/task-0/", func() {
			b := append([]byte(nil), orig...)
			copy(b, "CHANGED")
			writeFile(t, in, b)
			if err := os.Chtimes(in, time.Now(), time.Now()); err != nil {
				t.Error(err)
			}
		}, "when the job was planned and is now"},
		{"deleted", "stage-0/task-3/", func() {
			if err := os.Remove(in); err != nil {
				t.Error(err)
			}
		}, "was deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			restore()
			out := filepath.Join(t.TempDir(), "out")
			err := runChanging(t, context.Background(), []string{in}, out, tc.match, tc.change)
			t.Logf("%v", err)
			// A task's error reaches the driver as text (it may come from
			// another process), so it is matched by its message.
			if err == nil || !strings.Contains(err.Error(), engine.ErrInputChanged.Error()) || !strings.Contains(err.Error(), in) ||
				!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "no output was committed") {
				t.Fatalf("err = %v; want ErrInputChanged naming %s and saying %q", err, in, tc.want)
			}
			mustNotExist(t, out)
		})
	}
	// Unchanged, the same job commits.
	restore()
	out := filepath.Join(t.TempDir(), "out")
	if err := runChanging(t, context.Background(), []string{in}, out, "stage-0/task-5/", func() {}); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, readCounts(t, out), refCount(t, in))
}
