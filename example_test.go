package gale_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/galeproject/gale"
)

// These examples run as tests (go test -run Example) on the default
// backend; docs/api.md refers to them.

type Shop struct {
	ID      int64
	Country string
}

type Sale struct {
	Shop   int64
	Amount float64
}

func shopCountry(s Shop) gale.KV[int64, string] {
	return gale.KV[int64, string]{Key: s.ID, Value: s.Country}
}

func saleCountry(byID map[int64]string, s Sale) gale.KV[string, float64] {
	return gale.KV[string, float64]{Key: byID[s.Shop], Value: s.Amount}
}

func countryTotal(kv gale.KV[string, float64]) float64 { return kv.Value }

func shareOf(total float64, kv gale.KV[string, float64]) string {
	return fmt.Sprintf("%s %.0f%%", kv.Key, 100*kv.Value/total)
}

// A lookup table and a global total as side inputs.
func ExampleMapWithSide() {
	p := gale.NewPipeline()
	shops := gale.FromSlice(p, []Shop{{1, "fr"}, {2, "de"}, {3, "fr"}})
	sales := gale.FromSlice(p, []Sale{{1, 30}, {2, 25}, {3, 20}, {2, 25}})
	byID := gale.AsMap(gale.Map(shops, shopCountry))
	perCountry := gale.SumPerKey(gale.MapWithSide(sales, saleCountry, byID))
	total := gale.AsSingleton(gale.Sum(gale.Map(perCountry, countryTotal)))
	shares := gale.Collect(gale.MapWithSide(perCountry, shareOf, total))
	if _, err := gale.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	fmt.Println(slices.Sorted(slices.Values(shares.Values())))
	// Output: [de 50% fr 50%]
}

// Reading typed records from CSV files with a header line.
func ExampleReadCSV() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "sales.csv"), []byte("amount,shop\n30,1\n25,2\n\"20.5\",1\n"), 0o644)
	p := gale.NewPipeline()
	sales := gale.ReadCSV[Sale](p, filepath.Join(dir, "sales.csv"))
	largest := gale.Collect(gale.Largest(gale.Map(sales, saleAmount), 2))
	if _, err := gale.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	fmt.Println(largest.Values()[0])
	// Output: [30 25]
}

func saleAmount(s Sale) float64 { return s.Amount }

func fileWords(fl gale.FileLine, emit func(gale.KV[string, string])) {
	for _, w := range strings.Fields(fl.Line) {
		emit(gale.KV[string, string]{Key: w, Value: filepath.Base(fl.File)})
	}
}

func filesOf(kv gale.KV[string, []string]) string {
	return kv.Key + ":" + strings.Join(slices.Compact(slices.Sorted(slices.Values(kv.Value))), ",")
}

// An inverted index: which files hold each word.
func ExampleReadTextWithFilename() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("red green\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("green blue\n"), 0o644)
	p := gale.NewPipeline()
	words := gale.FlatMap(gale.ReadTextWithFilename(p, dir), fileWords)
	index := gale.Collect(gale.Map(gale.GroupByKey(words), filesOf))
	if _, err := gale.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	fmt.Println(slices.Sorted(slices.Values(index.Values())))
	// Output: [blue:b.txt green:a.txt,b.txt red:a.txt]
}

func idKey(i int64) gale.KV[int64, int64] { return gale.KV[int64, int64]{Key: i % 2, Value: i} }

// Any number of keyed collections of one value type grouped in one shuffle.
func ExampleCoGroupByKeyN() {
	p := gale.NewPipeline()
	a := gale.Map(gale.FromSlice(p, []int64{1, 2}), idKey)
	b := gale.Map(gale.FromSlice(p, []int64{3}), idKey)
	c := gale.Map(gale.FromSlice(p, []int64{4, 6}), idKey)
	groups := gale.Collect(gale.CoGroupByKeyN(a, b, c))
	if _, err := gale.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	for _, kv := range groups.Values() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Unordered output:
	// 0 [[2] [] [4 6]]
	// 1 [[1] [3] []]
}
