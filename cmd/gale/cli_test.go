package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
)

// execute runs gale in this process with args and returns its output and
// error as main would print it.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	root.SetArgs(args)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		err = forCommandLine(err)
	}
	return out.String(), err
}

// wantUsageError checks that gale args fails as a usage error (exit
// status 2) saying every one of says.
func wantUsageError(t *testing.T, err error, args []string, says ...string) {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("gale %s: %v, want a usage error", strings.Join(args, " "), err)
		return
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("gale %s: %q does not say %q", strings.Join(args, " "), err, s)
		}
	}
}

// No flag's help names its default twice (a size flag once printed
// "(default 64MiB) (default 0 B)").
func TestHelpNamesEachDefaultOnce(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.LocalFlags().FlagUsages(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(line))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// An unknown command is a usage error wherever the typo is, and each
// suggests the closest name; unknown flags after an unknown job do not
// hide it.
func TestUnknownCommandsAreUsageErrorsWithASuggestion(t *testing.T) {
	for _, c := range []struct {
		args []string
		says []string
	}{
		{[]string{"rnu", "wordcount"}, []string{`unknown command "rnu" for "gale"`, `did you mean "run"?`, "available: ", "gen"}},
		// Both gen and run are near; run is nearer.
		{[]string{"rn", "wordcount"}, []string{`unknown command "rn" for "gale"`, `did you mean "run"?`}},
		{[]string{"gen", "txet"}, []string{`unknown command "txet" for "gale gen"`, `did you mean "text"?`}},
		{[]string{"run", "wordcont"}, []string{`unknown command "wordcont" for "gale run"`, `did you mean "wordcount"?`, "sort"}},
		{[]string{"plan", "sort", "--input", "x"}, []string{`unknown command "sort" for "gale plan"`, "available: wordcount"}},
		{[]string{"run", "wordcont", "--input", "x", "--workers", "2"}, []string{`unknown command "wordcont"`, `did you mean "wordcount"?`}},
	} {
		_, err := execute(t, c.args...)
		wantUsageError(t, err, c.args, c.says...)
	}
}

// A missing argument is a usage error that shows what to give.
func TestMissingArgumentShowsTheUsage(t *testing.T) {
	args := []string{"valsort"}
	_, err := execute(t, args...)
	wantUsageError(t, err, args, "valsort accepts 1 arg(s), received 0", "usage: gale valsort DIR|FILE")
	args = []string{"run", "wordcount", "corpus.txt"}
	_, err = execute(t, args...)
	wantUsageError(t, err, args, `run wordcount takes no arguments, got "corpus.txt"`, "usage: gale run wordcount")
}

// --workers 0 (and the other flags whose zero stands for a default) is
// refused, not silently taken for the default.
func TestExplicitZeroIsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"run", "wordcount", "--input", "x", "--workers", "0"},
		{"run", "kmeans", "--workers", "0"},
		{"run", "kmeans", "--workers", "0", "--mode", "local"},
		{"run", "sort", "--input", "x", "--output", "y", "--partitions", "0"},
		{"plan", "wordcount", "--input", "x", "--chunk-size", "0"},
	} {
		_, err := execute(t, args...)
		wantUsageError(t, err, args, "0: must be at least 1; leave the flag out for its default")
	}
}

// gen records and gen text write files of the same mode, readable by all.
func TestGeneratedFilesAreReadableByAll(t *testing.T) {
	dir := t.TempDir()
	recs, text := filepath.Join(dir, "recs.dat"), filepath.Join(dir, "corpus.txt")
	if _, err := execute(t, "gen", "records", "--count", "10", "--out", recs); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, "gen", "text", "--size", "4KiB", "--out", text); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{recs, text} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want -rw-r--r--", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

// A missing input is named without the place in Gale's sources where the
// sample job reads it.
func TestMissingInputNamesNoSourceLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nosuch.txt")
	_, err := execute(t, "run", "wordcount", "-q", "--input", missing, "--output", filepath.Join(t.TempDir(), "out"))
	if err == nil || !strings.Contains(err.Error(), "input "+missing+" does not exist") || strings.Contains(err.Error(), ".go:") {
		t.Errorf("gale run wordcount --input %s: %v; want it to say the input does not exist, naming no source file", missing, err)
	}
	var ie *gale.InputError
	if _, err := execute(t, "run", "wordcount", "-q", "--input", missing, "--input", missing+"2", "--output", filepath.Join(t.TempDir(), "out")); err != nil && errors.As(err, &ie) {
		t.Errorf("forCommandLine left an InputError: %v", err)
	}
}

