package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/galeproject/gale/beam/conformance/hook"
)

// SDKModule is the Beam Go SDK's module path.
const SDKModule = "github.com/apache/beam/sdks/v2"

// Suite is one package of the SDK whose tests run pipelines.
type Suite struct {
	// Name names the suite in the table ("primitives").
	Name string
	// Package is its import path.
	Package string
	// Skip is a regexp of tests never to run (-test.skip), with the
	// reason in SkipReason.
	Skip, SkipReason string
}

// Suites are the packages of Beam's Go SDK whose tests the harness runs:
// the integration primitives, wordcount and synthetic sources, and the
// pipeline tests of the SDK's core, IO, testing, transforms, debug and
// example packages.
var Suites = []Suite{
	{Name: "primitives", Package: SDKModule + "/go/test/integration/primitives",
		Skip: "^(TestOomParDo|TestDrain)$", SkipReason: "Dataflow-only tests that Beam skips on every other runner: " +
			"TestOomParDo allocates until its worker runs out of memory, TestDrain runs a never-ending splittable DoFn until the job is drained"},
	{Name: "wordcount", Package: SDKModule + "/go/test/integration/wordcount"},
	{Name: "synthetic", Package: SDKModule + "/go/test/integration/synthetic"},
	{Name: "beam", Package: SDKModule + "/go/pkg/beam"},
	{Name: "textio", Package: SDKModule + "/go/pkg/beam/io/textio"},
	{Name: "fileio", Package: SDKModule + "/go/pkg/beam/io/fileio"},
	{Name: "avroio", Package: SDKModule + "/go/pkg/beam/io/avroio"},
	{Name: "parquetio", Package: SDKModule + "/go/pkg/beam/io/parquetio"},
	{Name: "passert", Package: SDKModule + "/go/pkg/beam/testing/passert"},
	{Name: "stats", Package: SDKModule + "/go/pkg/beam/transforms/stats"},
	{Name: "top", Package: SDKModule + "/go/pkg/beam/transforms/top"},
	{Name: "filter", Package: SDKModule + "/go/pkg/beam/transforms/filter"},
	{Name: "batch", Package: SDKModule + "/go/pkg/beam/transforms/batch"},
	{Name: "periodic", Package: SDKModule + "/go/pkg/beam/transforms/periodic"},
	{Name: "debug", Package: SDKModule + "/go/pkg/beam/x/debug"},
	{Name: "snippets", Package: SDKModule + "/go/examples/snippets"},
}

// Fast names the suites `make test` runs.
var Fast = []string{"primitives"}

