//go:build linux

package aws_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/internal/awsstandin"
)

// BenchmarkLambdaInvokeOnEmulator measures a warm synchronous invocation
// through the real SDK client, the pool's front end and one emulator
// (go test -run '^$' -bench LambdaInvoke ./backends/aws). It reports the
// median and the cold start (first invocation of a fresh sandbox).
func BenchmarkLambdaInvokeOnEmulator(b *testing.B) {
	s := startStandins(b, awsstandin.PoolConfig{Size: 1})
	l := newLambda(b, s.cfg)
	ctx := context.Background()
	task := backends.Task{ID: "bench", Payload: cmd("echo", "data", "x")}
	start := time.Now()
	r, err := l.Invoke(ctx, task)
	if err != nil || !r.Invocation.Cold {
		b.Fatalf("cold invocation: %+v, %v", r.Invocation, err)
	}
	cold := time.Since(start)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := l.Invoke(ctx, task); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(cold.Microseconds()), "cold-µs")
}
