package galerunner_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/galeproject/gale/beam/galerunner"
)

func init() {
	register.Function2x1(sumGroup)
	register.Function3x1(joinSums)
}

// sumGroup formats a group: its key, how many values and their sum.
func sumGroup(key string, vals func(*int) bool) string {
	n, sum, v := 0, 0, 0
	for vals(&v) {
		n++
		sum += v
	}
	return fmt.Sprintf("g %s n=%d sum=%d", key, n, sum)
}

// joinSums formats a CoGroupByKey result: per side, count and sum.
func joinSums(key string, ages func(*int) bool, cities func(*string) bool) string {
	n, sum, v := 0, 0, 0
	for ages(&v) {
		n++
		sum += v
	}
	var cs []string
	var c string
	for cities(&c) {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return fmt.Sprintf("j %s n=%d sum=%d cities=%s", key, n, sum, strings.Join(cs, "|"))
}

// TestGroupingSpillsUnderATinyBudget runs a GroupByKey and a
// CoGroupByKey over 3,000 keys, a quarter of the values on one hot key,
// with 64 KiB per task: the reduce tasks group by sorting and spilling
// (the report says so), and the output is exactly the one computed here
// with plain maps.
func TestGroupingSpillsUnderATinyBudget(t *testing.T) {
	var ages, cities []string
	type agg struct{ n, sum int }
	groups := map[string]*agg{}
	joined := map[string]*agg{}
	joinedCities := map[string][]string{}
	for i := range 20000 {
		key := "hot"
		if i%4 != 0 {
			key = fmt.Sprintf("p%04d", (i*7919)%3000)
		}
		v := i * 37 % 100003
		ages = append(ages, fmt.Sprintf("%s,%d", key, v))
		for _, m := range []map[string]*agg{groups, joined} {
			if m[key] == nil {
				m[key] = &agg{}
			}
			m[key].n++
			m[key].sum += v
		}
		if i%3 == 0 {
			city := fmt.Sprintf("p%04d", (i*31)%3400) // some keys only here
			c := fmt.Sprintf("c%d", i%13)
			cities = append(cities, city+","+c)
			joinedCities[city] = append(joinedCities[city], c)
			if joined[city] == nil {
				joined[city] = &agg{}
			}
		}
	}
	var want []string
	for k, a := range groups {
		want = append(want, fmt.Sprintf("g %s n=%d sum=%d", k, a.n, a.sum))
	}
	for k, a := range joined {
		cs := joinedCities[k]
		slices.Sort(cs)
		want = append(want, fmt.Sprintf("j %s n=%d sum=%d cities=%s", k, a.n, a.sum, strings.Join(cs, "|")))
	}
	slices.Sort(want)

	out := filepath.Join(t.TempDir(), "out.txt")
	build := func(s beam.Scope) {
		ka := beam.ParDo(s, parseAge, beam.CreateList(s, ages))
		kc := beam.ParDo(s, parseCity, beam.CreateList(s, cities))
		g := beam.ParDo(s, sumGroup, beam.GroupByKey(s, ka))
		j := beam.ParDo(s, joinSums, beam.CoGroupByKey(s, ka, kc))
		textio.Write(s, out, beam.Flatten(s, g, j))
	}
	res := runGale(t, build, galerunner.Config{Workers: 2, Partitions: 2, WorkerMemory: 64 << 10})
	got := sortedLines(t, out)
	if !slices.Equal(got, want) {
		t.Fatalf("output differs from the reference: %d vs %d lines\ngot:  %.6q\nwant: %.6q", len(got), len(want), got, want)
	}
	var runs int64
	for _, st := range res.Report.Stages {
		runs += st.Metrics.SpillRuns
	}
	if runs == 0 {
		t.Fatal("no stage spilled: the budget did not take effect")
	}
}
