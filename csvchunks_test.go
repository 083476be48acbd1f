package gale_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galeproject/gale"
)

// csvRows is a CSV file of n orders with quoted fields holding commas and
// quotes (no line breaks), and the sums per customer computed here.
func csvRows(n int) (string, map[string]float64) {
	var b strings.Builder
	b.WriteString("order_id,customer,amount,paid,note\n")
	sums := map[string]float64{}
	for i := range n {
		c := fmt.Sprintf("cust%d", i%17)
		amount := float64(i%40) + 0.25
		sums[c] += amount
		fmt.Fprintf(&b, "%d,%s,%g,%v,\"a, \"\"quoted\"\" note %d\"\n", i, c, amount, i%2 == 0, i)
	}
	return b.String(), sums
}

// TestCSVChunks: one large CSV file is read by several tasks (chunks cut
// at line boundaries, each reading the header from the file's start) to
// the sums computed here, on the local and process backends; a bad value
// in a later chunk fails the job naming its line in the whole file and
// column; a quoted field holding a line break across a chunk boundary
// fails the job naming the boundary, never parsing from inside the field.
func TestCSVChunks(t *testing.T) {
	dir := t.TempDir()
	data, sums := csvRows(2000)
	in := filepath.Join(dir, "orders.csv")
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	const chunk = 8 << 10
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		got := gale.Collect(gale.SumPerKey(gale.Map(gale.ReadCSV[Order](p, in), orderAmount)))
		rep := run(t, p, append(opts, gale.ChunkSize(chunk))...)
		m := map[string]float64{}
		for _, kv := range got.Values() {
			m[kv.Key] = kv.Value
		}
		if fmt.Sprint(m) != fmt.Sprint(sums) {
			t.Errorf("got %v, want %v", m, sums)
		}
		if want := (len(data) + chunk - 1) / chunk; rep.Stages[0].Tasks != want {
			t.Errorf("the %d-byte file was read by %d tasks, want %d of %d bytes", len(data), rep.Stages[0].Tasks, want, chunk)
		}
	})

	lines := strings.SplitAfter(data, "\n")
	at := 1500 // a line in a later chunk
	if off := len(strings.Join(lines[:at-1], "")); off < chunk {
		t.Fatalf("line %d is at byte %d, in the first chunk", at, off)
	}
	bad := append([]string(nil), lines...)
	bad[at-1] = "1499,cust3,lots,true,x\n"
	badFile := filepath.Join(dir, "bad.csv")
	os.WriteFile(badFile, []byte(strings.Join(bad, "")), 0o644)

	// A note with a line break that starts before the second chunk's first
	// byte and ends after it.
	broken := append([]string(nil), lines...)
	i := 1
	for len(strings.Join(broken[:i+1], "")) < chunk-10 {
		i++
	}
	broken[i] = fmt.Sprintf("%d,cust1,1,true,\"%s\n%s\"\n", i, strings.Repeat("n", 100), strings.Repeat("m", 60))
	if nl := len(strings.Join(broken[:i], "")) + strings.Index(broken[i], "\n"); nl < chunk {
		t.Fatalf("the field's line break is at byte %d, before the boundary", nl)
	}
	brokenFile := filepath.Join(dir, "broken.csv")
	os.WriteFile(brokenFile, []byte(strings.Join(broken, "")), 0o644)

	for _, c := range []struct{ file, want string }{
		{badFile, fmt.Sprintf("bad.csv:%d:12: column \"amount\" (field Amount): strconv.ParseFloat: parsing \"lots\": invalid syntax", at)},
		// Either the chunk before the boundary or the one after fails
		// first; both name the boundary.
		{brokenFile, "spans the chunk boundary"},
	} {
		onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
			p := gale.NewPipeline()
			gale.Collect(gale.ReadCSV[Order](p, c.file))
			_, err := gale.Run(context.Background(), p, append(opts, gale.ChunkSize(chunk), gale.MaxAttempts(1))...)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	// Read whole (a chunk larger than the file), the broken file parses.
	p := gale.NewPipeline()
	got := gale.Collect(gale.Count(gale.ReadCSV[Order](p, brokenFile)))
	run(t, p, gale.ChunkSize(1<<20))
	if n := got.Values(); len(n) != 1 || n[0] != 2000 {
		t.Errorf("read whole, the file with a line break in a field has %v records, want 2000", n)
	}
}