// SuitesNamed returns the suites with the given names, in Suites' order.
func SuitesNamed(names ...string) ([]Suite, error) {
	var out []Suite
	for _, s := range Suites {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	if len(out) != len(names) {
		var known []string
		for _, s := range Suites {
			known = append(known, s.Name)
		}
		return nil, fmt.Errorf("conformance: unknown suite among %q; the suites are %s", names, strings.Join(known, ", "))
	}
	return out, nil
}

// Runner is one column of the table: the flags that select it.
type Runner struct {
	Name string
	Args []string
	// Gale marks Gale's runners, whose failures Verdict judges.
	Gale bool
}

// Runners returns the three runners: Prism (unfiltered, see package
// hook), Gale on its local backend and Gale on its process backend.
// Tasks run at most workers at a time on Gale (0: the CPU count).
// Prism and Gale's local backend run their workers in the test's own
// process, which Beam's tests call loopback (--environment_type=LOOPBACK;
// TestParDoBundleFinalizer runs only then).
func Runners(workers int) []Runner {
	gale := []string{"--runner=gale", "--gale_report=false"}
	if workers > 0 {
		gale = append(gale, fmt.Sprintf("--gale_workers=%d", workers))
	}
	return []Runner{
		{Name: "prism", Args: []string{"--runner=" + hook.PrismRunner, "--environment_type=LOOPBACK"}},
		{Name: "gale local", Args: append(slices.Clone(gale), "--gale_backend=local", "--environment_type=LOOPBACK"), Gale: true},
		{Name: "gale process", Args: append(slices.Clone(gale), "--gale_backend=process"), Gale: true},
	}
}

// Outcome is a test's result on one runner.
type Outcome string

// Outcomes.
const (
	Pass     Outcome = "pass"
	Fail     Outcome = "fail"
	Skip     Outcome = "skip"
	Rejected Outcome = "rejected" // Gale refused the pipeline before any task ran
	NotRun   Outcome = "not run"  // the binary stopped (timeout, crash) before the test
)

// Result is a test's outcome on one runner and its one-line reason.
type Result struct {
	Outcome Outcome
	Detail  string
}

// Row is one test function.
type Row struct {
	Suite, Test string
	// Results by runner name.
	Results map[string]Result
}

// ID is "suite.Test", the key of Known.
func (r *Row) ID() string { return r.Suite + "." + r.Test }

// Table is the outcome of a run.
type Table struct {
	Runners []Runner
	Rows    []*Row
	// Excluded lists suites' tests never run, with the reason.
	Excluded []string
}

// Config configures Run.
type Config struct {
	// RepoRoot is the Gale checkout whose go.work joins its core and
	// beam modules. Required.
	RepoRoot string
	// WorkDir holds the scratch workspace and the test binaries. Default:
	// a new temporary directory, removed when Run returns.
	WorkDir string
	Suites  []Suite
	Runners []Runner
	// Timeout bounds one run of one test binary. Default 10 minutes.
	Timeout time.Duration
	// Log receives progress; default io.Discard.
	Log io.Writer
	// Go is the go command. Default "go".
	Go string
}

// Run builds and runs every suite on every runner.
func Run(ctx context.Context, cfg Config) (*Table, error) {
	if cfg.RepoRoot == "" {
		return nil, errors.New("conformance: Config.RepoRoot is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "gale-beam-conformance-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	ws, err := newWorkspace(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t := &Table{Runners: cfg.Runners}
	for _, s := range cfg.Suites {
		if s.Skip != "" {
			t.Excluded = append(t.Excluded, fmt.Sprintf("%s: %s (%s)", s.Name, s.Skip, s.SkipReason))
		}
		start := time.Now()
		bin, pkgDir, err := ws.build(ctx, s)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "conformance: built %s in %s\n", s.Name, time.Since(start).Round(time.Second))
		rows := map[string]*Row{}
		var ran []string // tests in which Prism executed a pipeline
		for _, r := range cfg.Runners {
			start := time.Now()
			res, executed, err := runBinary(ctx, cfg, bin, pkgDir, s, r)
			if err != nil {
				os.Remove(bin)
				return nil, err
			}
			fmt.Fprintf(cfg.Log, "conformance: ran %s on %s in %s\n", s.Name, r.Name, time.Since(start).Round(time.Second))
			if !r.Gale {
				ran = executed
			}
			for test, result := range res {
				row := rows[test]
				if row == nil {
					row = &Row{Suite: s.Name, Test: test, Results: map[string]Result{}}
					rows[test] = row
				}
				row.Results[r.Name] = result
			}
		}
		os.Remove(bin) // about 200 MB each
		slices.Sort(ran)
		for _, test := range slices.Compact(ran) {
			row := rows[test]
			for _, r := range cfg.Runners {
				if _, ok := row.Results[r.Name]; !ok {
					row.Results[r.Name] = Result{Outcome: NotRun, Detail: "the test binary stopped before this test"}
				}
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t, nil
}

// workspace is the scratch go.work in which the SDK module is a
// replaceable directory.
type workspace struct {
	cfg    Config
	gowork string
	sdk    string // the link to the SDK module's directory
	env    []string
}

func newWorkspace(ctx context.Context, cfg Config) (*workspace, error) {
	root, err := filepath.Abs(cfg.RepoRoot)
	if err != nil {
		return nil, err
	}
	goLine, err := goVersionLine(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	mod, err := output(ctx, exec.CommandContext(ctx, cfg.Go, "list", "-m", "-f", "{{.Dir}} {{.Version}}", SDKModule), filepath.Join(root, "beam"), nil)
	if err != nil {
		return nil, fmt.Errorf("conformance: locating the Beam SDK module: %w", err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(mod), " ")
	if !ok || dir == "" || version == "" {
		return nil, fmt.Errorf("conformance: go list -m %s printed %q, want its directory and version", SDKModule, mod)
	}
	ws := &workspace{cfg: cfg, gowork: filepath.Join(cfg.WorkDir, "go.work")}
	if ws.sdk, err = sdkLink(dir, version); err != nil {
		return nil, err
	}
	work := fmt.Sprintf("%s\n\nuse (\n\t%s\n\t%s\n)\n\nreplace %s %s => %s\n", goLine, root, filepath.Join(root, "beam"), SDKModule, version, ws.sdk)
	if err := os.WriteFile(ws.gowork, []byte(work), 0o644); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	ws.env = append(os.Environ(), "GOWORK="+ws.gowork, "GOFLAGS=-buildvcs=false")
	return ws, nil
}

// sdkLink returns a symbolic link to the SDK module's directory at a path
// that stays the same from run to run (in the user's cache directory):
// the go command's build cache keys compiled packages by their directory,
// so a new path would compile the SDK anew each time.
func sdkLink(dir, version string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	link := filepath.Join(cache, "gale", "beam-conformance", "sdk-"+version)
	if target, err := os.Readlink(link); err == nil && target == dir {
		return link, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	// Another run may make the same link at the same time: make it under a
	// private name and rename it into place.
	tmp, err := os.MkdirTemp(filepath.Dir(link), "link-")
	if err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Symlink(dir, filepath.Join(tmp, "sdk")); err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	_ = os.Remove(link)
	if err := os.Rename(filepath.Join(tmp, "sdk"), link); err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	return link, nil
}

// goVersionLine returns the go directive of a go.work file.
func goVersionLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("conformance: the repository root must hold Gale's go.work: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "go ") {
			return strings.TrimSpace(l), nil
		}
	}
	return "", fmt.Errorf("conformance: %s has no go directive", path)
}

// build compiles a suite's test binary with the hook file added and
// returns it and the package's directory.
func (ws *workspace) build(ctx context.Context, s Suite) (bin, pkgDir string, err error) {
	rel, ok := strings.CutPrefix(s.Package, SDKModule+"/")
	if !ok {
		return "", "", fmt.Errorf("conformance: suite %s: package %s is not in the SDK module", s.Name, s.Package)
	}
	pkgDir = filepath.Join(ws.sdk, filepath.FromSlash(rel))
	name, err := output(ctx, exec.CommandContext(ctx, ws.cfg.Go, "list", "-f", "{{.Name}}", s.Package), filepath.Join(ws.cfg.RepoRoot, "beam"), ws.env)
	if err != nil {
		return "", "", fmt.Errorf("conformance: suite %s: %w", s.Name, err)
	}
	hookFile := filepath.Join(ws.cfg.WorkDir, s.Name+"_hook_test.go")
	src := fmt.Sprintf("package %s_test\n\n// Added by Gale's conformance harness: --runner=gale and Prism unfiltered.\nimport _ %q\n",
		strings.TrimSpace(name), "github.com/galeproject/gale/beam/conformance/hook")
	if err := os.WriteFile(hookFile, []byte(src), 0o644); err != nil {
		return "", "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkgDir, "zz_gale_conformance_test.go"): hookFile}})
	if err != nil {
		return "", "", err
	}
	ovFile := filepath.Join(ws.cfg.WorkDir, s.Name+"_overlay.json")
	if err := os.WriteFile(ovFile, overlay, 0o644); err != nil {
		return "", "", err
	}
	bin = filepath.Join(ws.cfg.WorkDir, s.Name+".test")
	cmd := exec.CommandContext(ctx, ws.cfg.Go, "test", "-c", "-o", bin, "-overlay", ovFile, s.Package)
	if _, err := output(ctx, cmd, filepath.Join(ws.cfg.RepoRoot, "beam"), ws.env); err != nil {
		return "", "", fmt.Errorf("conformance: building the tests of %s: %w", s.Package, err)
	}
	return bin, pkgDir, nil
}

// output runs cmd in dir and returns its standard output, or an error
// with its standard error.
func output(ctx context.Context, cmd *exec.Cmd, dir string, env []string) (string, error) {
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return string(out), nil
}

// event is one test2json event.
type event struct {
	Action string
	Test   string
	Output string
}

// runBinary runs a suite's binary on one runner and returns the result
// of every top-level test and the tests in which Prism executed a
// pipeline.
func runBinary(ctx context.Context, cfg Config, bin, pkgDir string, s Suite, r Runner) (map[string]Result, []string, error) {
	args := []string{"tool", "test2json", "-p", s.Name, bin, "-test.v=test2json", "-test.timeout=" + cfg.Timeout.String()}
	if s.Skip != "" {
		args = append(args, "-test.skip="+s.Skip)
	}
	args = append(args, r.Args...)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.Go, args...)
	cmd.Dir = pkgDir
	cmd.Env = os.Environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("conformance: running %s: %w", bin, err)
	}
	results, executed, finished, perr := parse(out)
	werr := cmd.Wait()
	if perr != nil {
		return nil, nil, fmt.Errorf("conformance: reading the output of %s on %s: %w", s.Name, r.Name, perr)
	}
	// A test binary exits with 0 when all passed and 1 when some failed;
	// anything else (a panic, the timeout, a signal) ends it early.
	var exit *exec.ExitError
	if werr != nil && (!errors.As(werr, &exit) || exit.ExitCode() != 1) {
		finished = false
	}
	if !finished {
		return nil, nil, fmt.Errorf("conformance: the tests of %s on %s did not finish (%v); they ran %d test(s)\n%s",
			s.Name, r.Name, werr, len(results), stderr.String())
	}
	return results, executed, nil
}

// parse reads a test2json stream. finished reports whether the binary
// reported its overall outcome (it did not crash or get killed).
func parse(r io.Reader) (results map[string]Result, executed []string, finished bool, err error) {
	results = map[string]Result{}
	outputs := map[string]*strings.Builder{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a line the test printed outside test2json's framing
		}
		top, _, sub := strings.Cut(e.Test, "/")
		if top == "" {
			if e.Action == "pass" || e.Action == "fail" {
				finished = true
			}
			continue
		}
		switch e.Action {
		case "output":
			if outputs[top] == nil {
				outputs[top] = &strings.Builder{}
			}
			outputs[top].WriteString(e.Output)
			if strings.Contains(e.Output, hook.Marker) {
				executed = append(executed, top)
			}
		case "pass", "fail", "skip":
			if sub {
				continue
			}
			var text string
			if b := outputs[top]; b != nil {
				text = b.String()
			}
			results[top] = classify(Outcome(e.Action), text)
		}
	}
	return results, executed, finished, sc.Err()
}

var (
	rejectedRe = regexp.MustCompile(`beam pipeline uses features Gale does not run:\s*\n\s*- ([^\n]*)`)
	skipRe     = regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: (.*)$`)
	failRe     = regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: (.*)$|^panic: (.*)$`)
)

// classify turns a test's outcome and output into a Result with a
// one-line reason.
func classify(o Outcome, output string) Result {
	switch o {
	case Pass:
		return Result{Outcome: Pass}
	case Skip:
		if m := skipRe.FindStringSubmatch(output); m != nil {
			return Result{Outcome: Skip, Detail: oneLine(m[1])}
		}
		return Result{Outcome: Skip}
	}
	if m := rejectedRe.FindStringSubmatch(output); m != nil {
		return Result{Outcome: Rejected, Detail: oneLine(m[1])}
	}
	if m := failRe.FindStringSubmatch(output); m != nil {
		return Result{Outcome: Fail, Detail: oneLine(m[1] + m[2])}
	}
	return Result{Outcome: Fail}
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
