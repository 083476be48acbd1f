package main

// TestDocCommands runs the commands of README.md and docs/*.md as a user
// would, so that every one of them keeps working as written.
//
// # Which commands, and how to mark them
//
// A fenced block whose language is sh, bash, shell or console holds
// commands, one per line (a trailing "# comment" is fine). In a console
// block only lines starting with "$ " are commands; the lines after one
// are what it must print (see "Expected output"). By default the commands
// of a block are run; an HTML comment on the line just before the fence
// says otherwise:
//
//	<!-- doc-commands: cloud -->     needs a cloud account, a deployed function or
//	                                 the user's own program: not run; every gale
//	                                 command line in it is checked (the subcommand
//	                                 exists and takes the flags given)
//	<!-- doc-commands: long -->      long-running (benchmarks, make test): not run;
//	                                 gale lines checked as above, go run ./PKG must
//	                                 name a main package, a script must exist, make
//	                                 targets must be known
//	<!-- doc-commands: server -->    runs until interrupted: started, must still be
//	                                 running after serverGrace, then interrupted and
//	                                 must exit with status 0 or 130 (a fixed
//	                                 127.0.0.1:PORT is moved to port 0)
//	<!-- doc-commands: synopsis -->  a usage summary with placeholders (JOB,
//	                                 [--flag ...], a|b): every gale subcommand and
//	                                 --flag named must exist
//	<!-- doc-file: PATH -->          before a block of any language: the block is
//	                                 written to PATH, for the commands after it
//
// A fenced block of another language (or none) is not run, but one whose
// lines start with "gale " or "go run " must be marked, so that no command
// escapes the test; inline code spans that start with "gale " are checked
// as synopses.
//
// # How runnable commands run
//
// The commands of one file run in order, through bash, in a scratch
// directory of their own (a "cd" carries over to the next command), with
// Gale's cache directory inside it and an empty config file. "gale" is
// the slim gale command; "go run [-tags T] ./PKG" with PKG a package of
// this repository is that package built once with those tags. The scratch
// directory holds the user's own files the docs refer to (docFixtures),
// and placeholders are replaced (docPlaceholders). Sizes are made small:
// docSmallValues replaces the values of size flags, and docSmallExtra adds
// flags to commands that would otherwise generate large samples. A "make
// TARGET" line is only dry-run (make -n) in the repository: make test is
// what runs this test.
//
// # Expected output
//
// In a console block, each line after a "$ " command must appear in its
// output (stdout and stderr), in order, with runs of spaces taken as one;
// "…" in a line stands for any text within that output line.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Block kinds (see TestDocCommands).
const (
	kindRun      = "run"
	kindCloud    = "cloud"
	kindLong     = "long"
	kindServer   = "server"
	kindSynopsis = "synopsis"
)

// docSmallValues are the values size flags of runnable commands are set to.
var docSmallValues = map[string]string{
	"--size":        "1MiB",
	"--count":       "20000",
	"--points":      "2000",
	"--invocations": "4",
	"-n":            "4",
	"--duration":    "100ms",
}

// docSmallExtra adds flags to a runnable gale command (by its subcommand
// path) that sets none of the flags named in unless.
var docSmallExtra = []struct {
	path   string
	unless []string
	add    []string
}{
	{"run wordcount", []string{"--input", "--sample-size"}, []string{"--sample-size", "1MiB"}},
	{"plan wordcount", []string{"--input", "--sample-size"}, []string{"--sample-size", "1MiB"}},
	{"run kmeans", []string{"--input", "--points"}, []string{"--points", "2000"}},
	{"run logreg", []string{"--input", "--points"}, []string{"--points", "2000"}},
	{"run beam-wordcount", []string{"--input", "--size"}, []string{"--size", "1048576"}},
	{"run mandelbrot", []string{"--width", "--height"}, []string{"--width", "96", "--height", "64"}},
}

// docFixtures are the user's own files the docs' commands read.
var docFixtures = map[string]string{
	"books/alice.txt":  "Alice was beginning to get very tired of sitting by her sister on the bank.\n",
	"books/hamlet.txt": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n",
	"logs/a.txt":       "2026-12-07 b started\n2026-12-07 a started\n",
	"logs/b.txt":       "2026-12-06 c stopped\n",
}

