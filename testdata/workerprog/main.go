// Command workerprog is a Gale program run on the process backend with
// the default worker configuration: its workers are this binary,
// re-executed with the same arguments, serving tasks where gale.Run is
// called. worker_test.go builds and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/process"
)

func square(i int64) int64 { return i * i }

func mod7(v int64) int64 { return v % 7 }

func main() {
	n := flag.Int64("n", 1000, "numbers")
	workers := flag.Int("workers", 2, "worker processes")
	flag.Parse()
	p := gale.NewPipeline()
	sums := gale.SumPerKey(gale.KeyBy(gale.Generate(p, *n, square), mod7))
	out := gale.Collect(sums)

	cfg := process.DefaultConfig()
	cfg.Concurrency = *workers
	b, err := process.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer b.Close()
	// In a worker, Run serves tasks and never returns.
	if _, err := gale.Run(context.Background(), p, gale.WithBackend("process", b)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kvs := out.Values()
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	for _, kv := range kvs {
		fmt.Printf("%d %d\n", kv.Key, kv.Value)
	}
	st := b.Stats()
	fmt.Fprintf(os.Stderr, "workers started: %d\n", st.Started)
}
