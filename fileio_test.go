package gale_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// wordFiles pairs each word of a line with its file.
func wordFiles(fl gale.FileLine, emit func(gale.KV[string, string])) {
	for _, w := range strings.Fields(fl.Line) {
		emit(gale.KV[string, string]{Key: w, Value: fl.File})
	}
}

func postings(kv gale.KV[string, []string]) string {
	files := slices.Clone(kv.Value)
	slices.Sort(files)
	return kv.Key + "\t" + strings.Join(slices.Compact(files), ",")
}

func buildIndex(p *gale.Pipeline, dir string) *gale.Collected[string] {
	return gale.Collect(gale.Map(gale.GroupByKey(gale.FlatMap(gale.ReadTextWithFilename(p, dir), wordFiles)), postings))
}

func init() {
	workerPipelines["fileio.index"] = func(p *gale.Pipeline) { buildIndex(p, "x") }
}

// TestReadTextWithFilename builds an inverted index of 40 files (one of
// them gzip-compressed, one split into many chunks) in one source and
// checks it against an index built by reading the files directly.
func TestReadTextWithFilename(t *testing.T) {
	dir := t.TempDir()
	want := map[string]map[string]bool{}
	for i := range 40 {
		var b strings.Builder
		lines := 3
		if i == 7 {
			lines = 400 // split into many chunks below
		}
		for l := range lines {
			fmt.Fprintf(&b, "w%d w%d common\r\n", (i*7+l)%23, (i+l*3)%31)
		}
		name := filepath.Join(dir, fmt.Sprintf("doc%02d.txt", i))
		data := []byte(b.String())
		if i == 3 {
			name += ".gz"
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(data)
			zw.Close()
			data = z.Bytes()
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, w := range strings.Fields(b.String()) {
			if want[w] == nil {
				want[w] = map[string]bool{}
			}
			want[w][name] = true
		}
	}
	var wantLines []string
	for w, files := range want {
		wantLines = append(wantLines, w+"\t"+strings.Join(slices.Sorted(func(yield func(string) bool) {
			for f := range files {
				if !yield(f) {
					return
				}
			}
		}), ","))
	}
	slices.Sort(wantLines)
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		got := buildIndex(p, dir)
		run(t, p, append(opts, gale.ChunkSize(1024))...)
		lines := slices.Sorted(slices.Values(got.Values()))
		if !slices.Equal(lines, wantLines) {
			t.Errorf("index differs: got %d words, want %d; first got %q, want %q", len(lines), len(wantLines), lines[:min(2, len(lines))], wantLines[:2])
		}
	})
}

// Order is a CSV record; its columns come in another order in the files,
// with a column it does not read.
type Order struct {
	ID       int64   `csv:"order_id"`
	Customer string  `csv:"customer"`
	Amount   float64 `csv:"amount"`
	Paid     bool
	Note     string `csv:"note"`
	Internal string `csv:"-"`
}

func orderAmount(o Order) gale.KV[string, float64] {
	return gale.KV[string, float64]{Key: o.Customer, Value: o.Amount}
}

func buildCSV(p *gale.Pipeline, in, out string) (*gale.Collected[gale.KV[string, float64]], *gale.Collected[Order]) {
	orders := gale.ReadCSV[Order](p, in)
	gale.WriteCSV(orders, out)
	return gale.Collect(gale.SumPerKey(gale.Map(orders, orderAmount))), gale.Collect(orders)
}

func readBack(p *gale.Pipeline, out string) *gale.Collected[Order] {
	return gale.Collect(gale.ReadCSV[Order](p, out))
}

func init() {
	workerPipelines["fileio.csv"] = func(p *gale.Pipeline) {
		buildCSV(p, "x", "y")
		readBack(p, "y")
	}
}

