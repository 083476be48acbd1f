// Command binsize measures what a slim build saves, side by side in one
// run, on three builds of the same program (default ./cmd/gale), each
// built by the toolchain's go command as `gale deploy aws` builds a
// function (-trimpath -ldflags='-s -w', CGO_ENABLED=0):
//
//   - full: no tags, every cloud backend linked (a Gale program's default);
//   - gale_slim,gale_aws: AWS's backend only (what `gale deploy aws`
//     builds);
//   - gale_slim: no cloud backend (local, process, Glider, DSO, files).
//
// For each it reports:
//
//   - size: the binary's bytes and the bytes of the Lambda deployment
//     package `gale deploy aws` would upload (aws.BootstrapZip), and their
//     ratios to the full build;
//   - process start: the wall time from exec to exit of a cheap command
//     (default `--help`), interleaved start by start (A B C A B C …, the
//     order rotated every round) so that the noise of the shared machine
//     falls on every build alike; median, p10 and p90, ratios to full;
//   - Lambda cold start on the local stand-in: an emulator pool
//     (internal/awsstandin, aws-lambda-rie from scripts/install-standins.sh)
//     running the build as its bootstrap, reached by the production client
//     (aws.NewLambda), as bench/backends does. The emulator starts the
//     bootstrap on the first invocation, so that invocation's round trip —
//     a probe task sleeping 0 s, which the gale worker serves — includes
//     the process start, the Go runtime's and the packages' initialization
//     and the worker's first Runtime API poll. One sample per build per
//     round, interleaved, each on a freshly started pool; then -warm more
//     invocations on the same pool, whose median is given for contrast. A
//     build without the aws backend cannot serve Lambda: it is tried once
//     and what it answered is reported. Without the emulator installed this
//     part is skipped with a note.
//
// -pkg measures another main package the same way; for the Lambda part it
// must serve probe tasks (probe.Kind) when started as a worker, as the gale
// command does, or that part is skipped with a note.
//
// Results go to bench/results/binsize.json.
//
//	go run ./bench/binsize [-pkg ./cmd/gale] [-args --help] [-rounds 20] [-starts 10]
//	    [-warm 30] [-standin-output] [-out bench/results/binsize.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/aws"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/binsize:", err)
		os.Exit(1)
	}
}

// build is one build of the program under test.
type build struct {
	Name string `json:"name"`
	Tags string `json:"tags"`
	// LinksAWS reports whether the build links the aws backend, and so
	// can serve as a Lambda function.
	LinksAWS bool   `json:"links_aws"`
	path     string // the built binary
}

// builds returns the three builds, full first: every ratio is to it.
func builds() []build {
	return []build{
		{Name: "full", Tags: "", LinksAWS: true},
		{Name: gale.SlimTag + ",gale_aws", Tags: gale.SlimTag + ",gale_aws", LinksAWS: true},
		{Name: gale.SlimTag, Tags: gale.SlimTag, LinksAWS: false},
	}
}

// sizeRow is one build's sizes.
type sizeRow struct {
	Build       string  `json:"build"`
	BinaryBytes int64   `json:"binary_bytes"`
	ZipBytes    int64   `json:"lambda_zip_bytes"`
	BinaryRatio float64 `json:"binary_over_full"`
	ZipRatio    float64 `json:"lambda_zip_over_full"`
}

