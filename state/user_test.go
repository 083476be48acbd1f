package state

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// Centroids is a user-defined shared object: partial sums merged on the
// server, as k-means workers do.
type Centroids struct {
	Sums   []float64
	Counts []int64
}

func (c *Centroids) Merge(sums []float64, counts []int64) (int64, error) {
	if c.Sums == nil {
		c.Sums = make([]float64, len(sums))
		c.Counts = make([]int64, len(counts))
	}
	if len(sums) != len(c.Sums) {
		return 0, errors.New("dimension mismatch")
	}
	var total int64
	for i := range sums {
		c.Sums[i] += sums[i]
		c.Counts[i] += counts[i]
		total += c.Counts[i]
	}
	return total, nil
}

// Total returns the number of points merged.
func (c *Centroids) Total() int64 {
	var n int64
	for _, x := range c.Counts {
		n += x
	}
	return n
}

func (c *Centroids) Means() []float64 {
	out := make([]float64, len(c.Sums))
	for i := range out {
		if c.Counts[i] > 0 {
			out[i] = c.Sums[i] / float64(c.Counts[i])
		}
	}
	return out
}

// Corrupt mutates the object and then panics.
func (c *Centroids) Corrupt() {
	for i := range c.Sums {
		c.Sums[i] = -1
	}
	c.Counts = nil
	panic("boom")
}

// CentroidsRef is the typed wrapper pattern: methods that read like local
// calls, each one remote call.
type CentroidsRef struct{ o Object }

func (r CentroidsRef) Merge(ctx context.Context, sums []float64, counts []int64) (int64, error) {
	return Call[int64](ctx, r.o, "Merge", sums, counts)
}

func (r CentroidsRef) Means(ctx context.Context) ([]float64, error) {
	return Call[[]float64](ctx, r.o, "Means")
}

func userRegistry() *Registry {
	reg := NewRegistry()
	RegisterType[Centroids](reg, "Centroids")
	return reg
}

func TestUserDefinedObject(t *testing.T) {
	s := startServer(t, ServerConfig{Registry: userRegistry()})
	c := dial(t, s.Addr())
	ctx := context.Background()
	ref := CentroidsRef{c.Object("Centroids", "km")}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := ref.Merge(ctx, []float64{1, 2}, []int64{1, 2}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	means, err := ref.Means(ctx)
	if err != nil || len(means) != 2 || means[0] != 1 || means[1] != 1 {
		t.Fatalf("Means = %v, %v", means, err)
	}
	if n, _ := ref.Merge(ctx, []float64{0, 0}, []int64{0, 0}); n != 200*3 {
		t.Fatalf("total count = %d, want 600", n)
	}
}

func TestUserObjectBadInput(t *testing.T) {
	s := startServer(t, ServerConfig{Registry: userRegistry()})
	c := dial(t, s.Addr())
	ctx := context.Background()
	o := c.Object("Centroids", "km")
	if _, err := Call[int64](ctx, o, "Merge", []float64{1}, []int64{1}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		err    error
		call   func() error
		substr string
	}{
		{"unknown method", ErrUnknownMethod, func() error { return o.Invoke(ctx, "Explode") }, "Merge"},
		{"wrong arg types", ErrBadArgs, func() error { return o.Invoke(ctx, "Merge", "not floats", 3) }, "argument 1"},
		{"wrong arg count", ErrBadArgs, func() error { return o.Invoke(ctx, "Merge") }, "takes 2"},
		{"unknown type", ErrUnknownType, func() error { return c.Object("Nope", "x").Invoke(ctx, "Merge") }, "Centroids"},
		{"method error", ErrMethodFailed, func() error { return o.Invoke(ctx, "Merge", []float64{1, 2, 3}, []int64{1, 2, 3}) }, "dimension mismatch"},
		{"panic", ErrPanic, func() error { return o.Invoke(ctx, "Corrupt") }, "boom"},
		{"wrong result type", nil, func() error { _, err := Call[string](ctx, o, "Means"); return err }, "decode"},
	}
	for _, tc := range cases {
		err := tc.call()
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.err, tc.substr)
		}
	}
	// The panic left the object as it was; the server still serves.
	means, err := Call[[]float64](ctx, o, "Means")
	if err != nil || len(means) != 1 || means[0] != 1 {
		t.Fatalf("after panic: Means = %v, %v", means, err)
	}
}

// Tally has no exported fields, so it must provide Clone.
type Tally struct{ n map[string]int }

func (t *Tally) Clone() *Tally {
	c := &Tally{n: map[string]int{}}
	for k, v := range t.n {
		c.n[k] = v
	}
	return c
}

func (t *Tally) Add(k string) int {
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[k]++
	return t.n[k]
}

// Count returns k's count.
func (t *Tally) Count(k string) int { return t.n[k] }

func (t *Tally) AddThenPanic(k string) {
	t.Add(k)
	panic("after add")
}

func TestUserObjectCloneRollback(t *testing.T) {
	reg := NewRegistry()
	RegisterType[Tally](reg, "Tally")
	s := startServer(t, ServerConfig{Registry: reg})
	c := dial(t, s.Addr())
	ctx := context.Background()
	o := c.Object("Tally", "t")
	if n, _ := Call[int](ctx, o, "Add", "x"); n != 1 {
		t.Fatalf("Add = %d", n)
	}
	if err := o.Invoke(ctx, "AddThenPanic", "x"); !errors.Is(err, ErrPanic) {
		t.Fatalf("panic: %v", err)
	}
	if n, _ := Call[int](ctx, o, "Add", "x"); n != 2 {
		t.Fatalf("after rollback Add = %d, want 2", n)
	}
}

func TestRegisterTypeMisuse(t *testing.T) {
	mustPanic := func(name string, f func()) {
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	reg := NewRegistry()
	RegisterType[Centroids](reg, "C")
	mustPanic("duplicate", func() { RegisterType[Centroids](reg, "C") })
	mustPanic("builtin name", func() { RegisterType[Centroids](reg, "Map") })
	type hidden struct{ x int }
	mustPanic("not gob-encodable", func() { RegisterType[hidden](reg, "H") })
}
