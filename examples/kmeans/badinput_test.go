package kmeans_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/kmeans/dataset"
)

func TestBadInputIsNamedByFileAndLineBeforeAnyRound(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("dims/a.csv", "1,2\n3,4\n\n5,6\n")
	b := write("dims/b.csv", "1,2\n3,4,5\n")
	nan := write("nan.csv", "1,2\n3,NaN\n")
	inf := write("inf.csv", "1,2\n-Inf,3\n")
	text := write("text.csv", "1,2\n3,x\n")
	few := write("few.csv", "1,2\n3,4\n")
	cases := []struct {
		name   string
		inputs []string
		k, dim int
		want   string
	}{
		{"dimensions differ across files", []string{filepath.Join(dir, "dims")}, 2, 0,
			"dims/b.csv:2: 3 values, but " + a + ":1 has 2"},
		{"NaN", []string{nan}, 1, 0, `nan.csv:2: value 2 "NaN" is not a finite number`},
		{"infinity", []string{inf}, 1, 0, `inf.csv:2: value 1 "-Inf" is not a finite number`},
		{"not a number", []string{text}, 1, 0, `text.csv:2: value 2 "x" is not a number`},
		{"dim flag", []string{a}, 1, 3, "a.csv:1: 2 values, but the job's configuration has 3"},
		{"K above the points", []string{few}, 3, 0, "K = 3 is larger than the number of points (2) in " + few},
	}
	for _, c := range cases {
		for _, mode := range []string{kmeans.ModeShared, kmeans.ModeStages, kmeans.ModeLocal} {
			_, err := kmeans.Run(context.Background(), kmeans.Config{Inputs: c.inputs, K: c.k, Dim: c.dim, Mode: mode, Workers: 2})
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, dataset.ErrBadInput) {
				t.Errorf("%s (%s): got %v, want an error containing %q", c.name, mode, err, c.want)
			}
		}
	}
	_ = b
}

func TestConfigProblemsAreReportedTogether(t *testing.T) {
	err := kmeans.Config{K: 0, Iterations: -1, Workers: -2, Mode: "spark"}.Validate()
	for _, want := range []string{"no input", "K must be at least 1", "Iterations", "Workers", `unknown mode "spark"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}

func TestMissingInputIsAnError(t *testing.T) {
	_, err := kmeans.Run(context.Background(), kmeans.Config{Inputs: []string{filepath.Join(t.TempDir(), "nope")}, K: 1})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("got %v, want an error naming the missing input", err)
	}
}