// spread summarizes samples, in milliseconds.
type spread struct {
	N        int     `json:"n"`
	MedianMS float64 `json:"median_ms"`
	P10MS    float64 `json:"p10_ms"`
	P90MS    float64 `json:"p90_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// summarize returns the spread of d, or a zero spread for no samples.
func summarize(d []time.Duration) spread {
	if len(d) == 0 {
		return spread{}
	}
	d = slices.Clone(d)
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e6 }
	// Nearest rank on the sorted samples.
	q := func(p float64) float64 { return ms(d[int(p*float64(len(d)-1)+0.5)]) }
	return spread{N: len(d), MedianMS: q(0.5), P10MS: q(0.1), P90MS: q(0.9), MinMS: ms(d[0]), MaxMS: ms(d[len(d)-1])}
}

// startRow is one build's process start figures.
type startRow struct {
	Build string `json:"build"`
	spread
	MedianRatio float64 `json:"median_over_full"`
	P90Ratio    float64 `json:"p90_over_full"`
	// PairedRatio is the median, over the interleaved samples, of this
	// build's sample over the full build's sample taken beside it (the
	// same round and position): the ratio least moved by load that comes
	// and goes.
	PairedRatio float64 `json:"paired_median_over_full"`
}

// lambdaRow is one build's figures on the Lambda stand-in.
type lambdaRow struct {
	Build string `json:"build"`
	// Cold is the first invocation's round trip on a fresh pool.
	Cold spread `json:"cold"`
	// ColdMS lists the cold samples in the order taken.
	ColdMS []float64 `json:"cold_samples_ms"`
	// Setup is the time to start the fresh pool (its emulator, not yet
	// the bootstrap) before the cold invocation.
	Setup spread `json:"setup"`
	// Warm is the round trip of the invocations after the first.
	Warm            spread  `json:"warm"`
	ColdMedianRatio float64 `json:"cold_median_over_full"`
	// ColdPairedRatio is the median of the per-round ratios of this
	// build's cold sample to the full build's.
	ColdPairedRatio float64 `json:"cold_paired_median_over_full"`
	WarmMedianRatio float64 `json:"warm_median_over_full"`
}

// pairedRatio returns the median of a[k]/b[k].
func pairedRatio(a, b []time.Duration) float64 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	r := make([]float64, n)
	for k := range n {
		r[k] = float64(a[k]) / float64(b[k])
	}
	slices.Sort(r)
	return r[n/2]
}

func run() error {
	pkg := flag.String("pkg", "./cmd/gale", "the main package to build; on the Lambda stand-in it must serve probe tasks as a worker, as cmd/gale does")
	argsFlag := flag.String("args", "--help", "the cheap command each process start runs (space-separated arguments)")
	rounds := flag.Int("rounds", 20, "interleaved rounds: each has -starts process starts and one Lambda cold start per build")
	starts := flag.Int("starts", 10, "process starts per build per round")
	warmN := flag.Int("warm", 30, "warm invocations after each cold one on the Lambda stand-in")
	standInOutput := flag.Bool("standin-output", false, "show the Lambda emulators' and their workers' output")
	out := flag.String("out", "bench/results/binsize.json", "results file")
	flag.Parse()
	if *rounds < 1 || *starts < 1 || *warmN < 0 {
		return errors.New("-rounds and -starts must be at least 1, -warm at least 0")
	}
	startArgs := strings.Fields(*argsFlag)
	// An interrupt cancels the measurement, so that the pools it started
	// are stopped (their emulators run in process groups of their own,
	// out of the terminal's reach).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	loadBefore := loadAvg()

	dir, err := os.MkdirTemp("", "gale-bench-binsize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bs := builds()
	var sizes []sizeRow
	fmt.Printf("building %s for %s/%s with -trimpath -ldflags='-s -w', CGO_ENABLED=0\n", *pkg, runtime.GOOS, runtime.GOARCH)
	for i := range bs {
		b := &bs[i]
		b.path = filepath.Join(dir, fmt.Sprintf("build-%d", i), "bootstrap")
		t0 := time.Now()
		if err := goBuild(ctx, *pkg, b.Tags, b.path); err != nil {
			return err
		}
		bin, err := os.ReadFile(b.path)
		if err != nil {
			return err
		}
		zip, err := aws.BootstrapZip(bin)
		if err != nil {
			return fmt.Errorf("zipping the %s build: %w", b.Name, err)
		}
		sizes = append(sizes, sizeRow{Build: b.Name, BinaryBytes: int64(len(bin)), ZipBytes: int64(len(zip))})
		fmt.Printf("  %-20s built in %.1fs\n", b.Name, time.Since(t0).Seconds())
	}
	for i := range sizes {
		sizes[i].BinaryRatio = float64(sizes[i].BinaryBytes) / float64(sizes[0].BinaryBytes)
		sizes[i].ZipRatio = float64(sizes[i].ZipBytes) / float64(sizes[0].ZipBytes)
	}

	// Every build must run the start command before anything is timed.
	for _, b := range bs {
		if _, err := startOnce(ctx, b.path, startArgs); err != nil {
			return fmt.Errorf("the %s build: %w", b.Name, err)
		}
	}

	var stand *standIn
	lambdaSkipped := map[string]string{}
	var lambdaNote string
	if st, err := newStandIn(*standInOutput); err != nil {
		lambdaNote = fmt.Sprintf("the Lambda stand-in is not measured: %v", err)
		fmt.Println(lambdaNote)
	} else {
		stand = st
		for _, b := range bs {
			if !b.LinksAWS {
				lambdaSkipped[b.Name] = stand.unlinked(ctx, b.path)
				fmt.Printf("the %s build does not link the aws backend; as a Lambda bootstrap: %s\n", b.Name, lambdaSkipped[b.Name])
				continue
			}
			// One untimed sample each, so that no build's first is the
			// machine's first emulator start.
			if _, err := stand.sample(ctx, b.path, 1); err != nil {
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				lambdaNote = fmt.Sprintf("the Lambda stand-in is not measured: the %s build failed there: %v "+
					"(the program must serve probe tasks as a worker, as cmd/gale does; rerun with -standin-output to see its output)", b.Name, err)
				fmt.Println(lambdaNote)
				stand = nil
				break
			}
		}
	}

	startD := make([][]time.Duration, len(bs))
	coldD := make([][]time.Duration, len(bs))
	setupD := make([][]time.Duration, len(bs))
	warmD := make([][]time.Duration, len(bs))
	fmt.Printf("measuring: %d rounds of %d starts (%s %s) per build", *rounds, *starts, filepath.Base(*pkg), *argsFlag)
	if stand != nil {
		fmt.Printf(" and one Lambda cold start (+%d warm invocations) per build", *warmN)
	}
	fmt.Println()
	for r := range *rounds {
		// Rotate the order every round so that no build always follows
		// the same one.
		order := make([]int, len(bs))
		for i := range order {
			order[i] = (i + r) % len(bs)
		}
		for range *starts {
			for _, i := range order {
				d, err := startOnce(ctx, bs[i].path, startArgs)
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				if err != nil {
					return fmt.Errorf("the %s build: %w", bs[i].Name, err)
				}
				startD[i] = append(startD[i], d)
			}
		}
		if stand != nil {
			for _, i := range order {
				if !bs[i].LinksAWS {
					continue
				}
				s, err := stand.sample(ctx, bs[i].path, *warmN)
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				if err != nil {
					return fmt.Errorf("the %s build on the Lambda stand-in: %w (rerun with -standin-output to see its output)", bs[i].Name, err)
				}
				setupD[i] = append(setupD[i], s.setup)
				coldD[i] = append(coldD[i], s.cold)
				warmD[i] = append(warmD[i], s.warm...)
			}
		}
		fmt.Printf("  round %d/%d done\n", r+1, *rounds)
	}

	var startRows []startRow
	for i, b := range bs {
		startRows = append(startRows, startRow{Build: b.Name, spread: summarize(startD[i]), PairedRatio: pairedRatio(startD[i], startD[0])})
	}
	for i := range startRows {
		startRows[i].MedianRatio = startRows[i].MedianMS / startRows[0].MedianMS
		startRows[i].P90Ratio = startRows[i].P90MS / startRows[0].P90MS
	}
	lambdaRows := []lambdaRow{}
	if stand != nil {
		for i, b := range bs {
			if !b.LinksAWS {
				continue
			}
			var samples []float64
			for _, d := range coldD[i] {
				samples = append(samples, float64(d.Microseconds())/1e3)
			}
			lambdaRows = append(lambdaRows, lambdaRow{Build: b.Name, ColdMS: samples,
				Cold: summarize(coldD[i]), Setup: summarize(setupD[i]), Warm: summarize(warmD[i]),
				ColdPairedRatio: pairedRatio(coldD[i], coldD[0])})
		}
		for i := range lambdaRows {
			lambdaRows[i].ColdMedianRatio = lambdaRows[i].Cold.MedianMS / lambdaRows[0].Cold.MedianMS
			lambdaRows[i].WarmMedianRatio = lambdaRows[i].Warm.MedianMS / lambdaRows[0].Warm.MedianMS
		}
	}

	printTables(sizes, startRows, lambdaRows, lambdaSkipped, lambdaNote, *pkg, *argsFlag)
	fmt.Printf("load average before %s, after %s (%d cores)\n", loadBefore, loadAvg(), runtime.NumCPU())

	doc := map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "cores": runtime.NumCPU(), "go": runtime.Version(),
		"goos": runtime.GOOS, "goarch": runtime.GOARCH,
		"pkg": *pkg, "build_flags": "-trimpath -ldflags='-s -w', CGO_ENABLED=0",
		"loadavg_before": loadBefore, "loadavg_after": loadAvg(),
		"builds": bs, "sizes": sizes,
		"process_start": map[string]any{"args": startArgs, "rounds": *rounds, "starts_per_round": *starts, "builds": startRows},
	}
	lambda := map[string]any{"rounds": *rounds, "warm_per_cold": *warmN, "task": "probe sleep 0s",
		"builds": lambdaRows, "skipped": lambdaSkipped}
	if lambdaNote != "" {
		lambda["note"] = lambdaNote
	}
	doc["lambda_standin"] = lambda
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// goBuild builds pkg with tags into out, with the flags `gale deploy aws`
// uses (cmd/gale/backend_aws.go, crossCompile), for this machine's
// platform so that the binaries run here.
func goBuild(ctx context.Context, pkg, tags, out string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goCmd); serr != nil {
			return fmt.Errorf("building %s needs the go command (not found: %v)", pkg, err)
		}
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, goCmd, append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags %q %s: %w\n%s", tags, pkg, err, msg)
	}
	return nil
}

// startOnce runs bin with args, its output discarded, and returns the time
// from exec to exit.
func startOnce(ctx context.Context, bin string, args []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	// nil Stdout and Stderr are /dev/null: no pipe, no copying goroutine.
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w (it must succeed: pick another -args)", bin, strings.Join(args, " "), err)
	}
	return d, nil
}

func printTables(sizes []sizeRow, starts []startRow, lambda []lambdaRow, skipped map[string]string, note, pkg, args string) {
	fmt.Printf("\nsize of %s, stripped (ratios to full)\n", pkg)
	fmt.Printf("  %-20s %12s %7s %14s %7s\n", "build", "binary", "×full", "Lambda zip", "×full")
	for _, r := range sizes {
		fmt.Printf("  %-20s %8.1f MiB %7.2f %10.1f MiB %7.2f\n", r.Build, mib(r.BinaryBytes), r.BinaryRatio,
			mib(r.ZipBytes), r.ZipRatio)
	}
	fmt.Printf("\nprocess start, exec to exit of `%s %s` (ratios to full)\n", filepath.Base(pkg), args)
	fmt.Printf("  %-20s %5s %9s %9s %9s %9s %9s %8s %8s %8s\n", "build", "n", "median", "p10", "p90", "min", "max", "med×", "p90×", "paired×")
	for _, r := range starts {
		fmt.Printf("  %-20s %5d %7.1fms %7.1fms %7.1fms %7.1fms %7.1fms %8.2f %8.2f %8.2f\n", r.Build, r.N, r.MedianMS, r.P10MS, r.P90MS,
			r.MinMS, r.MaxMS, r.MedianRatio, r.P90Ratio, r.PairedRatio)
	}
	fmt.Printf("\nLambda stand-in (aws-lambda-rie pool, aws.NewLambda client), probe sleep 0s (ratios to full)\n")
	if note != "" {
		fmt.Printf("  %s\n", note)
		return
	}
	fmt.Printf("  %-20s %6s %9s %9s %9s %9s %8s %8s %11s %6s %11s %8s\n", "build", "cold n", "median", "min", "max", "p90",
		"med×", "paired×", "pool start", "warm n", "warm median", "warm×")
	for _, r := range lambda {
		fmt.Printf("  %-20s %6d %7.1fms %7.1fms %7.1fms %7.1fms %8.2f %8.2f %9.1fms %6d %9.2fms %8.2f\n", r.Build, r.Cold.N,
			r.Cold.MedianMS, r.Cold.MinMS, r.Cold.MaxMS, r.Cold.P90MS, r.ColdMedianRatio, r.ColdPairedRatio, r.Setup.MedianMS,
			r.Warm.N, r.Warm.MedianMS, r.WarmMedianRatio)
	}
	for name, why := range skipped {
		fmt.Printf("  %-20s not measured: %s\n", name, why)
	}
	fmt.Println()
}

// loadAvg returns the machine's load averages (/proc/loadavg), or "" where
// unavailable: the benchmark shares the machine, and the load says how
// much.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// discardOr returns os.Stderr if show, else io.Discard.
func discardOr(show bool) io.Writer {
	if show {
		return os.Stderr
	}
	return io.Discard
}
