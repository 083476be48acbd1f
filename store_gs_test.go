//go:build !gale_slim || gale_gcp

package gale_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/wordref"
)

// Word count reads its input from gs://, shuffles through a gs://
// temporary store and writes gs://, against fake-gcs-server on loopback
// reached through the gs.endpoint store option.
func TestWordCountOnGCS(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "data"})
	opts := map[string]string{"gs.endpoint": srv.URL() + "/storage/v1/"}
	ctx := context.Background()
	bucket, err := gale.OpenStore(ctx, "gs://data", opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for i, seed := range []uint64{7, 8} {
		f := corpus(t, dir, "book-"+string(rune('a'+i))+".txt", 40<<10, seed, nil)
		files = append(files, f)
		put(t, bucket, "corpus/"+filepath.Base(f), f)
	}
	want := refCount(t, files...)

	p := gale.NewPipeline()
	wordcount.Build(p, []string{"gs://data/corpus"}, "gs://data/out")
	if _, err := gale.Run(ctx, p, gale.StoreOptions(opts), gale.TempStore("gs://data/tmp"), gale.Workers(3),
		gale.ChunkSize(8<<10), gale.Partitions(2), gale.JobID("gs-wordcount")); err != nil {
		t.Fatal(err)
	}
	objs, err := objstore.ListAll(ctx, bucket, "out/")
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	success := false
	for _, o := range objs {
		switch name := strings.TrimPrefix(o.Key, "out/"); {
		case name == "_SUCCESS":
			success = true
		case strings.HasPrefix(name, "part-"):
			text.Write(get(t, bucket, o.Key))
		default:
			t.Errorf("output holds %s", o.Key)
		}
	}
	if !success {
		t.Error("no _SUCCESS object")
	}
	got, err := wordref.ParseCounts(&text)
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, got, want)
	if left, _ := objstore.ListAll(ctx, bucket, "tmp/"); len(left) > 0 {
		t.Errorf("the job left %d objects in its temporary store, e.g. %s", len(left), left[0].Key)
	}
	if _, err := gale.OpenStore(ctx, "gs://data", map[string]string{"gs.chunk_size": "big"}); err == nil || !strings.Contains(err.Error(), "gs.chunk_size") {
		t.Errorf("a bad gs.chunk_size: %v", err)
	}
}
