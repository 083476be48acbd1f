//go:build !gale_slim || gale_aws

package gale_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/engine"
)

// On S3 an input is known by its ETag: an object rewritten with the same
// size while the job runs fails it, whether the driver asks about each
// input (few) or lists them (many), and an unchanged input commits.
func TestInputChangedOnS3FailsTheJob(t *testing.T) {
	opts := startS3(t, "data")
	ctx := context.Background()
	st, err := gale.OpenStore(ctx, "s3://data", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 70} {
		prefix := fmt.Sprintf("in%d", n)
		for i := range n {
			if err := st.Put(ctx, fmt.Sprintf("%s/f%03d.txt", prefix, i), strings.NewReader("alpha beta gamma\n")); err != nil {
				t.Fatal(err)
			}
		}
		victim := prefix + "/f001.txt"
		rewrite := func() {
			if err := st.Put(ctx, victim, strings.NewReader("delta beta gamma\n")); err != nil {
				t.Error(err)
			}
		}
		out := "s3://data/out" + prefix
		err := runChanging(t, ctx, []string{"s3://data/" + prefix}, out, "stage-1/task-0/", rewrite, gale.StoreOptions(opts))
		t.Logf("%d inputs: %v", n, err)
		if err == nil || !strings.Contains(err.Error(), engine.ErrInputChanged.Error()) || !strings.Contains(err.Error(), victim) ||
			!strings.Contains(err.Error(), "ETag") {
			t.Fatalf("%d inputs: err = %v; want the changed input %s named with its ETag", n, err, victim)
		}
		if page, err := st.List(ctx, strings.TrimPrefix(out, "s3://data/"), "", 0); err != nil || len(page.Objects) > 0 {
			t.Fatalf("%d inputs: output after the failed job: %v, %v", n, page.Objects, err)
		}
		// The same input, left alone, is committed.
		if err := runChanging(t, ctx, []string{"s3://data/" + prefix}, out, "stage-1/task-0/", func() {}, gale.StoreOptions(opts)); err != nil {
			t.Fatalf("%d unchanged inputs: %v", n, err)
		}
	}
}
