package sort_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/internal/gensort"
)

func readParts(t *testing.T, dir string) []byte {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(parts)
	var all []byte
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTextSortMatchesIndependentSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name  string
		lines func(i int) string
		n     int
	}{
		{"random", func(int) string { return randWord(r, 1+r.IntN(30)) }, 20000},
		{"duplicates", func(int) string { return fmt.Sprint(r.IntN(7)) }, 5000},
		{"hot prefix", func(int) string { return "prefix/" + randWord(r, 5) }, 8000},
		{"tiny", func(int) string { return "x" }, 1},
		{"empty lines and bytes", func(i int) string { return randWord(r, i%4) + "\xff\x00" }, 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []string
			for i := range tc.n {
				in = append(in, tc.lines(i))
			}
			data := strings.Join(in, "\n") // no trailing newline: the last line still counts
			want := append([]string(nil), in...)
			slices.Sort(want)
			for _, opts := range [][]gale.RunOption{
				{gale.Workers(1)},
				{gale.Workers(3), gale.ChunkSize(4 << 10), gale.WorkerMemory(64 << 10)},
			} {
				out := filepath.Join(t.TempDir(), "out")
				p := gale.NewPipeline()
				if err := gsort.Build(p, gsort.Text, []string{writeFile(t, []byte(data))}, out); err != nil {
					t.Fatal(err)
				}
				if _, err := gale.Run(context.Background(), p, opts...); err != nil {
					t.Fatal(err)
				}
				got := readParts(t, out)
				if wantB := strings.Join(want, "\n") + "\n"; string(got) != wantB {
					t.Fatalf("sorted output differs (%d vs %d bytes)", len(got), len(wantB))
				}
			}
		})
	}
}

func randWord(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

func TestRecordSortValidates(t *testing.T) {
	for _, cfg := range []gensort.Config{
		{Count: 30000, ASCII: true},
		{Count: 30000, Seed: 5},
		{Count: 20000, Skew: true, ASCII: true},
		{Count: 0},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			var buf bytes.Buffer
			sum, err := gensort.Generate(context.Background(), &buf, cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			p := gale.NewPipeline()
			if err := gsort.Build(p, gsort.Records, []string{writeFile(t, buf.Bytes())}, out); err != nil {
				t.Fatal(err)
			}
			// A budget far below the data forces spills and merges.
			if _, err := gale.Run(context.Background(), p, gale.Workers(2), gale.WorkerMemory(256<<10), gale.ChunkSize(512<<10)); err != nil {
				t.Fatal(err)
			}
			got, err := gensort.Validate(context.Background(), bytes.NewReader(readParts(t, out)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Records != cfg.Count || got.Checksum != sum {
				t.Fatalf("validated %d records checksum %v, want %d %v", got.Records, got.Checksum, cfg.Count, sum)
			}
		})
	}
}

func TestRecordsOfWrongSizeAreRejected(t *testing.T) {
	in := writeFile(t, make([]byte, 250))
	p := gale.NewPipeline()
	out := filepath.Join(t.TempDir(), "out")
	if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
		t.Fatal(err)
	}
	_, err := gale.Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "offset 200") {
		t.Fatalf("got %v, want an error naming %s and offset 200", err, in)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Fatalf("output %s was created", out)
	}
}
