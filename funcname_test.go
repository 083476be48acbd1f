package gale_test

import (
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// func7 is a top-level function whose name looks like the compiler's name
// for a function literal; it travels by name like any other.
func func7(i int64) int64 { return i + 7 }

type adder struct{ n int64 }

func (a adder) add(i int64) int64 { return i + a.n }

// TestTopLevelFuncNamedLikeClosure checks that a top-level function named
// funcN is accepted (it was refused as a closure), while function
// literals, closures inside them and method values still are refused.
func TestTopLevelFuncNamedLikeClosure(t *testing.T) {
	p := gale.NewPipeline()
	got := gale.Collect(gale.Map(gale.Generate(p, 3, identity64), func7))
	if err := p.Err(); err != nil {
		t.Fatalf("a top-level func7 was refused: %v", err)
	}
	run(t, p)
	var sum int64
	for _, v := range got.Values() {
		sum += v
	}
	if sum != 0+1+2+3*7 {
		t.Errorf("sum %d, want %d", sum, 0+1+2+3*7)
	}
	for name, fn := range map[string]func(int64) int64{
		"literal":      func(i int64) int64 { return i },
		"nested":       func() func(int64) int64 { return func(i int64) int64 { return i } }(),
		"method value": adder{2}.add,
	} {
		p := gale.NewPipeline()
		gale.Map(gale.Generate(p, 3, identity64), fn)
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), "closure or method value") {
			t.Errorf("%s: got %v, want it refused", name, err)
		}
	}
}
