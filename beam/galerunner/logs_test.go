package galerunner_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/debug"
	"github.com/galeproject/gale/backends/process"
	"github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/engine"
)

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWorkerLogsReachTheDriver: what x/debug.Print logs in a DoFn appears
// in the driver's log, once per element, naming the stage and task, on the
// local and on the process backend (whose workers' own stderr the driver
// never shows).
func TestWorkerLogsReachTheDriver(t *testing.T) {
	galerunner.InstallLogger() // Prism's worker, if another test ran it, replaced it
	var logs syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	pc := process.DefaultConfig()
	pc.Concurrency = 2
	pc.Output = testWriter{t}
	pb, err := process.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	for _, tc := range []struct {
		name string
		cfg  galerunner.Config
	}{
		// Without backups: a backup that wins labels its task's messages
		// with its attempt, and a losing attempt that answers logs too.
		{"local", galerunner.Config{Workers: 2, Partitions: 2, Speculation: engine.Speculation{Off: true}}},
		{"process", galerunner.Config{Backend: pb, BackendName: "process", Workers: 2, Partitions: 2,
			Speculation: engine.Speculation{Off: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := "printed-on-" + tc.name
			var in []string
			for i := range 20 {
				in = append(in, fmt.Sprintf("%s-%02d", tag, i))
			}
			p, s := beam.NewPipelineWithRoot()
			debug.Print(s, beam.Reshuffle(s, beam.CreateList(s, in)))
			pp, err := galerunner.Marshal(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := galerunner.Run(context.Background(), pp, tc.cfg); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			for _, want := range in {
				re := regexp.MustCompile(`msg="\[stage \d+ task \d+\] Elm: ` + want + `"`)
				if n := len(re.FindAllString(out, -1)); n != 1 {
					t.Errorf("the driver's log has %d lines %q, want 1", n, re)
				}
			}
			if t.Failed() {
				var mine []string
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, tag) {
						mine = append(mine, l)
					}
				}
				t.Logf("driver's log lines with %s:\n%s", tag, strings.Join(mine, "\n"))
			}
		})
	}
}
