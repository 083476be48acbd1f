package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/internal/cache"
)

// beamWordCount is the Beam wordcount program `gale run beam-wordcount`
// runs: Apache Beam's Go wordcount submitted with --runner=gale. It lives
// in Gale's beam module (github.com/galeproject/gale/beam), not here:
// linking the Beam SDK into cmd/gale would make Gale's core build depend on
// Beam's very large dependency tree, so gale runs it as a separate binary.
const (
	beamWordCount        = "beam-wordcount"
	beamWordCountPkg     = "github.com/galeproject/gale/beam/cmd/beam-wordcount"
	beamWordCountSrc     = "beam/cmd/beam-wordcount"
	beamWordCountInstall = "go install " + beamWordCountPkg + "@latest"
)

// errNoBeamWordCount is returned when neither a beam-wordcount binary nor
// a Gale source tree to build one from is found.
var errNoBeamWordCount = errors.New("beam-wordcount not found")

// beamFlagMap maps gale run's own flags to the Beam runner's.
var beamFlagMap = map[string]string{
	"--backend":       "--gale_backend",
	"--workers":       "--gale_workers",
	"--partitions":    "--gale_partitions",
	"--worker-memory": "--gale_worker_memory",
	"--events":        "--gale_events",
	"--speculation":   "--gale_speculation",
	"--task-timeout":  "--gale_task_timeout",
}

// beamUIFlags map gale run's dashboard flags, whose value is optional, to
// the runner's.
var beamUIFlags = map[string]string{
	"--ui":      "--gale_ui",
	"--ui-wait": "--gale_ui_wait",
}

func newRunBeamWordCountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "beam-wordcount [--input GLOB] [--output FILE] [--backend NAME] [--workers N] [flags of beam-wordcount]",
		Short: "Run Apache Beam's Go wordcount on Gale (--runner=gale), as a separate beam-wordcount binary",
		Long: `Runs Apache Beam's Go wordcount pipeline, unchanged, with --runner=gale.

The pipeline is its own program, beam-wordcount (Gale's core build does not
link the Beam SDK). gale looks for it, in this order: --binary; next to the
gale binary; in a Gale source checkout (a go.work above the current
directory, else above the gale binary), where go install builds it into gale's cache directory (a
no-op when the sources have not changed); on PATH.

gale's own flags map onto the runner's: --backend to --gale_backend,
--workers to --gale_workers, --partitions to --gale_partitions,
--worker-memory to --gale_worker_memory, --events to --gale_events,
--speculation to --gale_speculation, --task-timeout to
--gale_task_timeout, --ui[=ADDR] to --gale_ui[=ADDR] (the dashboard stays up after the job
until Ctrl-C, as with gale run, unless --ui-wait=false). Every other
flag (--input, --output, --size, --top, --runner, --gale_temp,
--gale_report, ...) goes to beam-wordcount unchanged; so does everything
after "--". Backends: local, process, aws, gcp, azure, ibm (the cloud ones
read the same config file as gale run; see docs/beam.md).

beam-wordcount's own flags: gale run beam-wordcount -- --help`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			binary, pass, help := beamArgs(args)
			if help {
				return cmd.Help()
			}
			bin, err := findBeamWordCount(cmd, binary)
			if err != nil {
				return err
			}
			return runBeamWordCount(cmd, bin, pass)
		},
	}
	return cmd
}

// beamArgs splits the command line: --binary for gale, gale's flags
// mapped to the runner's, the rest passed through; help reports -h or
// --help before any "--".
func beamArgs(args []string) (binary string, pass []string, help bool) {
	ui, wait := false, false
	defer func() {
		if ui && !wait {
			pass = append(pass, "--gale_ui_wait")
		}
	}()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pass = append(pass, args[i+1:]...)
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case a == "-h" || a == "--help":
			help = true
		case name == "--binary":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			binary = value
		case beamUIFlags[name] != "":
			pass = append(pass, beamUIFlags[name]+strings.TrimPrefix(a, name))
			ui = ui || name == "--ui"
			wait = wait || name == "--ui-wait"
		case beamFlagMap[name] != "":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			pass = append(pass, beamFlagMap[name]+"="+value)
		default:
			pass = append(pass, a)
		}
	}
	return binary, pass, help
}

