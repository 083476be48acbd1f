// Command dashboard measures what a live dashboard costs a job: the same
// word count, with many small tasks so that per-event costs show, runs
// side by side without a dashboard and with one (package ui) that one
// browser-like client follows over the event stream — and with a client
// that connects and never reads, which must cost no more. Runs are
// interleaved round by round so machine noise hits each variant alike; the
// median of the rounds is reported, with each variant's ratio to the run
// without a dashboard.
//
//	go run ./bench/dashboard [-size 16MiB] [-chunk 8KiB] [-rounds 5]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/textgen"
	"github.com/galeproject/gale/ui"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dashboard:", err)
		os.Exit(1)
	}
}

func run() error {
	size := flag.String("size", "16MiB", "corpus size")
	chunk := flag.String("chunk", "8KiB", "chunk size: one task each")
	rounds := flag.Int("rounds", 5, "rounds (each runs every variant once)")
	workers := flag.Int("workers", 2, "tasks at once")
	flag.Parse()
	n, err := humanize.ParseBytes(*size)
	if err != nil {
		return err
	}
	c, err := humanize.ParseBytes(*chunk)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gale-bench-dashboard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	corpus := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size = int64(n)
	if err := textgen.GenerateFile(context.Background(), corpus, cfg); err != nil {
		return err
	}
	variants := []struct {
		name   string
		client func(url string) (stop func(), err error)
	}{
		{"no dashboard", nil},
		{"dashboard, one client following", follow},
		{"dashboard, one client not reading", stall},
	}
	times := make([][]float64, len(variants))
	tasks := 0
	for r := range *rounds {
		for i, v := range variants {
			opts := []gale.RunOption{gale.Workers(*workers), gale.ChunkSize(int64(c))}
			var srv *ui.Server
			stop := func() {}
			if v.client != nil {
				if srv, err = ui.NewServer(ui.Config{}); err != nil {
					return err
				}
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); _ = srv.Serve(context.Background()) }()
				stopClient, err := v.client("http://" + srv.Addr() + "/api/stream")
				if err != nil {
					return err
				}
				stop = func() { srv.Close(); stopClient(); wg.Wait() }
				opts = append(opts, gale.WithMonitor(srv))
			}
			p := gale.NewPipeline()
			wordcount.Build(p, []string{corpus}, filepath.Join(dir, fmt.Sprintf("out-%d-%d", r, i)))
			start := time.Now()
			rep, err := gale.Run(context.Background(), p, opts...)
			elapsed := time.Since(start).Seconds()
			stop()
			if err != nil {
				return err
			}
			times[i] = append(times[i], elapsed)
			tasks = 0
			for _, s := range rep.Stages {
				tasks += s.Tasks
			}
			os.RemoveAll(filepath.Join(dir, fmt.Sprintf("out-%d-%d", r, i)))
		}
	}
	fmt.Printf("word count of %s in %s chunks: %d tasks, %d at once, %d rounds (median)\n", *size, *chunk, tasks, *workers, *rounds)
	base := median(times[0])
	for i, v := range variants {
		m := median(times[i])
		fmt.Printf("  %-36s %8.3f s  %.3f×\n", v.name, m, m/base)
	}
	return nil
}

// follow reads the stream as a browser does, until stopped.
func follow(url string) (func(), error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 256<<20)
		for sc.Scan() {
			_ = strings.HasPrefix(sc.Text(), "data: ")
		}
	}()
	return func() { resp.Body.Close(); <-done }, nil
}

// stall connects and never reads.
func stall(url string) (func(), error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	return func() {
		resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
	}, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		panic(errors.New("no runs"))
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
