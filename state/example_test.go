package state_test

import (
	"context"
	"fmt"

	"github.com/galeproject/gale/state"
)

// Histogram is a user-defined shared object: its methods run on the DSO
// server, atomically per object.
type Histogram struct {
	Buckets []int64
}

// Add counts v into bucket v/10 and returns that bucket's count.
func (h *Histogram) Add(v int) int64 {
	b := v / 10
	for len(h.Buckets) <= b {
		h.Buckets = append(h.Buckets, 0)
	}
	h.Buckets[b]++
	return h.Buckets[b]
}

// Snapshot returns the buckets.
func (h *Histogram) Snapshot() []int64 { return h.Buckets }

// HistogramRef is the typed wrapper pattern: a handle whose methods read
// like local calls, each one remote call through state.Call.
type HistogramRef struct{ o state.Object }

func NewHistogramRef(c *state.Client, key string) HistogramRef {
	return HistogramRef{c.Object("Histogram", key)}
}

func (h HistogramRef) Add(ctx context.Context, v int) (int64, error) {
	return state.Call[int64](ctx, h.o, "Add", v)
}

func (h HistogramRef) Snapshot(ctx context.Context) ([]int64, error) {
	return state.Call[[]int64](ctx, h.o, "Snapshot")
}

func Example() {
	ctx := context.Background()

	// The server's binary links the user-defined types it hosts.
	reg := state.NewRegistry()
	state.RegisterType[Histogram](reg, "Histogram")
	srv, err := state.NewServer(state.ServerConfig{Token: "s3cret", Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = srv.Serve(ctx) }()
	defer srv.Close()

	c, err := state.Dial(ctx, state.ClientConfig{Servers: []string{srv.Addr()}, Token: "s3cret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	n, _ := c.AtomicLong("visits").AddAndGet(ctx, 2)
	fmt.Println("visits:", n)

	h := NewHistogramRef(c, "latencies")
	for _, v := range []int{3, 14, 17, 25} {
		if _, err := h.Add(ctx, v); err != nil {
			fmt.Println(err)
		}
	}
	buckets, _ := h.Snapshot(ctx)
	fmt.Println("buckets:", buckets)

	// Bad input is an error to this caller only.
	_, err = state.Call[int64](ctx, h.o, "Add", "not an int")
	fmt.Println(err != nil)
	// Output:
	// visits: 2
	// buckets: [1 2 1]
	// true
}
