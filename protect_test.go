package gale_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// inputTree writes in/a.txt and in/sub/b.txt under dir and returns in.
func inputTree(t *testing.T, dir string) string {
	t.Helper()
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(in, "a.txt"), []byte("alpha beta\n"))
	writeFile(t, filepath.Join(in, "sub", "b.txt"), []byte("beta gamma\n"))
	return in
}

// treeIntact fails unless in still holds exactly what inputTree wrote.
func treeIntact(t *testing.T, in string) {
	t.Helper()
	for name, want := range map[string]string{"a.txt": "alpha beta\n", "sub/b.txt": "beta gamma\n"} {
		b, err := os.ReadFile(filepath.Join(in, name))
		if err != nil || string(b) != want {
			t.Errorf("input %s: %q, %v after a refused run", name, b, err)
		}
	}
}

// An output that is an input, holds one or lies inside one is refused
// before any task runs, naming both, however the paths are spelled
// (relative, with "..", through a symbolic link, as a file:// URL, by a
// glob), with or without Overwrite; the input stays as it was.
func TestOutputOverlappingInputIsRefused(t *testing.T) {
	dir := t.TempDir()
	in := inputTree(t, dir)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cases := []struct {
		name   string
		inputs []string
		out    string
		want   string
	}{
		{"same", []string{in}, in, "is the input itself"},
		{"same relative", []string{"in"}, "./sub/../in", "is the input itself"},
		{"same through a link", []string{in}, link, "is the input itself"},
		{"same as file URL", []string{"file://" + in}, in, "is the input itself"},
		{"above", []string{in}, dir, "holds the input file"},
		{"above by dotdot", []string{"in/sub"}, "in/sub/..", "holds the input file"},
		{"above a file input", []string{filepath.Join(in, "a.txt")}, in, "holds the input file"},
		{"the input file", []string{filepath.Join(in, "a.txt")}, filepath.Join(in, "a.txt"), "is the input itself"},
		{"inside", []string{in}, filepath.Join(in, "out"), "is inside the input directory"},
		{"inside through a link", []string{link}, filepath.Join(in, "sub", "out"), "is inside the input directory"},
		{"inside a glob's match", []string{filepath.Join(dir, "i*")}, filepath.Join(in, "out"), "matches"},
		{"a glob's match itself", []string{filepath.Join(in, "*")}, filepath.Join(in, "out"), "matches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, overwrite := range []bool{false, true} {
				err, n := runCount(t, tc.inputs, tc.out, gale.Overwrite(overwrite))
				if err == nil || !strings.Contains(err.Error(), tc.want) ||
					!strings.Contains(err.Error(), "WriteText") || !strings.Contains(err.Error(), "ReadText") {
					t.Fatalf("overwrite %v: err = %v; want %q naming the read and the write", overwrite, err, tc.want)
				}
				if n != 0 {
					t.Errorf("overwrite %v: %d tasks ran", overwrite, n)
				}
				treeIntact(t, in)
			}
		})
	}
	t.Logf("message: %v", func() error { err, _ := runCount(t, []string{in}, filepath.Join(in, "out")); return err }())

	// Outputs beside the input, and a glob that cannot match the output,
	// are fine.
	for _, tc := range []struct {
		inputs []string
		out    string
	}{
		{[]string{in}, filepath.Join(dir, "in-out")},
		{[]string{filepath.Join(in, "*.txt")}, filepath.Join(in, "out")},
	} {
		if err, _ := runCount(t, tc.inputs, tc.out); err != nil {
			t.Errorf("%v into %s: %v", tc.inputs, tc.out, err)
		}
	}
}

// Overwrite replaces an earlier Gale output, but not a directory of other
// files, which stays as it was.
func TestOverwriteReplacesOnlyGaleOutput(t *testing.T) {
	dir := t.TempDir()
	in := inputTree(t, dir)
	out := filepath.Join(dir, "out")
	if err, _ := runCount(t, []string{in}, out); err != nil {
		t.Fatal(err)
	}
	if err, _ := runCount(t, []string{in}, out, gale.Overwrite(true)); err != nil {
		t.Fatalf("overwriting a Gale output: %v", err)
	}
	mine := filepath.Join(dir, "mine")
	if err := os.MkdirAll(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mine, "thesis.tex"), []byte("years of work"))
	err, n := runCount(t, []string{in}, mine, gale.Overwrite(true))
	t.Logf("overwrite of a directory that is not Gale's: %v", err)
	if err == nil || !strings.Contains(err.Error(), mine) || !strings.Contains(err.Error(), "no _SUCCESS marker") ||
		!strings.Contains(err.Error(), "rm -r") {
		t.Fatalf("err = %v; want a refusal naming %s, the missing marker and the fix", err, mine)
	}
	if n != 0 {
		t.Errorf("%d tasks ran", n)
	}
	if b, err := os.ReadFile(filepath.Join(mine, "thesis.tex")); err != nil || string(b) != "years of work" {
		t.Errorf("the refused output changed: %q, %v", b, err)
	}
}
