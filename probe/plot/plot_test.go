package plot

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/galeproject/gale/backends/sim"
	"github.com/galeproject/gale/probe"
)

func simTrace(t *testing.T, preset string) *probe.Trace {
	t.Helper()
	cfg, err := sim.DefaultConfig(preset)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tr, err := probe.Run(context.Background(), b, probe.Config{Invocations: 50, Task: probe.Compute, Duration: time.Second, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// checkFiles checks every path is a non-empty file, PNGs decode and SVGs
// are SVG documents.
func checkFiles(t *testing.T, paths []string, want int) {
	t.Helper()
	if len(paths) != want {
		t.Fatalf("wrote %d files, want %d: %v", len(paths), want, paths)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(p, ".png"):
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Errorf("%s is not a valid PNG: %v", p, err)
			} else if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
				t.Errorf("%s is %v, too small", p, r)
			}
		case strings.HasSuffix(p, ".svg"):
			if !bytes.Contains(b, []byte("<svg")) || len(b) < 1000 {
				t.Errorf("%s is not a plausible SVG (%d bytes)", p, len(b))
			}
		default:
			t.Errorf("unexpected file %s", p)
		}
	}
}

func TestRunFigures(t *testing.T) {
	tr := simTrace(t, "gcp")
	// A failed invocation is drawn too.
	tr.Records[0].Outcome, tr.Records[0].Error = probe.OutcomeRejected, "throttled"
	paths, err := Run(t.TempDir(), "gcp", tr)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, paths, 3*len(Formats))
}

func TestCompareFigure(t *testing.T) {
	var trs []*probe.Trace
	for _, p := range []string{"aws", "azure"} {
		trs = append(trs, simTrace(t, p))
	}
	paths, err := Compare(t.TempDir(), "compare", trs)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, paths, len(Formats))
	if _, err := Compare(t.TempDir(), "x", nil); err == nil {
		t.Error("Compare of no runs succeeded")
	}
}

func TestEmptyTrace(t *testing.T) {
	tr := &probe.Trace{Backend: "none", Invocations: 1, Records: []probe.Record{{Outcome: probe.OutcomeCancelled}}}
	paths, err := Run(t.TempDir(), "empty", tr)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, paths, 3*len(Formats))
}