// gale backends explains why a cloud's row and its sim: row differ.
func TestBackendsExplainsCloudAndSimRows(t *testing.T) {
	t.Setenv("GALE_CONFIG", "")
	t.Setenv("HOME", t.TempDir())
	out, err := execute(t, "backends")
	if err != nil {
		t.Fatal(err)
	}
	says := []string{"sim:*: the platforms as measured in October 2020", "2048 MiB", "without the CPU charge"}
	if len(gale.LinkedClouds()) > 0 {
		says = append(says, "aws 1769 MiB, the memory that buys one vCPU", "price per vCPU-second")
	}
	for _, s := range says {
		if !strings.Contains(out, s) {
			t.Errorf("gale backends does not say %q:\n%s", s, out)
		}
	}
}

// gale run kmeans needs neither --k nor --dim: generated data has
// defaults for both, and --input data its own width.
func TestKMeansDefaults(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out, err := execute(t, "run", "kmeans", "--points", "400", "--workers", "2", "--iterations", "2", "-q")
	if err != nil || !strings.Contains(out, "400 points × 4 coordinates, K = 8") {
		t.Errorf("gale run kmeans with defaults: %v\n%s", err, out)
	}
	points := filepath.Join(t.TempDir(), "points")
	if _, err := execute(t, "gen", "points", "--count", "300", "--dim", "3", "--k", "2", "--out", points); err != nil {
		t.Fatal(err)
	}
	out, err = execute(t, "run", "kmeans", "--k", "2", "--input", points, "--workers", "2", "--iterations", "2", "-q", "--mode", "local")
	if err != nil || !strings.Contains(out, "300 points × 3 coordinates, K = 2") {
		t.Errorf("gale run kmeans --input (3 coordinates) without --dim: %v\n%s", err, out)
	}
	_, err = execute(t, "run", "kmeans", "--k", "2", "--dim", "5", "--input", points, "--iterations", "1", "-q", "--mode", "local")
	if err == nil || !strings.Contains(err.Error(), "5") {
		t.Errorf("an explicit --dim 5 against 3-coordinate input: %v, want an error", err)
	}
}

// A cloud a slim build lacks comes with the one command that links it.
func TestLinkCommand(t *testing.T) {
	what, tag := notLinked(fmt.Errorf("opening: %w", &gale.NotLinkedError{Cloud: "aws", Tag: "gale_aws"}))
	if what != "aws" || tag != "gale_aws" {
		t.Fatalf("notLinked(a wrapped NotLinkedError) = %q, %q", what, tag)
	}
	if what, tag := notLinked(usageError{errPlotsNotLinked}); what != "the figures" || tag != "gale_plots" {
		t.Errorf("notLinked(--plots in a slim build) = %q, %q", what, tag)
	}
	args := []string{"run", "wordcount", "--input", "my books/*.txt", "--backend", "aws"}
	for _, c := range []struct{ root, wd, want string }{
		{"/src/gale", "/src/gale", `To run this with aws linked: go run -tags gale_slim,gale_aws ./cmd/gale run wordcount --input 'my books/*.txt' --backend aws`},
		{"/src/gale", "/src/gale/docs", `go run -tags gale_slim,gale_aws github.com/galeproject/gale/cmd/gale run wordcount`},
		{"", "/home/me", `To link aws, rebuild gale in Gale's source directory: go build -tags gale_slim,gale_aws -o gale ./cmd/gale`},
	} {
		if got := linkCommand(what, tag, c.root, c.wd, args); !strings.Contains(got, c.want) {
			t.Errorf("linkCommand in %s (checkout %q) = %q, want %q", c.wd, c.root, got, c.want)
		}
	}
}

// A bad backend fails before a sample corpus or dataset is generated.
func TestBadFlagsFailBeforeGenerating(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	for _, args := range [][]string{
		{"run", "wordcount", "--backend", "nosuch"},
		{"run", "kmeans", "--backend", "nosuch"},
		{"run", "logreg", "--shuffle", "nosuch"},
	} {
		out, err := execute(t, args...)
		wantUsageError(t, err, args)
		if _, serr := os.Stat(filepath.Join(home, "gale", "samples")); serr == nil || strings.Contains(out, "generating") {
			t.Errorf("gale %s generated a sample before failing:\n%s", strings.Join(args, " "), out)
		}
	}
}
