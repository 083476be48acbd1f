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

// TestJSONLinesChunks: one large JSON-lines file is read by several tasks
// (chunks cut at line boundaries; a line longer than a chunk and blank
// lines included) to the sums computed here, on the local and process
// backends; a bad line in a later chunk fails the job naming its number
// in the whole file.
func TestJSONLinesChunks(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "big.jsonl")
	var b strings.Builder
	sums := map[string]int{}
	const lines = 3000
	for i := range lines {
		e := Event{User: fmt.Sprintf("u%d", i%13), Kind: "view", Count: i % 7}
		if i == 1500 {
			e.Tags = map[string]string{"long": strings.Repeat("y", 20<<10)} // spans several chunks
		}
		sums[e.User] += e.Count
		fmt.Fprintf(&b, `{"user":%q,"kind":%q,"count":%d,"tags":%s}`+"\n", e.User, e.Kind, e.Count, mustJSON(e.Tags))
		if i%100 == 0 {
			b.WriteString("\n")
		}
	}
	data := b.String()
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	const chunk = 8 << 10
	onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
		p := gale.NewPipeline()
		got := gale.Collect(gale.SumPerKey(gale.Map(gale.ReadJSONLines[Event](p, in), eventCount)))
		rep := run(t, p, append(opts, gale.ChunkSize(chunk))...)
		m := map[string]int{}
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

	// Bad lines past the first chunk: the error names the line's number
	// in the file, counted here.
	for _, at := range []int{300, 2900} {
		ls := strings.SplitAfter(data, "\n")
		ls[at-1] = `{"user":"b","count":"two"}` + "\n"
		bad := filepath.Join(dir, fmt.Sprintf("bad%d.jsonl", at))
		if err := os.WriteFile(bad, []byte(strings.Join(ls, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		if off := len(strings.Join(ls[:at-1], "")); off < chunk {
			t.Fatalf("line %d is at byte %d, in the first chunk", at, off)
		}
		onBackends(t, func(t *testing.T, opts ...gale.RunOption) {
			p := gale.NewPipeline()
			gale.Collect(gale.ReadJSONLines[Event](p, bad))
			_, err := gale.Run(context.Background(), p, append(opts, gale.ChunkSize(chunk), gale.MaxAttempts(1))...)
			want := fmt.Sprintf("bad%d.jsonl:%d: json: cannot unmarshal string into Go struct field Event.count of type int", at, at)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}
