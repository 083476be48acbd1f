package gale_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	gsort "github.com/galeproject/gale/examples/sort"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/gensort"
	"github.com/galeproject/gale/internal/textgen"
)

func init() {
	// A predicate only this program knows: its embedded (or own) Glider
	// active servers get it through RegisterGliderFunctions.
	gale.RegisterLinePredicate("test-min-words", func(arg string) (func([]byte) bool, error) {
		var n int
		if _, err := fmt.Sscan(arg, &n); err != nil {
			return nil, fmt.Errorf("want a number of words: %v", err)
		}
		return func(l []byte) bool { return len(bytes.Fields(l)) >= n }, nil
	})
}

func splitWords(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}

func formatCount(kv gale.KV[string, int64]) string { return fmt.Sprintf("%s\t%d", kv.Key, kv.Value) }

// gliderCluster starts a Glider cluster for a test, whose active servers'
// registry the test fills with RegisterGliderFunctions.
func gliderCluster(t *testing.T) (*glider.Cluster, *glider.Registry) {
	t.Helper()
	reg := glider.DefaultRegistry()
	cl, err := glider.NewCluster(glider.ClusterConfig{Registry: reg, StorageServers: 2, ActiveServers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
	})
	return cl, reg
}

// TestFilterLinesLoweredOntoGlider runs filter-then-word-count over text
// stored in Glider: with data shipping the workers read the whole text
// and filter it; with the glider strategy the filter runs in Glider filter
// actions and the workers ingest only the matching lines. Both outputs
// equal an independent count, and the glider run ingests a fraction of
// the text.
func TestFilterLinesLoweredOntoGlider(t *testing.T) {
	ctx := context.Background()
	cl, reg := gliderCluster(t)
	const ns = "data"
	opts := map[string]string{"glider.namespace": ns, "glider.token": cl.Token(ns)}
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = 3<<20, 5
	var text bytes.Buffer
	if err := textgen.Generate(ctx, &text, cfg); err != nil {
		t.Fatal(err)
	}
	// Some CRLF lines and a last line without a newline, as real text has.
	corpus := strings.ReplaceAll(text.String(), "ab\n", "ab\r\n") + "closing words without newline\r"
	st, err := gale.OpenStore(ctx, "glider://"+cl.MetaAddr()+"/in", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "corpus.txt", strings.NewReader(corpus)); err != nil {
		t.Fatal(err)
	}
	// The independent answer: count the words of the lines (as ReadText
	// splits them) that hold "Glieng" and have at least 3 words.
	want := map[string]int64{}
	lines := strings.Split(corpus, "\n")
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.Contains(l, "Glieng") && len(strings.Fields(l)) >= 3 {
			for _, w := range strings.Fields(l) {
				want[w]++
			}
		}
	}
	var wantLines []string
	for w, n := range want {
		wantLines = append(wantLines, fmt.Sprintf("%s\t%d", w, n))
	}
	slices.Sort(wantLines)
	if len(wantLines) == 0 {
		t.Fatal("the filter keeps nothing: pick another substring")
	}

	run := func(strategy string) ([]string, *gale.Report) {
		out := filepath.Join(t.TempDir(), "out")
		p := gale.NewPipeline()
		in := gale.ReadText(p, "glider://"+cl.MetaAddr()+"/in/corpus.txt")
		kept := gale.FilterLines(gale.FilterLines(in, "substring", "Glieng"), "test-min-words", "3")
		counts := gale.CountPerElement(gale.FlatMap(kept, splitWords))
		gale.WriteText(gale.Map(counts, formatCount), out)
		if err := gale.RegisterGliderFunctions(p, reg); err != nil {
			t.Fatal(err)
		}
		r, err := gale.Run(ctx, p, gale.Workers(2), gale.ChunkSize(256<<10), gale.StoreOptions(opts),
			gale.ShuffleStrategy(strategy), gale.UseGlider(cl.MetaAddr(), ns, cl.Token(ns)))
		if err != nil {
			t.Fatalf("%s: %v", strategy, err)
		}
		got := strings.Split(strings.TrimSuffix(string(partBytes(t, out)), "\n"), "\n")
		slices.Sort(got)
		return got, r
	}
	ds, dsr := run(gale.DataShipping)
	gl, glr := run(gale.GliderShuffle)
	if !slices.Equal(ds, wantLines) {
		t.Fatalf("data shipping: %d counts, want %d", len(ds), len(wantLines))
	}
	if !slices.Equal(gl, wantLines) {
		t.Fatalf("glider: %d counts, want %d", len(gl), len(wantLines))
	}
	ingested := func(r *gale.Report) int64 { return r.Stages[0].Metrics.ObjectBytesRead }
	t.Logf("ingested by workers: data shipping %d bytes, glider %d bytes (text %d)", ingested(dsr), ingested(glr), len(corpus))
	if ingested(dsr) < int64(len(corpus)) {
		t.Errorf("data shipping ingested %d bytes, less than the %d-byte text", ingested(dsr), len(corpus))
	}
	if ingested(glr) > int64(len(corpus))/10 {
		t.Errorf("glider ingested %d bytes of a %d-byte text: the filter did not run in Glider", ingested(glr), len(corpus))
	}
	// The job removed its actions from the namespace; the input stays.
	c, err := cl.Dial(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kids, err := c.List(ctx, "/")
	if err != nil || len(kids) != 1 || kids[0].Path != "/in" {
		t.Fatalf("namespace after the jobs: %v, %v; want only /in", kids, err)
	}
}

