package gale_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

type celsius float32

type level int8

type colour struct{ R, G, B uint8 }

func (c colour) String() string {
	return "#" + string("0123456789abcdef"[c.R>>4]) + string("0123456789abcdef"[c.R&15])
}

type pair struct{ A, B int }

func toPair(i int64) pair { return pair{int(i), int(i)} }

// TestWriteTextFormatsOrRefuses: WriteText printed any type with %v, so a
// struct came out as "{1 1}" in one release and differently in another.
// It now formats numbers, bools, KVs and Stringers by documented rules and
// refuses the rest when the pipeline is built.
func TestWriteTextFormatsOrRefuses(t *testing.T) {
	dir := t.TempDir()
	p := gale.NewPipeline()
	gale.WriteText(gale.FromSlice(p, []celsius{1.5, -0.25}), filepath.Join(dir, "f32"))
	gale.WriteText(gale.FromSlice(p, []gale.KV[level, bool]{{Key: -3, Value: true}}), filepath.Join(dir, "kv"))
	gale.WriteText(gale.FromSlice(p, []colour{{R: 0xab}}), filepath.Join(dir, "stringer"))
	run(t, p)
	for dirName, want := range map[string][]string{"f32": {"-0.25", "1.5"}, "kv": {"-3\ttrue"}, "stringer": {"#ab"}} {
		got := readCommitted(t, filepath.Join(dir, dirName))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", dirName, got, want)
		}
	}
	p = gale.NewPipeline()
	gale.WriteText(gale.Generate(p, 3, toPair), filepath.Join(dir, "structs"))
	gale.WriteText(gale.FromSlice(p, []gale.KV[string, []string]{{Key: "a"}}), filepath.Join(dir, "slices"))
	err := p.Err()
	if err == nil || !strings.Contains(err.Error(), "gale_test.pair") || !strings.Contains(err.Error(), "[]string") ||
		!strings.Contains(err.Error(), "Map the elements to strings") {
		t.Errorf("WriteText of structs and slices: %v", err)
	}
}
