package rounds_test

import (
	"slices"
	"testing"

	"github.com/galeproject/gale/examples/kmeans/rounds"
)

func TestContributionsTakeEachWorkerOnceAndSumInWorkerOrder(t *testing.T) {
	var c rounds.Contributions
	c.Reset(3)
	add := func(w int, v ...float64) bool {
		ok, err := c.Add(w, v)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// Values whose float sum depends on the order: (1e16 + 1) + -1e16 = 0,
	// but 1e16 + -1e16 + 1 = 1.
	if !add(2, 1) || !add(0, 1e16) {
		t.Fatal("first contributions refused")
	}
	if add(2, 5) {
		t.Fatal("a second contribution of worker 2 was taken")
	}
	if c.Complete() {
		t.Fatal("complete with a worker missing")
	}
	if !add(1, -1e16) || !c.Complete() {
		t.Fatal("not complete with every worker in")
	}
	if got := c.Sum(); !slices.Equal(got, []float64{1}) {
		t.Fatalf("Sum = %v, want [1] (worker order 0, 1, 2)", got)
	}
	if _, err := c.Add(3, []float64{1}); err == nil {
		t.Fatal("worker 3 of 3 accepted")
	}
	c.Reset(2)
	if _, err := c.Add(0, []float64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(1, []float64{1}); err == nil {
		t.Fatal("a contribution of another length accepted")
	}
	d := c.Clone()
	d.Parts[0][0] = 99
	if c.Parts[0][0] != 1 {
		t.Fatal("Clone shares memory")
	}
}

func TestFaultValidate(t *testing.T) {
	if err := (rounds.Fault{At: "sometime"}).Validate(); err == nil {
		t.Fatal("unknown fault point accepted")
	}
	if err := (rounds.Fault{}).Validate(); err != nil {
		t.Fatal(err)
	}
}
