package dataset_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/kmeans/dataset"
)

func readAll(t *testing.T, dir string) []byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestGeneratedDataDoesNotDependOnTheNumberOfParts(t *testing.T) {
	ctx := context.Background()
	gen := func(parts int, labeled bool) (string, []byte) {
		dir := t.TempDir()
		st, err := gale.OpenStore(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if labeled {
			err = dataset.WriteLabeled(ctx, st, dataset.LabeledConfig{Count: 1001, Features: 7, Parts: parts, Seed: 3})
		} else {
			err = dataset.WritePoints(ctx, st, dataset.PointsConfig{Count: 1001, Dim: 3, K: 4, Parts: parts, Seed: 3})
		}
		if err != nil {
			t.Fatal(err)
		}
		return dir, readAll(t, dir)
	}
	for _, labeled := range []bool{false, true} {
		dir1, one := gen(1, labeled)
		_, five := gen(5, labeled)
		if !bytes.Equal(one, five) {
			t.Fatalf("labeled=%v: 1 part and 5 parts differ", labeled)
		}
		files, err := dataset.Expand(ctx, []string{dir1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := dataset.Scan(ctx, files, nil, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if labeled {
			want = 8
		}
		if sum.Points != 1001 || sum.Width != want {
			t.Fatalf("labeled=%v: %+v", labeled, sum)
		}
	}
}

func TestPointsClusterAroundTheirCenters(t *testing.T) {
	ctx := context.Background()
	cfg := dataset.PointsConfig{Count: 4000, Dim: 2, K: 4, Seed: 5}
	dir := t.TempDir()
	st, _ := gale.OpenStore(ctx, dir, nil)
	if err := dataset.WritePoints(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	files, _ := dataset.Expand(ctx, []string{dir}, nil)
	pts, _, err := dataset.Load(ctx, files, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	centers := cfg.Centers()
	var sq float64
	for i := 0; i < 4000; i++ {
		c := i % 4
		sq += dataset.SqDist(pts[2*i:2*i+2], centers[2*c:2*c+2])
	}
	// Noise is N(0, 1) per coordinate: the mean squared distance is 2.
	if m := sq / 4000; m < 1.8 || m > 2.2 {
		t.Fatalf("mean squared distance to the generating center %v, want about 2", m)
	}
}

func TestPickIsASeededPrefixOfAPermutation(t *testing.T) {
	a := dataset.Pick(1, 100, 100)
	s := slices.Clone(a)
	slices.Sort(s)
	for i, v := range s {
		if v != int64(i) {
			t.Fatalf("Pick(1, 100, 100) is not a permutation: %v", a)
		}
	}
	if b := dataset.Pick(1, 100, 10); !slices.Equal(b, a[:10]) {
		t.Fatalf("Pick(1, 100, 10) = %v, not a prefix of %v", b, a[:10])
	}
	if c := dataset.Pick(2, 100, 10); slices.Equal(c, a[:10]) {
		t.Fatalf("seeds 1 and 2 picked the same points")
	}
}

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []float64
		err  string
	}{
		{"1, 2.5 ,-3e2", []float64{1, 2.5, -300}, ""},
		{"   ", nil, ""},
		{"1,,2", nil, `value 2 "" is not a number`},
		{"1,nan", nil, `value 2 "nan" is not a finite number`},
		{"1e400", nil, `value 1 "1e400" is not a number`},
	} {
		got, err := dataset.ParseLine(nil, c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestGatherReturnsThePickedPoints(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("0,0\n1,1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.csv"), []byte("\n2,2\n3,3\n"), 0o644)
	files, err := dataset.Expand(context.Background(), []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dataset.Gather(context.Background(), files, nil, 2, []int64{3, 0, 2})
	if err != nil || !slices.Equal(got, []float64{3, 3, 0, 0, 2, 2}) {
		t.Fatalf("Gather = %v, %v", got, err)
	}
}