// findBeamWordCount returns the beam-wordcount binary to run (see the
// command's help for the order), building it from a source checkout if
// that is where it comes from.
func findBeamWordCount(cmd *cobra.Command, binary string) (string, error) {
	if binary != "" {
		if _, err := os.Stat(binary); err != nil {
			return "", usageError{fmt.Errorf("--binary: %w", err)}
		}
		return binary, nil
	}
	if exe, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(exe), beamWordCount)
		if fi, err := os.Stat(next); err == nil && !fi.IsDir() {
			return next, nil
		}
	}
	if root := galeCheckout(); root != "" {
		return buildBeamWordCount(cmd, root)
	}
	if p, err := exec.LookPath(beamWordCount); err == nil {
		return p, nil
	}
	next := beamWordCount
	if exe, err := os.Executable(); err == nil {
		next = filepath.Join(filepath.Dir(exe), beamWordCount)
	}
	return "", fmt.Errorf("%w: it is not next to the gale binary, not on PATH, and there is no Gale source checkout (go.work) "+
		"above the current directory or the gale binary to build it from; install it with `%s`, or run gale from inside a Gale checkout, "+
		"or build it there with `go build -o %s ./%s`, or name a built one with --binary",
		errNoBeamWordCount, beamWordCountInstall, next, beamWordCountSrc)
}

// galeCheckout returns the root of the Gale source checkout that holds the
// current directory, else the one that holds the gale binary (a bin/gale
// built by make): the nearest directory above with a go.work, a go.mod of
// module github.com/galeproject/gale and the beam-wordcount sources; ""
// if there is none.
func galeCheckout() string {
	if wd, err := os.Getwd(); err == nil {
		if root := checkoutAbove(wd); root != "" {
			return root
		}
	}
	if exe, err := os.Executable(); err == nil {
		return checkoutAbove(filepath.Dir(exe))
	}
	return ""
}

// checkoutAbove returns the Gale checkout at or above dir, or "".
func checkoutAbove(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if isGaleModule(filepath.Join(dir, "go.mod")) {
				if _, err := os.Stat(filepath.Join(dir, beamWordCountSrc, "main.go")); err == nil {
					return dir
				}
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// isGaleModule reports whether the go.mod at path is Gale's core module.
func isGaleModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`) == "github.com/galeproject/gale"
		}
	}
	return false
}

// buildBeamWordCount installs beam-wordcount from the checkout at root into
// gale's cache directory and returns its path. go install relinks only
// when the sources (or the toolchain) changed; otherwise it leaves the
// cached binary as it is. The binary keeps its symbol table: Beam's
// workers find DoFns by symbol.
func buildBeamWordCount(cmd *cobra.Command, root string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goCmd); serr != nil {
			return "", fmt.Errorf("building %s from the checkout at %s needs the go command (%v); or install the binary with `%s`",
				beamWordCount, root, err, beamWordCountInstall)
		}
	}
	binDir, err := cache.Sub("bin")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", beamWordCount, err)
	}
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	build := exec.CommandContext(cmd.Context(), goCmd, "install", "./"+beamWordCountSrc)
	build.Dir = root
	build.Env = append(os.Environ(), "GOBIN="+binDir)
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building %s from the checkout at %s (go install ./%s): %w", beamWordCount, root, beamWordCountSrc, err)
	}
	bin := filepath.Join(binDir, beamWordCount)
	if d := time.Since(start); d > 5*time.Second {
		fmt.Fprintf(stderr, "built %s from %s into %s in %s\n", beamWordCount, root, binDir, d.Round(100*time.Millisecond))
	}
	return bin, nil
}

// runBeamWordCount runs bin with args, streaming its output. When bin
// fails with an exit status, it returns an exitStatus error: the program
// printed its own error, and its status becomes gale's.
func runBeamWordCount(cmd *cobra.Command, bin string, args []string) error {
	c := exec.CommandContext(cmd.Context(), bin, args...)
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	// On Ctrl-C (gale's context ends), interrupt the program so it can
	// stop its workers, and kill it if it has not ended 10 s later.
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 10 * time.Second
	err := c.Run()
	if err != nil && cmd.Context().Err() != nil {
		// gale was interrupted and passed the interrupt on: the program
		// stopped because of it, whatever its own exit says.
		fmt.Fprintln(cmd.ErrOrStderr(), "gale: interrupted")
		return exitStatus(130)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return exitStatus(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", bin, err)
	}
	return nil
}
