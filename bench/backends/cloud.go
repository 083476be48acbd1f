package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/host"
	"github.com/galeproject/gale/backends/gcp"
	"github.com/galeproject/gale/backends/ibm"
	"github.com/galeproject/gale/backends/ibm/controller"
	"github.com/galeproject/gale/internal/awsstandin"
)

// The cloud stand-ins run this very binary as their worker, reached with
// the production client of each backend, wired as the gale command wires
// its local stand-ins (cmd/gale/backend_<cloud>.go). Each factory starts
// a fresh stand-in with conc instances; the backend it returns stops the
// stand-in on Close.

// withStandIn is a backend whose Close also stops its stand-in.
type withStandIn struct {
	backends.Backend
	stop func()
}

func (b *withStandIn) Close() error {
	err := b.Backend.Close()
	b.stop()
	return err
}

// cloudFactories returns the cloud stand-in factories; exe is the worker
// binary and out receives the stand-ins' output.
func cloudFactories(exe string, out io.Writer) []factory {
	return []factory{
		{"aws", func(conc int) (backends.Backend, error) { return startAWS(exe, conc, out) }},
		{"gcp", func(conc int) (backends.Backend, error) { return startGCP(exe, conc, out) }},
		{"azure", func(conc int) (backends.Backend, error) { return startAzure(exe, conc, out) }},
		{"ibm", func(conc int) (backends.Backend, error) { return startIBM(exe, conc, out) }},
	}
}

// probeCloud reports why a stand-in cannot start here (a tool missing),
// or nil.
func probeCloud(name string) error {
	if name == "aws" {
		if _, err := awsstandin.Tool(awsstandin.EmulatorTool); err != nil {
			return err
		}
	}
	return nil
}

// startAWS starts an emulator pool of conc sandboxes running exe as the
// bootstrap and a Lambda client pointed at it.
func startAWS(exe string, conc int, out io.Writer) (backends.Backend, error) {
	pool, err := awsstandin.StartPool(awsstandin.PoolConfig{Bootstrap: exe, Size: conc, Output: out})
	if err != nil {
		return nil, err
	}
	l, err := aws.NewLambda(context.Background(), aws.LambdaConfig{Region: "us-east-1", Endpoint: pool.URL(),
		Function: awsstandin.FunctionName, Concurrency: conc, MemoryMiB: 512})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &withStandIn{Backend: l, stop: func() { pool.Close() }}, nil
}

// startGCP starts conc Functions Framework instances of exe and the
// client on their endpoints, one request per instance.
func startGCP(exe string, conc int, out io.Writer) (backends.Backend, error) {
	ctx := context.Background()
	si, err := gcp.StartStandIn(ctx, gcp.StandInConfig{Path: exe, Instances: conc, Output: out})
	if err != nil {
		return nil, err
	}
	cfg := gcp.DefaultConfig()
	cfg.Endpoints, cfg.Concurrency = si.URLs(), conc
	b, err := gcp.New(ctx, cfg)
	if err != nil {
		si.Close()
		return nil, err
	}
	return &withStandIn{Backend: b, stop: func() { si.Close() }}, nil
}

