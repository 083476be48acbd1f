package state

import (
	"context"
	"strings"
	"testing"
)

// halfHidden keeps part of its state in an unexported field, which gob
// does not carry: the copy taken before each call (restored when a method
// panics) and a persistent snapshot lost it without a word.
type halfHidden struct {
	Count int
	last  string
}

func (h *halfHidden) Add(s string) int { h.Count++; h.last = s; return h.Count }

// point is an argument type whose unexported field gob drops.
type point struct {
	X int
	y int
}

type takesPoint struct{ Sum int }

func (t *takesPoint) Add(p point) int { t.Sum += p.X + p.y; return t.Sum }

type returnsPoint struct{ N int }

func (r *returnsPoint) Get() point { return point{r.N, r.N} }

// clonedHalf has a Clone method, so calls are safe, but its snapshot
// would still lose last.
type clonedHalf struct {
	Count int
	last  string
}

func (h *clonedHalf) Clone() *clonedHalf { c := *h; return &c }
func (h *clonedHalf) Add(s string) int   { h.Count++; h.last = s; return h.Count }

func TestRegisterTypeRefusesStateGobLoses(t *testing.T) {
	cases := []struct {
		name     string
		register func(reg *Registry)
		want     []string
	}{
		{"unexported field", func(reg *Registry) { RegisterType[halfHidden](reg, "H") },
			[]string{"halfHidden", "unexported field last", "Clone"}},
		{"argument", func(reg *Registry) { RegisterType[takesPoint](reg, "P") },
			[]string{"argument 1", "takesPoint.Add", "point", "unexported field y"}},
		{"result", func(reg *Registry) { RegisterType[returnsPoint](reg, "R") },
			[]string{"result 1", "returnsPoint.Get", "unexported field y"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("registered without a panic")
				}
				for _, w := range c.want {
					if !strings.Contains(r.(string), w) {
						t.Errorf("panic %q does not mention %q", r, w)
					}
				}
			}()
			c.register(NewRegistry())
		})
	}
}

func TestPersistentObjectWithStateGobLosesIsRefused(t *testing.T) {
	reg := NewRegistry()
	RegisterType[clonedHalf](reg, "C")
	s := startServer(t, ServerConfig{Registry: reg})
	c := dial(t, s.Addr())
	ctx := context.Background()
	// Ephemeral: fine, Clone protects calls.
	if n, err := Call[int](ctx, c.Object("C", "e"), "Add", "x"); err != nil || n != 1 {
		t.Fatalf("ephemeral Add = %d, %v", n, err)
	}
	o := &userObj{ut: reg.lookup("C")}
	if _, err := o.marshal(); err == nil || !strings.Contains(err.Error(), "unexported field last") {
		t.Errorf("saving a clonedHalf: %v", err)
	}
}
