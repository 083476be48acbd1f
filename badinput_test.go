package gale_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
)

// runCount runs word count over inputs into out on a counting backend and
// returns the error and how many invocations the backend saw.
func runCount(t *testing.T, inputs []string, out string, opts ...gale.RunOption) (error, int64) {
	t.Helper()
	fb := newFaulty(t, faulty.Config{})
	p := gale.NewPipeline()
	wordcount.Build(p, inputs, out)
	_, err := gale.Run(context.Background(), p, append([]gale.RunOption{gale.WithBackend("faulty", fb)}, opts...)...)
	_ = fb.Close()
	return err, fb.Stats().Invocations
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a refused run (stat: %v)", path, err)
	}
}

func TestMissingInput(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-file.txt")
	out := filepath.Join(dir, "out")
	err, n := runCount(t, []string{missing}, out)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v; want an error naming %s", err, missing)
	}
	if n != 0 {
		t.Errorf("%d tasks ran for a missing input", n)
	}
	mustNotExist(t, out)
}

func TestGlobMatchingNothing(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "*.nothing")
	out := filepath.Join(dir, "out")
	err, n := runCount(t, []string{pattern}, out)
	if err == nil || !strings.Contains(err.Error(), pattern) || !strings.Contains(err.Error(), "matched no files") {
		t.Fatalf("err = %v; want an error naming the pattern %s", err, pattern)
	}
	if n != 0 {
		t.Errorf("%d tasks ran for an empty glob", n)
	}
	mustNotExist(t, out)
}

func TestEmptyInputsCommitEmptyOutput(t *testing.T) {
	dir := t.TempDir()
	var ins []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("empty-%d.txt", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, p)
	}
	tmp := isolateTemp(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if err, _ := runCount(t, ins, out, gale.Partitions(2)); err != nil {
		t.Fatal(err)
	}
	for _, l := range readCommitted(t, out) {
		t.Errorf("empty input produced the line %q", l)
	}
	noLeftovers(t, parent, tmp)
}

// awkwardFiles writes inputs that stress line splitting and decoding and
// returns their paths.
func awkwardFiles(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	// A line of 10 MiB, longer than every read buffer and many chunks,
	// between short lines, the last without a final newline.
	var long bytes.Buffer
	long.WriteString("short first line\n")
	for long.Len() < 10<<20 {
		fmt.Fprintf(&long, "Word%d ", rng.IntN(500))
	}
	long.WriteString("END\n")
	long.WriteString("tail without newline")
	write("long-lines.txt", long.Bytes())
	// Invalid UTF-8 between and inside words, truncated sequences at line
	// ends, NUL bytes.
	var bad bytes.Buffer
	for i := range 20000 {
		switch rng.IntN(6) {
		case 0:
			bad.WriteString("caf\xc3")
		case 1:
			bad.WriteString("\xff\xfeÉcole\xed\xa0\x80")
		case 2:
			bad.WriteString("naïve\x00word")
		case 3:
			bad.WriteString("東京\xe6\x9d")
		default:
			fmt.Fprintf(&bad, "w%d", i%97)
		}
		if rng.IntN(4) == 0 {
			bad.WriteByte('\n')
		} else {
			bad.WriteByte(' ')
		}
	}
	write("invalid-utf8.txt", bad.Bytes())
	// CRLF line ends, stray carriage returns, empty lines.
	crlf := corpus(t, dir, "crlf.txt", 300<<10, 21, func(c *textgen.Config) { c.CRLFEvery = 1; c.EmptyLineEvery = 3 })
	paths = append(paths, crlf)
	write("cr.txt", []byte("a\rb\r\n\r\n\r\nc\r\r\nd\r"))
	return paths
}

func TestAwkwardInputsCountLikeReference(t *testing.T) {
	dir := t.TempDir()
	ins := awkwardFiles(t, dir)
	want := refCount(t, ins...)
	for _, chunk := range []int64{333_333} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if err, _ := runCount(t, ins, out, gale.ChunkSize(chunk), gale.Workers(4), gale.Partitions(3)); err != nil {
				t.Fatal(err)
			}
			sameCounts(t, readCounts(t, out), want)
		})
	}
}

func TestExistingOutputIsRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("one two two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(out, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	err, n := runCount(t, []string{in}, out)
	// A library user is told the run option, not only the command's flag.
	if err == nil || !strings.Contains(err.Error(), "gale.Overwrite(true)") || !strings.Contains(err.Error(), "--overwrite") ||
		!strings.Contains(err.Error(), out) {
		t.Fatalf("err = %v; want a refusal naming %s, gale.Overwrite(true) and --overwrite", err, out)
	}
	if n != 0 {
		t.Errorf("%d tasks ran before the refusal", n)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep me" {
		t.Fatalf("refused run touched existing output: %q, %v", b, err)
	}
	// Overwrite replaces only an earlier Gale output, which holds _SUCCESS
	// (TestOverwriteReplacesOnlyGaleOutput).
	if err := os.WriteFile(filepath.Join(out, "_SUCCESS"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err, _ := runCount(t, []string{in}, out, gale.Overwrite(true)); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, readCounts(t, out), map[string]int64{"one": 1, "two": 2})
	mustNotExist(t, precious)
}

func TestUnregisteredClosureIsReportedBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	suffix := "!"
	p := gale.NewPipeline()
	_, _, line, _ := runtime.Caller(0)
	shout := gale.Map(gale.ReadText(p, in), func(s string) string { return s + suffix })
	gale.WriteText(shout, filepath.Join(dir, "out"))
	fb := newFaulty(t, faulty.Config{})
	_, err := gale.Run(context.Background(), p, gale.WithBackend("faulty", fb))
	_ = fb.Close()
	if err == nil {
		t.Fatal("Run accepted an unregistered closure")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		fmt.Sprintf("badinput_test.go:%d", line+1),
		"TestUnregisteredClosureIsReportedBeforeRunning.func",
		"closure",
		"gale.Register",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if n := fb.Stats().Invocations; n != 0 {
		t.Errorf("%d tasks ran before the error", n)
	}
	mustNotExist(t, filepath.Join(dir, "out"))
}