// startAzure lays out a custom-handler app whose handler is exe, starts
// the local Functions host on it with conc instances and a fresh host
// key, and the client pointed at it.
func startAzure(exe string, conc int, out io.Writer) (backends.Backend, error) {
	dir, err := os.MkdirTemp("", "gale-bench-azure-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (backends.Backend, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("azure host: %w", err)
	}
	const function = "gale"
	if err := azure.WriteApp(dir, azure.AppConfig{Functions: []string{function}}, exe); err != nil {
		return fail(err)
	}
	var k [16]byte
	rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	ctx := context.Background()
	h, err := host.Start(ctx, host.Config{Dir: dir, Instances: conc, HostKeys: []string{key}, Output: out}, "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	b, err := azure.New(ctx, azure.Config{URL: h.URL(), Function: function, Key: key, Concurrency: conc})
	if err != nil {
		h.Close()
		return fail(err)
	}
	return &withStandIn{Backend: b, stop: func() { h.Close(); os.RemoveAll(dir) }}, nil
}

// startIBM starts the loopback OpenWhisk controller whose containers run
// exe, serving it on a loopback port, and the client pointed at it.
func startIBM(exe string, conc int, out io.Writer) (backends.Backend, error) {
	const auth = "gale-bench:0123456789abcdef"
	ccfg := controller.DefaultConfig()
	ccfg.Auth, ccfg.Command, ccfg.Actions, ccfg.MaxContainers, ccfg.Output = auth, exe, []string{"gale"}, conc, out
	c, err := controller.New(ccfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(context.Background(), ln) }()
	stop := func() {
		c.Close()
		<-done
	}
	cfg := ibm.DefaultConfig()
	cfg.APIHost, cfg.Auth, cfg.Action, cfg.Concurrency = "http://"+ln.Addr().String(), auth, "gale", conc
	b, err := ibm.New(context.Background(), cfg)
	if err != nil {
		stop()
		return nil, err
	}
	return &withStandIn{Backend: b, stop: stop}, nil
}

// measureCloud measures the warm and cold invocation overhead on each
// cloud stand-in. A stand-in that cannot start here (a tool missing) or
// fails is reported in skipped, by name, and the others are measured.
func measureCloud(ctx context.Context, warmN, coldN int, showOutput bool) (lats []latency, skipped map[string]string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("locating this binary, the stand-ins' worker: %w", err)
	}
	if err := awsstandin.Isolate(filepath.Join(os.TempDir(), "gale-bench-no-aws-config")); err != nil {
		return nil, nil, err
	}
	var out io.Writer = io.Discard
	if showOutput {
		out = os.Stderr
	}
	skipped = map[string]string{}
	for _, f := range cloudFactories(exe, out) {
		if err := probeCloud(f.name); err != nil {
			skipped[f.name] = err.Error()
			fmt.Printf("skipping the %s stand-in: %v\n", f.name, err)
			continue
		}
		fmt.Printf("measuring the %s stand-in (%d warm, %d cold invocations)\n", f.name, warmN, coldN)
		warm, err := measureWarm(ctx, f, warmN)
		if err == nil {
			var cold latency
			if cold, err = measureCold(ctx, f, coldN); err == nil {
				lats = append(lats, warm, cold)
				continue
			}
		}
		skipped[f.name] = err.Error()
		fmt.Printf("skipping the %s stand-in: it failed: %v (rerun with -standin-output to see its output)\n", f.name, err)
	}
	return lats, skipped, nil
}

// overheadRow is one backend's line of the invocation overhead table.
type overheadRow struct {
	Backend      string  `json:"backend"`
	WarmMedianUS float64 `json:"warm_median_us"`
	WarmP99US    float64 `json:"warm_p99_us"`
	ColdMedianMS float64 `json:"cold_median_ms"`
	// SetupMedianMS is the median time to start a fresh backend (its
	// stand-in) before the cold invocation.
	SetupMedianMS float64 `json:"setup_median_ms"`
	// The ratios are to the local backend's figures.
	WarmMedianOverLocal float64 `json:"warm_median_over_local"`
	WarmP99OverLocal    float64 `json:"warm_p99_over_local"`
	ColdMedianOverLocal float64 `json:"cold_median_over_local"`
}

// overheadTable pairs each backend's warm and cold figures, in the order
// lats names the backends; the local backend must be among them.
func overheadTable(lats []latency) []overheadRow {
	var rows []overheadRow
	idx := map[string]int{}
	for _, l := range lats {
		i, ok := idx[l.Backend]
		if !ok {
			i = len(rows)
			idx[l.Backend] = i
			rows = append(rows, overheadRow{Backend: l.Backend})
		}
		switch l.Start {
		case "warm":
			rows[i].WarmMedianUS, rows[i].WarmP99US = l.MedianUS, l.P99US
		case "cold":
			rows[i].ColdMedianMS, rows[i].SetupMedianMS = l.MedianUS/1e3, l.SetupMedianMS
		}
	}
	if i, ok := idx["local"]; ok {
		local := rows[i]
		for j := range rows {
			rows[j].WarmMedianOverLocal = rows[j].WarmMedianUS / local.WarmMedianUS
			rows[j].WarmP99OverLocal = rows[j].WarmP99US / local.WarmP99US
			rows[j].ColdMedianOverLocal = rows[j].ColdMedianMS / local.ColdMedianMS
		}
	}
	return rows
}

func printOverhead(rows []overheadRow, skipped map[string]string) {
	fmt.Printf("\ninvocation overhead per task (ratios to local)\n")
	fmt.Printf("  %-8s %14s %14s %14s %10s %10s %10s %14s\n", "backend", "warm median µs", "warm p99 µs", "cold median ms",
		"warm med×", "warm p99×", "cold med×", "start-up ms")
	for _, r := range rows {
		fmt.Printf("  %-8s %14.1f %14.1f %14.3f %10.1f %10.1f %10.0f %14.1f\n", r.Backend, r.WarmMedianUS, r.WarmP99US, r.ColdMedianMS,
			r.WarmMedianOverLocal, r.WarmP99OverLocal, r.ColdMedianOverLocal, r.SetupMedianMS)
	}
	for _, name := range slices.Sorted(maps.Keys(skipped)) {
		fmt.Printf("  %-8s skipped: %s\n", name, skipped[name])
	}
	fmt.Println()
}
