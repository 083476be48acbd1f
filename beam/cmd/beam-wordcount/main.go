// Command beam-wordcount runs Apache Beam's Go wordcount on Gale: Beam's
// pipeline, unchanged, submitted with --runner=gale (the default here).
//
//	go run ./beam/cmd/beam-wordcount                       # a generated 16 MiB corpus
//	go run ./beam/cmd/beam-wordcount --input 'books/*.txt' --output counts.txt
//	go run ./beam/cmd/beam-wordcount --gale_backend process --gale_workers 4
//	go run ./beam/cmd/beam-wordcount --runner prism        # the same pipeline on Beam's Prism
//	gale run beam-wordcount --backend process              # the same, through the gale command
//
// On a cloud backend (--gale_backend aws|gcp|azure|ibm, configured in
// Gale's config file) the platform runs this binary as its function
// (deploy it with gale deploy <cloud> --binary), --gale_temp must be a
// store the functions reach, and --input and --output gs:// or s3:// paths
// (Beam's filesystems for both are linked in).
//
// It prints Gale's job report, the Beam metrics and the most frequent
// words. It lives in the beam module, not in cmd/gale, so that Gale's core
// build does not depend on the Beam SDK (see docs/beam.md).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/galeproject/gale/beam/examples/wordcount"
	_ "github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/internal/cache"
	"github.com/galeproject/gale/internal/textgen"
)

var (
	input  = flag.String("input", "", "file(s) to read, a glob; default: a generated corpus of --size bytes")
	output = flag.String("output", "", "output file; default: out/beam-wordcount/beam-wordcount.txt in Gale's cache directory, replaced by the next run without --output")
	size   = flag.Int64("size", 16<<20, "size in bytes of the generated corpus when --input is not set")
	top    = flag.Int("top", 10, "how many of the most frequent words to print")
)

func main() {
	if err := flag.Set("runner", "gale"); err != nil {
		fatal(err)
	}
	flag.Parse()
	beam.Init() // in a Gale worker, serves tasks and exits
	ctx := context.Background()
	in, out := *input, *output
	if in == "" {
		// Generated once into Gale's cache and reused by later runs.
		cfg := textgen.DefaultConfig()
		cfg.Size = *size
		var err error
		if in, err = cache.Corpus(ctx, cfg, os.Stdout); err != nil {
			fatal(err)
		}
		fmt.Printf("input: %s\n", in)
	}
	if out == "" {
		// The latest run's output, replaced by the next one.
		dir, err := cache.Output("beam-wordcount")
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			fatal(err)
		}
		out = filepath.Join(dir, "beam-wordcount.txt")
	}
	p, s := beam.NewPipelineWithRoot()
	wordcount.Build(s, in, out)
	start := time.Now()
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("runner %s: %s\n", *runners.Runner, time.Since(start).Round(time.Millisecond))
	if res != nil {
		q := res.Metrics().AllMetrics()
		for _, c := range q.Counters() {
			fmt.Printf("counter %s.%s: %d\n", c.Key.Namespace, c.Key.Name, c.Result())
		}
		for _, d := range q.Distributions() {
			v := d.Result()
			fmt.Printf("distribution %s.%s: count %d sum %d min %d max %d\n", d.Key.Namespace, d.Key.Name, v.Count, v.Sum, v.Min, v.Max)
		}
	}
	if err := printTop(out, *top); err != nil {
		fatal(err)
	}
	fmt.Printf("output: %s\n", out)
}

// printTop prints the n most frequent words of a "word: count" file.
func printTop(path string, n int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type wc struct {
		word  string
		count int
	}
	var all []wc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w, c, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(c)
		if err != nil {
			return fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		all = append(all, wc{w, k})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].count != all[j].count {
			return all[i].count > all[j].count
		}
		return all[i].word < all[j].word
	})
	fmt.Printf("%d distinct words; most frequent:\n", len(all))
	for _, w := range all[:min(n, len(all))] {
		fmt.Printf("  %-20s %d\n", w.word, w.count)
	}
	return nil
}

// fatal prints err and ends the program with status 1. (The standard
// logger would print it as a structured INFO record: Beam routes package
// log through slog.)
func fatal(err error) {
	fmt.Fprintln(os.Stderr, "beam-wordcount:", err)
	os.Exit(1)
}