// docPlaceholders are replaced in runnable commands and written files.
func docPlaceholders(root string) map[string]string {
	return map[string]string{"/path/to/gale": root}
}

// serverGrace is how long a server block's command must keep running.
const serverGrace = 3 * time.Second

// docCommandTimeout bounds one runnable command.
const docCommandTimeout = 5 * time.Minute

func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gale binary and runs the docs' commands")
	}
	t.Parallel() // runs gale processes; sets no environment
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "README.md")}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, docs...)
	env := newDocEnv(t, root)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			doc, err := parseDoc(f, rel)
			if err != nil {
				t.Fatal(err)
			}
			env.runDoc(t, doc)
		})
	}
}

// docCommand is one command line of a doc.
type docCommand struct {
	file   string // as shown in messages, relative to the repository
	line   int
	text   string // without its trailing comment
	kind   string
	expect []string // console output lines it must print
}

func (c docCommand) where() string { return fmt.Sprintf("%s:%d", c.file, c.line) }

// docStep is a command or a file to write, in document order.
type docStep struct {
	cmd      *docCommand
	filePath string // doc-file
	fileText string
	line     int
}

// docFile is a parsed Markdown file.
type docFile struct {
	name    string
	steps   []docStep
	inline  []docCommand // inline gale spans, checked as synopses
	unmarks []string     // unmarked blocks that hold commands
}

var (
	markRE   = regexp.MustCompile(`^<!--\s*doc-(commands|file):\s*(\S+)\s*-->\s*$`)
	inlineRE = regexp.MustCompile("`(gale [^`]+)`")
)

// parseDoc reads the blocks and inline commands of a Markdown file.
func parseDoc(path, name string) (*docFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc := &docFile{name: name}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		fence, ok := strings.CutPrefix(line, "```")
		if !ok {
			for _, m := range inlineRE.FindAllStringSubmatch(line, -1) {
				doc.inline = append(doc.inline, docCommand{file: name, line: i + 1, text: m[1], kind: kindSynopsis})
			}
			continue
		}
		lang := strings.TrimSpace(fence)
		var mark, file string
		if i > 0 {
			if m := markRE.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
				if m[1] == "file" {
					file = m[2]
				} else {
					mark = m[2]
				}
			}
		}
		start := i + 1 // the fence's line
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("%s:%d: code block not closed", name, start)
		}
		if file != "" {
			doc.steps = append(doc.steps, docStep{filePath: file, fileText: strings.Join(body, "\n") + "\n", line: start})
			continue
		}
		shell := lang == "sh" || lang == "bash" || lang == "shell" || lang == "console"
		if !shell {
			if mark == "" && slices.ContainsFunc(body, looksLikeCommand) {
				doc.unmarks = append(doc.unmarks, fmt.Sprintf("%s:%d", name, start))
			}
			if mark == "" {
				continue
			}
		}
		kind := cmp(mark, kindRun)
		switch kind {
		case kindRun, kindCloud, kindLong, kindServer, kindSynopsis:
		default:
			return nil, fmt.Errorf("%s:%d: unknown mark doc-commands: %s (want cloud, long, server or synopsis; none to run the block)", name, start-1, mark)
		}
		var last *docCommand
		for j, l := range body {
			if lang == "console" {
				if c, ok := strings.CutPrefix(l, "$ "); ok {
					doc.steps = append(doc.steps, docStep{cmd: &docCommand{file: name, line: start + j + 1, text: stripComment(c), kind: kind}})
					last = doc.steps[len(doc.steps)-1].cmd
				} else if last != nil && strings.TrimSpace(l) != "" {
					last.expect = append(last.expect, l)
				}
				continue
			}
			if c := stripComment(l); c != "" {
				doc.steps = append(doc.steps, docStep{cmd: &docCommand{file: name, line: start + j + 1, text: c, kind: kind}})
			}
		}
	}
	return doc, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// looksLikeCommand reports whether a line of an unmarked block reads as a
// command.
func looksLikeCommand(l string) bool {
	l = strings.TrimPrefix(strings.TrimSpace(l), "$ ")
	return strings.HasPrefix(l, "gale ") || strings.HasPrefix(l, "go run ")
}