// TestGliderSortWritesOutput sorts records with the glider strategy into
// an output in Glider and onto the local filesystem: the sort actions
// write the part files themselves (committed by renaming in Glider, or
// copied at commit to the filesystem), the workers never read the sorted
// data back, and both outputs equal data shipping's, byte for byte.
func TestGliderSortWritesOutput(t *testing.T) {
	ctx := context.Background()
	cl, _ := gliderCluster(t)
	const ns = "sorts"
	opts := map[string]string{"glider.namespace": ns, "glider.token": cl.Token(ns)}
	var recs bytes.Buffer
	if _, err := gensort.Generate(ctx, &recs, gensort.Config{Count: 30000, ASCII: true}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "recs.dat")
	if err := os.WriteFile(in, recs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sortTo := func(out string, o ...gale.RunOption) *gale.Report {
		p := gale.NewPipeline()
		if err := gsort.Build(p, gsort.Records, []string{in}, out); err != nil {
			t.Fatal(err)
		}
		r, err := gale.Run(ctx, p, append([]gale.RunOption{gale.Workers(2), gale.ChunkSize(512 << 10),
			gale.WorkerMemory(1 << 20), gale.StoreOptions(opts)}, o...)...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dsOut := filepath.Join(t.TempDir(), "ds")
	dsr := sortTo(dsOut, gale.ShuffleStrategy(gale.DataShipping))
	want := partBytes(t, dsOut)
	if !bytes.Equal(want, sortedRecords(recs.Bytes())) {
		t.Fatal("data shipping's sort is not the independently sorted records")
	}

	fsOut := filepath.Join(t.TempDir(), "gl")
	fsr := sortTo(fsOut, gale.ShuffleStrategy(gale.GliderShuffle))
	if !bytes.Equal(partBytes(t, fsOut), want) {
		t.Fatal("glider sort to the filesystem differs from data shipping's")
	}
	gr := sortTo("glider://"+cl.MetaAddr()+"/out", gale.ShuffleStrategy(gale.GliderShuffle), gale.UseGlider(cl.MetaAddr(), ns, cl.Token(ns)))
	st, err := gale.OpenStore(ctx, "glider://"+cl.MetaAddr()+"/out", opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	m, err := objstore.ReadManifest(ctx, st, "")
	if err != nil || m == nil {
		t.Fatalf("reading the Glider output's manifest: %v", err)
	}
	for _, p := range m.Parts {
		rc, err := st.Get(ctx, p.Key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		got = append(got, b.Bytes()...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("glider sort into Glider: %d bytes differ from data shipping's %d", len(got), len(want))
	}
	if _, err := st.Stat(ctx, "_SUCCESS"); err != nil {
		t.Fatalf("no _SUCCESS in the Glider output: %v", err)
	}

	size := int64(recs.Len())
	for _, c := range []struct {
		name   string
		r      *gale.Report
		copied int64
	}{{"filesystem", fsr, size}, {"glider", gr, 0}} {
		sh := c.r.Shuffles[0]
		if sh.BytesWrittenByActions != size || sh.BytesCopiedAtCommit != c.copied {
			t.Errorf("%s output: actions wrote %d bytes, commit copied %d; want %d and %d", c.name, sh.BytesWrittenByActions,
				sh.BytesCopiedAtCommit, size, c.copied)
		}
		tot := c.r.Totals()
		// The workers read the input and stream it (with a small header per
		// stream) into the sort actions; nothing sorted comes back.
		if tot.ShuffleBytesRead > 1000 || tot.ObjectBytesWritten != 0 {
			t.Errorf("%s output: workers read %d shuffle bytes and wrote %d output bytes, want ~0 and 0", c.name, tot.ShuffleBytesRead, tot.ObjectBytesWritten)
		}
	}
	// Both strategies first sample the input's keys (one more read of it);
	// after that, data shipping reads the input, writes and reads the
	// shuffle and writes the output (4x the data), glider reads the input
	// and streams it into the sort actions (2x).
	ds, gl := boundaryBytes(dsr), boundaryBytes(gr)+gr.Shuffles[0].BytesCopiedAtCommit
	t.Logf("bytes across the worker/storage boundary after sampling: data shipping %d (%.2fx the data), glider into Glider %d (%.2fx)",
		ds, float64(ds)/float64(size), gl, float64(gl)/float64(size))
	if float64(ds) < 3.9*float64(size) || float64(gl) > 2.1*float64(size) {
		t.Errorf("data shipping moved %.2fx the data, glider %.2fx: want 4x and 2x", float64(ds)/float64(size), float64(gl)/float64(size))
	}
}

// boundaryBytes sums the bytes the stages other than sampling moved
// between workers and storage.
func boundaryBytes(r *gale.Report) int64 {
	var n int64
	for _, s := range r.Stages {
		if strings.HasPrefix(s.Name, "sampling ") {
			continue
		}
		m := s.Metrics
		n += m.ObjectBytesRead + m.ObjectBytesWritten + m.ShuffleBytesRead + m.ShuffleBytesWritten
	}
	return n
}

// sortedRecords sorts 100-byte records by their 10-byte keys, stably.
func sortedRecords(b []byte) []byte {
	var recs [][]byte
	for i := 0; i+100 <= len(b); i += 100 {
		recs = append(recs, b[i:i+100])
	}
	slices.SortStableFunc(recs, func(x, y []byte) int { return bytes.Compare(x[:10], y[:10]) })
	return bytes.Join(recs, nil)
}

// TestDataShippingOnGliderStorage runs word count with its input, its
// temporary store (the shuffle objects) and its output all on glider://
// storage: the output equals the run on the local filesystem, and the
// temporary objects are gone afterwards.
func TestDataShippingOnGliderStorage(t *testing.T) {
	ctx := context.Background()
	cl, _ := gliderCluster(t)
	const ns = "ship"
	opts := map[string]string{"glider.namespace": ns, "glider.secret": cl.Secret()}
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	cfg := textgen.DefaultConfig()
	cfg.Size, cfg.Seed = 1<<20, 3
	if err := textgen.GenerateFile(ctx, text, cfg); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(text)
	if err != nil {
		t.Fatal(err)
	}
	g := "glider://" + cl.MetaAddr()
	st, err := gale.OpenStore(ctx, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "in/corpus.txt", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	count := func(in, out string, o ...gale.RunOption) {
		p := gale.NewPipeline()
		words := gale.FlatMap(gale.ReadText(p, in), splitWords)
		gale.WriteText(gale.Map(gale.CountPerElement(words), formatCount), out)
		if _, err := gale.Run(ctx, p, append([]gale.RunOption{gale.Workers(2), gale.ChunkSize(128 << 10), gale.StoreOptions(opts)}, o...)...); err != nil {
			t.Fatal(err)
		}
	}
	local := filepath.Join(dir, "out")
	count(text, local)
	count(g+"/in/corpus.txt", g+"/out", gale.TempStore(g+"/tmp"))
	got, err := readStoreParts(ctx, st, "out/")
	if err != nil {
		t.Fatal(err)
	}
	if want := partBytes(t, local); !bytes.Equal(got, want) {
		t.Fatalf("word count through Glider storage: %d bytes, want the local run's %d", len(got), len(want))
	}
	if left, _ := objstore.ListAll(ctx, st, "tmp/"); len(left) != 0 {
		t.Fatalf("the job left %d temporary objects in Glider", len(left))
	}
	if _, err := st.Stat(ctx, "out/_SUCCESS"); err != nil {
		t.Fatalf("no out/_SUCCESS: %v", err)
	}
}

func readStoreParts(ctx context.Context, st objstore.Store, prefix string) ([]byte, error) {
	objs, err := objstore.ListAll(ctx, st, prefix+"part-")
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, o := range objs {
		rc, err := st.Get(ctx, o.Key, 0, -1)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, b.Bytes()...)
	}
	return all, nil
}