// TestCSV reads CSV files into structs (a byte order mark, columns in
// another order, a column no field reads, quoted fields with commas,
// quotes and a line break, a gzip file), sums per customer against sums
// computed here, writes the records back with WriteCSV and reads the
// output again.
func TestCSV(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	var want []Order
	sums := map[string]float64{}
	for f := range 3 {
		var b strings.Builder
		b.WriteString("\ufeffamount,Paid,customer,region,order_id,note\n")
		for i := range 50 {
			o := Order{ID: int64(f*100 + i), Customer: fmt.Sprintf("c%d", i%7), Amount: float64(i) + 0.25, Paid: i%2 == 0}
			switch i % 10 {
			case 3:
				o.Note = "says \"hi\", twice"
			case 4:
				o.Note = "two\nlines"
			}
			want = append(want, o)
			sums[o.Customer] += o.Amount
			note := o.Note
			if strings.ContainsAny(note, ",\"\n") {
				note = `"` + strings.ReplaceAll(note, `"`, `""`) + `"`
			}
			fmt.Fprintf(&b, "%v,%v,%s,eu,%d,%s\n", o.Amount, o.Paid, o.Customer, o.ID, note)
		}
		data := []byte(b.String())
		name := filepath.Join(in, fmt.Sprintf("part%d.csv", f))
		if f == 2 {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(data)
			zw.Close()
			data, name = z.Bytes(), name+".gz"
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	byID := func(os []Order) []Order {
		os = slices.Clone(os)
		slices.SortFunc(os, func(a, b Order) int { return int(a.ID - b.ID) })
		return os
	}
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		totals, orders := buildCSV(p, in, out)
		run(t, p, opts...)
		got := map[string]float64{}
		for _, kv := range totals.Values() {
			got[kv.Key] = kv.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(sums) {
			t.Errorf("sums: got %v, want %v", got, sums)
		}
		if g := byID(orders.Values()); !slices.Equal(g, want) {
			t.Errorf("records differ: got %d, want %d; first %+v, want %+v", len(g), len(want), g[:min(1, len(g))], want[0])
		}
		p2 := gale.NewPipeline()
		back := readBack(p2, out)
		run(t, p2, opts...)
		if g := byID(back.Values()); !slices.Equal(g, want) {
			t.Errorf("WriteCSV output read back: got %d records, want %d", len(g), len(want))
		}
	})
}

// TestCSVErrors checks that bad CSV input fails the job naming the file
// and line, and that record types without a CSV form are refused when
// the pipeline is built.
func TestCSVErrors(t *testing.T) {
	dir := t.TempDir()
	header := "order_id,customer,amount,paid,note\n"
	for name, body := range map[string]string{
		"badnumber.csv": header + "1,a,2.5,true,\n2,b,2.5,true,\"x\ny\"\n3,c,lots,true,\n",
		"fields.csv":    header + "1,a,2.5,true,\n2,b\n",
		"nocolumn.csv":  "order_id,customer,paid,note\n1,a,true,\n",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	for _, c := range []struct{ file, want string }{
		{"badnumber.csv", "badnumber.csv:5:5: column \"amount\" (field Amount): strconv.ParseFloat: parsing \"lots\": invalid syntax"},
		{"fields.csv", "fields.csv:3:1: wrong number of fields"},
		{"nocolumn.csv", "nocolumn.csv:1: the header has no column \"amount\" for field Amount"},
	} {
		p := gale.NewPipeline()
		gale.Collect(gale.ReadCSV[Order](p, filepath.Join(dir, c.file)))
		_, err := gale.Run(context.Background(), p, gale.MaxAttempts(1))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.file, err, c.want)
		}
	}
	type mapped struct{ M map[string]int }
	p := gale.NewPipeline()
	gale.ReadCSV[mapped](p, dir)
	gale.ReadCSV[int](p, dir)
	err := p.Err()
	for _, w := range []string{"field M is a map[string]int, which has no CSV form", "int is not a struct"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want it to say %q", err, w)
		}
	}
}

// Event is a JSON-lines record.
type Event struct {
	User  string            `json:"user"`
	Kind  string            `json:"kind"`
	Count int               `json:"count"`
	Tags  map[string]string `json:"tags,omitempty"`
}

func eventCount(e Event) gale.KV[string, int] {
	return gale.KV[string, int]{Key: e.User, Value: e.Count}
}

func buildJSONL(p *gale.Pipeline, in, out string) *gale.Collected[gale.KV[string, int]] {
	events := gale.ReadJSONLines[Event](p, in)
	gale.WriteJSONLines(events, out)
	return gale.Collect(gale.SumPerKey(gale.Map(events, eventCount)))
}

func init() {
	workerPipelines["fileio.jsonl"] = func(p *gale.Pipeline) {
		buildJSONL(p, "x", "y")
		buildJSONL(p, "y", "z")
	}
}

// TestJSONLines reads JSON lines (blank lines, fields Event lacks, a long
// line), sums per user against sums computed here, writes them back and
// reads the output again to the same sums; a bad line fails the job
// naming file and line.
func TestJSONLines(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.jsonl")
	var b strings.Builder
	sums := map[string]int{}
	for i := range 300 {
		e := Event{User: fmt.Sprintf("u%d", i%11), Kind: "click", Count: i % 5}
		if i == 42 {
			e.Tags = map[string]string{"long": strings.Repeat("x", 400<<10)}
		}
		sums[e.User] += e.Count
		fmt.Fprintf(&b, `{"user":%q,"kind":%q,"count":%d,"extra":[1,2],"tags":%s}`+"\n", e.User, e.Kind, e.Count, mustJSON(e.Tags))
		if i%50 == 0 {
			b.WriteString("\n  \n")
		}
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		out, out2 := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out2")
		for _, io := range [][2]string{{in, out}, {out, out2}} {
			p := gale.NewPipeline()
			got := buildJSONL(p, io[0], io[1])
			run(t, p, opts...)
			m := map[string]int{}
			for _, kv := range got.Values() {
				m[kv.Key] = kv.Value
			}
			if fmt.Sprint(m) != fmt.Sprint(sums) {
				t.Errorf("reading %s: got %v, want %v", io[0], m, sums)
			}
		}
	})
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"user\":\"a\",\"count\":1}\n\n{\"user\":\"b\",\"count\":\"two\"}\n"), 0o644)
	p := gale.NewPipeline()
	gale.Collect(gale.ReadJSONLines[Event](p, bad))
	_, err := gale.Run(context.Background(), p, gale.MaxAttempts(1))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:3: json: cannot unmarshal string into Go struct field Event.count of type int") {
		t.Errorf("got %v, want the bad line named", err)
	}
	type hidden struct {
		Name  string
		count int
	}
	p = gale.NewPipeline()
	gale.ReadJSONLines[hidden](p, bad)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "unexported field count") {
		t.Errorf("got %v, want the unexported field refused", err)
	}
}

func mustJSON(m map[string]string) string {
	if m == nil {
		return "null"
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range m {
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%q", k, v)
	}
	b.WriteString("}")
	return b.String()
}
