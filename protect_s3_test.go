//go:build !gale_slim || gale_aws

package gale_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/examples/wordcount"
)

// On an object store the output is compared by bucket and key prefix: one
// inside the input prefix, or holding it, is refused; one beside it (or in
// another bucket) is not.
func TestObjectOutputOverlappingInputIsRefused(t *testing.T) {
	opts := startS3(t, "data")
	ctx := context.Background()
	st, err := gale.OpenStore(ctx, "s3://data", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"in/a.txt", "in/sub/b.txt", "in-other.txt"} {
		if err := st.Put(ctx, k, strings.NewReader("alpha beta\n")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ input, out, want string }{
		{"s3://data/in", "s3://data/in", "is the input itself"},
		{"s3://data/in/", "s3://data/", "holds the input object"},
		{"s3://data/in", "s3://data/in/out", "is inside the input prefix"},
		{"s3://data/in/x/*", "s3://data/in/x", "matches the output's part files"},
		{"s3://data/in/*", "s3://data/in/x", ""},
		{"s3://data/in/sub", "s3://data/in", "holds the input object"},
		{"s3://data/in", "s3://data/in-out", ""},
		{"s3://data/in/*.txt", "s3://data/in/out", ""},
	} {
		for _, overwrite := range []bool{false, true} {
			p := gale.NewPipeline()
			wordcount.Build(p, []string{tc.input}, tc.out)
			_, err := gale.Run(ctx, p, gale.StoreOptions(opts), gale.Overwrite(overwrite), gale.JobID("overlap"))
			if tc.want == "" {
				if err != nil && !overwrite {
					t.Errorf("%s into %s: %v", tc.input, tc.out, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s into %s (overwrite %v): err = %v; want %q", tc.input, tc.out, overwrite, err, tc.want)
			}
		}
	}
	// Overwrite replaces an earlier output (or what killed jobs left in
	// _temporary/), not a prefix of other objects.
	if err := st.Put(ctx, "theirs/notes.txt", strings.NewReader("keep me")); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "left/_temporary/job-1/attempts/x", strings.NewReader("leftover")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ out, want string }{
		{"s3://data/theirs", "holds objects (notes.txt among them) but no _SUCCESS marker"},
		{"s3://data/left", ""},
		{"s3://data/left", ""}, // now an earlier Gale output
	} {
		p := gale.NewPipeline()
		wordcount.Build(p, []string{"s3://data/in"}, tc.out)
		_, err := gale.Run(ctx, p, gale.StoreOptions(opts), gale.Overwrite(true))
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("overwriting %s: err = %v; want %q", tc.out, err, tc.want)
		}
	}
	if b, err := readObjectText(ctx, st, "theirs/notes.txt"); err != nil || b != "keep me" {
		t.Errorf("theirs/notes.txt after a refused overwrite: %q, %v", b, err)
	}
	objs, err := st.List(ctx, "in", "", 0)
	if err != nil || len(objs.Objects) < 3 {
		t.Fatalf("inputs after the refused runs: %v, %v", objs.Objects, err)
	}
}

func readObjectText(ctx context.Context, st objstore.Store, key string) (string, error) {
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}