// stripComment removes a trailing "# comment" outside quotes, and spaces.
func stripComment(l string) string {
	var q rune
	for i, r := range l {
		switch {
		case q != 0:
			if r == q {
				q = 0
			}
		case r == '\'' || r == '"':
			q = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return strings.TrimSpace(l[:i])
		}
	}
	return strings.TrimSpace(l)
}

// docEnv is what the commands of every doc share: the built programs.
type docEnv struct {
	root    string
	galeBin string // directory holding the slim gale as "gale"
	gocache string

	mu     sync.Mutex
	builds map[string]*galeBuild // by tags + package
}

func newDocEnv(t *testing.T, root string) *docEnv {
	// A copy of the slim gale, with the beam-wordcount it runs beside it
	// (gale finds it there; the scratch directories are not checkouts
	// to build it in).
	dir := t.TempDir()
	b, err := os.ReadFile(buildGaleTags(t, "gale_slim"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "gale"), b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command(goTool(), "build", "-o", filepath.Join(dir, beamWordCount), "./"+beamWordCountSrc)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", beamWordCountSrc, err, out)
	}
	out, err := exec.Command(goTool(), "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	return &docEnv{root: root, galeBin: dir, gocache: strings.TrimSpace(string(out)), builds: map[string]*galeBuild{}}
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err != nil {
		return "go"
	}
	return g
}

// build returns pkg (a directory of the repository, "./cmd/gale") built
// with tags, once.
func (e *docEnv) build(t *testing.T, pkg, tags string) string {
	if filepath.Clean(pkg) == "cmd/gale" {
		if tags == "gale_slim" {
			return filepath.Join(e.galeBin, "gale")
		}
		return buildGaleTags(t, tags)
	}
	if filepath.Clean(pkg) == beamWordCountSrc && tags == "" {
		return filepath.Join(e.galeBin, beamWordCount)
	}
	e.mu.Lock()
	b := e.builds[tags+" "+pkg]
	if b == nil {
		b = &galeBuild{}
		e.builds[tags+" "+pkg] = b
	}
	e.mu.Unlock()
	b.once.Do(func() {
		b.bin = filepath.Join(galeBuildsDir(), strings.ReplaceAll(filepath.Clean(pkg), "/", "_")+"-"+strings.ReplaceAll(tags, ",", "-"))
		args := []string{"build", "-o", b.bin}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command(goTool(), append(args, "./"+filepath.Clean(pkg))...)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %q ./%s: %v\n%s", tags, pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// docRun is the state of one file's runnable commands.
type docRun struct {
	env     *docEnv
	scratch string
	cwd     string
	vars    []string
}

func (e *docEnv) runDoc(t *testing.T, doc *docFile) {
	for _, u := range doc.unmarks {
		t.Errorf("%s: a code block that is not sh, bash, shell or console holds commands; make it one, or mark it (<!-- doc-commands: synopsis -->, ...; see TestDocCommands in cmd/gale/doccmd_test.go)", u)
	}
	for _, c := range doc.inline {
		e.checkLine(t, c)
	}
	var r *docRun
	for _, s := range doc.steps {
		if r == nil && (s.cmd == nil || s.cmd.kind == kindRun || s.cmd.kind == kindServer) {
			r = e.newRun(t)
		}
		switch {
		case s.cmd == nil:
			text := s.fileText
			for k, v := range docPlaceholders(e.root) {
				text = strings.ReplaceAll(text, k, v)
			}
			p := filepath.Join(r.cwd, s.filePath)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatalf("%s:%d: writing %s: %v", doc.name, s.line, s.filePath, err)
			}
		case s.cmd.kind == kindRun && strings.HasPrefix(s.cmd.text, "make "):
			e.checkLine(t, *s.cmd)
		case s.cmd.kind == kindRun:
			if !r.run(t, *s.cmd) {
				return // later commands depend on this one
			}
		case s.cmd.kind == kindServer:
			r.serve(t, *s.cmd)
		default:
			e.checkLine(t, *s.cmd)
		}
	}
}

func (e *docEnv) newRun(t *testing.T) *docRun {
	scratch := t.TempDir()
	for p, text := range docFixtures {
		p = filepath.Join(scratch, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(scratch, ".gale-config.yaml")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vars := append(os.Environ(),
		"PATH="+e.galeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		// Gale's cache directory comes from XDG_CACHE_HOME, and so does
		// the go command's build cache, unless it is named.
		"GOCACHE="+e.gocache,
		"XDG_CACHE_HOME="+filepath.Join(scratch, ".cache"),
		"GALE_CONFIG="+conf,
		"TMPDIR="+t.TempDir())
	return &docRun{env: e, scratch: scratch, cwd: scratch, vars: vars}
}

// fixedPortRE matches a loopback address with a fixed port, which a
// server command is moved off (to port 0).
var fixedPortRE = regexp.MustCompile(`\b(127\.0\.0\.1:)[0-9]+\b`)

var goRunRE = regexp.MustCompile(`^go run((?:\s+-tags[ =]\S+)?)\s+(\./\S+)`)

// rewrite returns the command line as it runs: programs built, sizes made
// small, placeholders replaced.
func (r *docRun) rewrite(t *testing.T, c docCommand) string {
	text := c.text
	for k, v := range docPlaceholders(r.env.root) {
		text = strings.ReplaceAll(text, k, v)
	}
	if m := goRunRE.FindStringSubmatch(text); m != nil {
		pkg := filepath.Clean(m[2])
		if _, err := os.Stat(filepath.Join(r.env.root, pkg)); err == nil && !pathExists(filepath.Join(r.cwd, pkg)) {
			tags := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(m[1]), "-tags"))
			tags = strings.TrimPrefix(tags, "=")
			text = r.env.build(t, pkg, tags) + text[len(m[0]):]
		}
	}
	fields := strings.Fields(text)
	for i := 0; i+1 < len(fields); i++ {
		if v, ok := docSmallValues[fields[i]]; ok {
			fields[i+1] = v
		}
		if name, _, ok := strings.Cut(fields[i], "="); ok {
			if v, ok := docSmallValues[name]; ok {
				fields[i] = name + "=" + v
			}
		}
	}
	if path := galePath(fields); path != "" && !strings.ContainsAny(text, "|&;<>") {
		for _, x := range docSmallExtra {
			if x.path == path && !slices.ContainsFunc(fields, func(f string) bool {
				name, _, _ := strings.Cut(f, "=")
				return slices.Contains(x.unless, name)
			}) {
				fields = append(fields, x.add...)
			}
		}
	}
	text = strings.Join(fields, " ")
	if c.kind == kindServer {
		text = fixedPortRE.ReplaceAllString(text, "${1}0")
	}
	return text
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// galePath returns the subcommand path ("run wordcount") of a gale command
// line, or "".
func galePath(fields []string) string {
	if len(fields) == 0 || filepath.Base(fields[0]) != "gale" && !strings.HasPrefix(filepath.Base(fields[0]), "gale-") {
		return ""
	}
	var path []string
	for _, f := range fields[1:] {
		if strings.HasPrefix(f, "-") {
			break
		}
		path = append(path, f)
		if len(path) == 2 {
			break
		}
	}
	return strings.Join(path, " ")
}

// command returns an exec.Cmd that runs text through bash in the run's
// directory, recording the directory it ends in to pwdFile.
func (r *docRun) command(ctx context.Context, text, pwdFile string) *exec.Cmd {
	script := "set -o pipefail\n" + text + "\n__rc=$?\npwd >" + shellQuote(pwdFile) + "\nexit $__rc\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = r.cwd, r.vars
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs a runnable command and reports whether it succeeded.
func (r *docRun) run(t *testing.T, c docCommand) bool {
	t.Helper()
	text := r.rewrite(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), docCommandTimeout)
	defer cancel()
	pwdFile := filepath.Join(r.scratch, ".pwd")
	cmd := r.command(ctx, text, pwdFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start).Round(100 * time.Millisecond)
	if b, perr := os.ReadFile(pwdFile); perr == nil {
		r.cwd = strings.TrimSpace(string(b))
	}
	if err != nil {
		t.Errorf("%s: `%s` failed (%v) after %s, run as\n\t%s\n%s\n(a command that cannot run here must be marked: see TestDocCommands in cmd/gale/doccmd_test.go)",
			c.where(), c.text, err, d, text, tail(out.String(), 40))
		return false
	}
	t.Logf("%s: `%s` (%s)", c.where(), c.text, d)
	if missing := missingOutput(out.String(), c.expect); missing != "" {
		t.Errorf("%s: `%s` did not print %q (in the order the doc shows); it printed:\n%s", c.where(), c.text, missing, tail(out.String(), 60))
	}
	return true
}

// serve starts a server command, checks it keeps running, and stops it.
func (r *docRun) serve(t *testing.T, c docCommand) {
	t.Helper()
	text := r.rewrite(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := r.command(ctx, "exec "+text, filepath.Join(r.scratch, ".pwd"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Errorf("%s: `%s` (a server) ended within %s (%v), run as\n\t%s\n%s", c.where(), c.text, serverGrace, err, text, tail(out.String(), 40))
		return
	case <-time.After(serverGrace):
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 130) {
			t.Errorf("%s: `%s` (a server) did not exit cleanly when interrupted: %v\n%s", c.where(), c.text, err, tail(out.String(), 40))
		} else {
			t.Logf("%s: `%s` (served %s, stopped by an interrupt)", c.where(), c.text, serverGrace)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: `%s` (a server) did not stop within 30 s of an interrupt", c.where(), c.text)
	}
}

// missingOutput returns the first expected line that the output lacks,
// or "".
func missingOutput(out string, expect []string) string {
	lines := strings.Split(out, "\n")
	i := 0
	for _, want := range expect {
		parts := strings.Split(strings.Join(strings.Fields(want), " "), "…")
		found := false
		for ; i < len(lines); i++ {
			if containsInOrder(strings.Join(strings.Fields(lines[i]), " "), parts) {
				found = true
				i++
				break
			}
		}
		if !found {
			return want
		}
	}
	return ""
}

func containsInOrder(s string, parts []string) bool {
	for _, p := range parts {
		p = strings.TrimSpace(p)
		k := strings.Index(s, p)
		if k < 0 {
			return false
		}
		s = s[k+len(p):]
	}
	return true
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// checkLine checks a command that is not run: its gale command line
// against the command tree, or that the program it names exists.
func (e *docEnv) checkLine(t *testing.T, c docCommand) {
	t.Helper()
	fields := strings.Fields(c.text)
	for len(fields) > 0 && strings.Contains(fields[0], "=") && !strings.HasPrefix(fields[0], "-") {
		fields = fields[1:] // VAR=value
	}
	if len(fields) == 0 {
		return
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: `%s`: %s (see TestDocCommands in cmd/gale/doccmd_test.go for how commands are marked)", c.where(), c.text, fmt.Sprintf(format, args...))
	}
	switch {
	case fields[0] == "gale":
		e.checkGale(fail, c.kind, fields[1:])
	case fields[0] == "go" && len(fields) > 2 && fields[1] == "run":
		if m := goRunRE.FindStringSubmatch(strings.Join(fields, " ")); m != nil {
			pkg := filepath.Clean(m[2])
			rest := strings.Fields(strings.Join(fields, " ")[len(m[0]):])
			if pkg == "cmd/gale" {
				e.checkGale(fail, c.kind, rest)
				return
			}
			out, err := exec.Command(goTool(), "list", "-C", e.root, "-f", "{{.Name}}", "./"+pkg).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "main" {
				fail("./%s is not a main package of this repository: %s", pkg, strings.TrimSpace(string(out)))
			}
		}
	case fields[0] == "make" && len(fields) > 1:
		if out, err := exec.Command("make", "-n", "-C", e.root, fields[1]).CombinedOutput(); err != nil {
			fail("make has no target %s: %s", fields[1], out)
		}
	case strings.Contains(fields[0], "/"):
		if !pathExists(filepath.Join(e.root, fields[0])) {
			fail("%s does not exist", fields[0])
		}
	}
}

var placeholderRE = regexp.MustCompile(`^[A-Z][A-Z0-9_.]*$`)

// checkGale checks a gale command line against the command tree: the
// subcommand must exist, and (unless the line is a synopsis) its flags
// parse; in a synopsis, placeholders are skipped and every --flag named
// must exist on the command (or, after a placeholder for a subcommand, on
// one of its subcommands).
func (e *docEnv) checkGale(fail func(string, ...any), kind string, args []string) {
	root := newRootCmd()
	if kind != kindSynopsis {
		cmd, rest, err := root.Find(args)
		if err != nil {
			fail("%v", err)
			return
		}
		if cmd.HasSubCommands() && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			fail("%q has no subcommand %q", cmd.CommandPath(), rest[0])
			return
		}
		if cmd.DisableFlagParsing {
			return
		}
		cmd.InitDefaultHelpFlag()
		if err := cmd.ParseFlags(rest); err != nil {
			fail("%s: %v", cmd.CommandPath(), err)
		}
		return
	}
	cmd := root
	var flags []string
	sawPlaceholder := false
	for _, a := range args {
		a = strings.Trim(a, "[]()`,.")
		switch {
		case strings.HasPrefix(a, "--"):
			name, _, _ := strings.Cut(a[2:], "=")
			flags = append(flags, name)
		case strings.HasPrefix(a, "-"), a == "", a == "...":
		case !sawPlaceholder && len(flags) == 0 && !strings.ContainsAny(a, "|/:*<>") && !placeholderRE.MatchString(a):
			sub, _, err := cmd.Find([]string{a})
			if err != nil || sub == cmd {
				if cmd.HasSubCommands() {
					fail("%q has no subcommand %q", cmd.CommandPath(), a)
					return
				}
				continue // an argument
			}
			cmd = sub
		default:
			if (placeholderRE.MatchString(a) || strings.HasPrefix(a, "<")) && len(flags) == 0 && cmd.HasSubCommands() {
				sawPlaceholder = true
			}
		}
	}
	// A flag named after a group (gale run --backend, gale run JOB
	// --backend) is one of its subcommands' flags.
	candidates := append([]*cobra.Command{cmd}, cmd.Commands()...)
	for _, name := range flags {
		if !slices.ContainsFunc(candidates, func(c *cobra.Command) bool { return hasFlag(c, name) }) {
			fail("%s has no flag --%s", cmd.CommandPath(), name)
		}
	}
}

func hasFlag(c *cobra.Command, name string) bool {
	if c.DisableFlagParsing || name == "help" {
		return true // passes its flags on
	}
	var fs []*pflag.FlagSet
	fs = append(fs, c.Flags(), c.InheritedFlags())
	for _, f := range fs {
		if f.Lookup(name) != nil {
			return true
		}
	}
	return false
}

// parseDoc finds each block's commands with their kind and line, files to
// write, expected output and inline commands, and names the unmarked
// block that holds commands.
func TestParseDoc(t *testing.T) {
	doc, err := parseDoc("testdata/doccmd/marks.md", "marks.md")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range doc.steps {
		if s.cmd == nil {
			got = append(got, fmt.Sprintf("file %s:%d %s %q", doc.name, s.line, s.filePath, s.fileText))
			continue
		}
		got = append(got, fmt.Sprintf("%s %s `%s` expect %q", s.cmd.kind, s.cmd.where(), s.cmd.text, s.cmd.expect))
	}
	want := []string{
		"run marks.md:4 `gale run wordcount --size 1GiB` expect []",
		"cloud marks.md:9 `gale run wordcount --backend aws` expect []",
		`file marks.md:17 data/in.txt "hello\n"`,
		"run marks.md:22 `gale run wordcount --input data/in.txt` expect [\"job job-… on local: …\" \"hello 1\"]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(doc.unmarks) != 1 || doc.unmarks[0] != "marks.md:12" {
		t.Errorf("unmarked command blocks %v, want [marks.md:12]", doc.unmarks)
	}
	if len(doc.inline) != 1 || doc.inline[0].text != "gale run --backend" || doc.inline[0].line != 27 {
		t.Errorf("inline commands %+v, want gale run --backend on line 27", doc.inline)
	}
	if m := missingOutput("job job-1a on local: 3s\nother\nhello   1\n", []string{"job job-… on local: …", "hello 1"}); m != "" {
		t.Errorf("missingOutput: %q missing, want none", m)
	}
	if m := missingOutput("hello 1\njob job-1a on local: 3s\n", []string{"job job-… on local: …", "hello 1"}); m != "hello 1" {
		t.Errorf("missingOutput of lines out of order: %q, want \"hello 1\"", m)
	}
}
